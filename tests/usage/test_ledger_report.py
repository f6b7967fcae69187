"""The ledger, the pricing catalog, and reports that agree between the CLI and GET /usage."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from api.conftest import AUDIENCE, ISSUER, SECRET, make_token
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from rps_port.api.app import create_app
from rps_port.cli.main import app as cli
from rps_port.config import load_settings
from rps_port.db import make_engine, session_scope
from rps_port.usage import record_usage
from rps_port.usage.models import UsageEvent
from rps_port.usage.pricing import Catalog, PricingError, load_catalog
from rps_port.usage.report import ReportError, usage_report

ORG, OTHER = "6a0000000000000000000001", "6a0000000000000000000002"
C1, C2, P1 = "6a00000000000000000000c1", "6a00000000000000000000c2", "6a00000000000000000000a1"
T = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_catalog_prices_by_date_country_and_model():
    cat = load_catalog()
    assert cat.quote("sms.sent", "segment", Decimal(3), datetime(2024, 6, 1, tzinfo=UTC), provider="twilio", country="US").cost == Decimal("0.0237")
    assert cat.quote("sms.sent", "segment", Decimal(3), T, provider="twilio", country="US").cost == Decimal("0.0249")
    assert cat.quote("sms.sent", "segment", Decimal(1), T, provider="twilio", country="BR").unit_price == Decimal("0.1000")
    q = cat.quote("llm.tokens", "output_token", Decimal(1234), T, provider="openai", model="gpt-4o")
    assert q.cost == Decimal("0.01234") and q.version == cat.version
    assert cat.quote("llm.tokens", "input_token", Decimal(1), T, provider="openai", model="unknown") is None
    assert cat.country_of("+44 7700 900123") == "GB" and cat.country_of("+353 1 555") == "IE"
    assert cat.country_of("07700 900123") is None


def test_catalog_rejects_float_prices(tmp_path: Path):
    bad = tmp_path / "p.toml"
    bad.write_text('version = "1"\ncurrency = "USD"\n[[prices]]\ntype = "email.sent"\nunit = "email"\nprice = 0.1\neffective_from = 2024-01-01\n')
    with pytest.raises(PricingError, match=r"prices\[0\]: 'price' must be a decimal string"):
        Catalog.load(bad)


def test_record_usage_is_idempotent_and_exact(db_url):
    engine = make_engine(db_url)
    with session_scope(engine) as s:
        a = record_usage(s, idempotency_id="step-1", type="llm.tokens", quantity=1_000_001, unit="input_token",
                         provider="openai", model="gpt-4o", org_id=ORG, occurred_at=T)
        again = record_usage(s, idempotency_id="step-1", type="llm.tokens", quantity=5, unit="input_token",
                             provider="openai", model="gpt-4o", org_id=ORG, occurred_at=T)
        assert again is a
    with session_scope(engine) as s:
        record_usage(s, idempotency_id="step-1", type="llm.tokens", quantity=5, unit="input_token",
                     provider="openai", model="gpt-4o", org_id=ORG, occurred_at=T)
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(UsageEvent)) == 1
        row = s.get(UsageEvent, "step-1")
    assert row.quantity == Decimal(1_000_001) and row.cost == Decimal("2.5000025")
    with pytest.raises(TypeError), session_scope(engine) as s:
        record_usage(s, idempotency_id="f", type="email.sent", quantity=1.0, unit="email", org_id=ORG)
    engine.dispose()


def _seed(engine) -> None:
    with session_scope(engine) as s:
        for i in range(7):
            record_usage(s, idempotency_id=f"e{i}", type="email.sent", quantity=1, unit="email", provider="sendgrid",
                         org_id=ORG, client_id=C1 if i % 2 else C2, project_id=P1, occurred_at=T)
        for i in range(5):
            record_usage(s, idempotency_id=f"s{i}", type="sms.sent", quantity=i + 1, unit="segment", provider="twilio",
                         country="GB", org_id=ORG, client_id=C1, project_id=P1, occurred_at=T)
        record_usage(s, idempotency_id="x", type="llm.tokens", quantity=10, unit="input_token", provider="acme",
                     model="nope", org_id=ORG, client_id=C1, occurred_at=T)
        record_usage(s, idempotency_id="other", type="email.sent", quantity=1, unit="email", provider="sendgrid",
                     org_id=OTHER, occurred_at=T)
        record_usage(s, idempotency_id="old", type="email.sent", quantity=1, unit="email", provider="sendgrid",
                     org_id=ORG, client_id=C1, occurred_at=datetime(2025, 1, 1, tzinfo=UTC))


def test_report_groups_and_totals(db_url):
    engine = make_engine(db_url)
    _seed(engine)
    with Session(engine) as s:
        rep = usage_report(s, org_id=ORG, since=datetime(2026, 1, 1, tzinfo=UTC), group_by="client,type")
        with pytest.raises(ReportError, match="unknown field 'colour'"):
            usage_report(s, org_id=ORG, group_by="colour")
    rows = {(r.key["client"], r.key["type"]): r for r in rep.rows}
    assert rows[(C1, "sms.sent")].quantity == 15 and rows[(C1, "sms.sent")].cost == Decimal("0.7860")
    assert rows[(C2, "email.sent")].events == 4 and rows[(C2, "email.sent")].cost == Decimal("0.00140")
    assert rows[(C1, "llm.tokens")].unpriced == 1 and rows[(C1, "llm.tokens")].cost == 0
    # 7 emails * 0.00035 + 15 GB segments * 0.0524; the other org and the 2025 row are not in it
    assert rep.total_cost == Decimal("0.00245") + Decimal("0.7860")
    assert rep.total_events == 13
    engine.dispose()


async def test_cli_and_api_give_the_same_totals(db_url, monkeypatch):
    engine = make_engine(db_url)
    _seed(engine)
    engine.dispose()
    monkeypatch.setenv("RPS_DATABASE_URL", db_url)
    result = CliRunner().invoke(cli, ["usage", "report", "--org", ORG, "--since", "2026-01-01",
                                      "--group-by", "client,project,type", "--format", "json"])
    assert result.exit_code == 0, result.output
    from_cli = json.loads(result.output)
    csv_out = CliRunner().invoke(cli, ["usage", "report", "--org", ORG, "--since", "2026-01-01", "--format", "csv"])
    assert csv_out.output.strip().splitlines()[-1].endswith(f",{from_cli['total']['cost']},1")

    settings = load_settings(database_url=db_url, jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    app = create_app(settings)  # GET /usage is mounted at the app factory's EXTRA_ROUTERS seam
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        ok = await client.get("/usage", params={"since": "2026-01-01T00:00:00Z"},
                              headers={"Authorization": f"Bearer {make_token(ORG, ['finance'])}"})
        denied = await client.get("/usage", headers={"Authorization": f"Bearer {make_token(ORG, ['support'])}"})
        scoped = await client.get("/usage", params={"since": "2026-01-01T00:00:00Z"},
                                  headers={"Authorization": f"Bearer {make_token(ORG, ['admin'], clients=[C2])}"})
        bad = await client.get("/usage", params={"group_by": "colour"},
                               headers={"Authorization": f"Bearer {make_token(ORG, ['admin'])}"})
    await app.state.rps_context.aclose()
    assert ok.status_code == 200, ok.text
    assert ok.json()["total"] == from_cli["total"] and ok.json()["rows"] == from_cli["rows"]
    assert from_cli["total"]["cost"] == "0.78845" and from_cli["currency"] == "USD"
    assert denied.status_code == 403
    assert scoped.json()["total"]["cost"] == "0.0014"
    assert bad.status_code == 422
