"""The CLI commands a user runs: worker --once (relay included with the in-process broker),
outbox status, dead-letters list/replay, crypto status/rotate."""

from __future__ import annotations

import json

from integrations.fakes import Scripted
from typer.testing import CliRunner

from outbox.conftest import SID, place_order, seed_customer
from rps_port.cli.main import app as cli
from rps_port.db import make_engine


def run(*args: str) -> dict | list:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_worker_dead_letters_and_replay_from_the_cli(sqlite_db_url, fake_sendgrid, fake_twilio, monkeypatch):
    for k, v in {"RPS_DATABASE_URL": sqlite_db_url, "RPS_SENDGRID_API_KEY": "SG.test", "RPS_SENDGRID_BASE_URL": fake_sendgrid.url,
                 "RPS_TWILIO_ACCOUNT_SID": SID, "RPS_TWILIO_AUTH_TOKEN": "tok", "RPS_TWILIO_BASE_URL": fake_twilio.url}.items():
        monkeypatch.setenv(k, v)
    engine = make_engine(sqlite_db_url)
    place_order(engine, seed_customer(engine))
    assert run("outbox", "status")["unpublished"] == 1
    fake_twilio.script.append(Scripted(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}))

    stats = run("worker", "--once")
    assert stats["published"] == 1 and stats["sent"] == 1 and stats["dead_lettered"] == 1
    assert run("outbox", "status")["unpublished"] == 0
    [letter] = run("outbox", "dead-letters", "list", "--json")
    assert letter["handler"] == "order-sms" and letter["status_code"] == 400 and "21610" in letter["reason"]

    assert run("outbox", "dead-letters", "replay") == [{"id": letter["id"], "outcome": "sent"}]
    assert run("outbox", "dead-letters", "list", "--json") == []
    assert len(fake_twilio.accepted) == 1 and len(fake_sendgrid.accepted) == 1
    engine.dispose()


def test_crypto_status_and_rotate_from_the_cli(sqlite_db_url, monkeypatch):
    monkeypatch.setenv("RPS_DATABASE_URL", sqlite_db_url)
    engine = make_engine(sqlite_db_url)
    seed_customer(engine)
    engine.dispose()
    status = run("crypto", "status")
    assert status["columns"]["customers.phone"] == {f"key:{status['active_key']}": 1}
    rotated = run("crypto", "rotate")
    assert {c["column"]: c["reencrypted"] for c in rotated["columns"]}["customers.phone"] == 0
    new_key = CliRunner().invoke(cli, ["crypto", "new-key", "--kid", "k2"]).output.strip()
    assert new_key.startswith("k2:") and len(new_key) == 3 + 44
