from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rps_port.cli.main import app
from rps_port.cutover.evidence import save_evidence_file

from .conftest import good_evidence

runner = CliRunner()


@pytest.fixture
def env(sqlite_db_url, tmp_path: Path, monkeypatch) -> Path:
    evidence = tmp_path / "evidence.json"
    save_evidence_file(evidence, good_evidence())
    monkeypatch.setenv("RPS_DATABASE_URL", sqlite_db_url)
    monkeypatch.setenv("RPS_CUTOVER_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("RPS_CUTOVER_EVIDENCE_FILE", str(evidence))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli(*args: str):
    return runner.invoke(app, ["cutover", *args])


def stage() -> tuple[str, float]:
    out = json.loads(cli("status", "--json").stdout)
    return out["state"]["stage"], out["state"]["percent"]


def test_plan_lists_stages_gates_and_ramp(env):
    res = cli("plan", "--json")
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert [s["name"] for s in plan["stages"]] == ["legacy", "shadow", "canary", "live", "complete"]
    assert plan["ramp_steps"] == [1, 5, 25, 50, 100]
    assert "Stages" in cli("plan").stdout


def test_advance_needs_execute_and_is_audited(env):
    res = cli("advance")
    assert res.exit_code == 0 and "dry run" in res.stdout
    assert stage() == ("legacy", 0)
    res = cli("advance", "--execute", "--actor", "alice")
    assert res.exit_code == 0, res.output
    assert stage() == ("shadow", 0)
    res = cli("advance", "--percent", "5", "--execute")
    assert res.exit_code == 0 and stage() == ("canary", 5)
    res = cli("audit", "--json")
    entries = json.loads(res.stdout)
    assert [e["actor"] for e in entries][0] == "alice"
    assert cli("audit", "--verify").exit_code == 0


def test_failed_gate_exits_non_zero_and_keeps_stage(env):
    save_evidence_file(env / "evidence.json", type(good_evidence())())  # no evidence at all
    res = cli("advance", "--execute")
    assert res.exit_code == 3 and "inconclusive" in res.stdout
    assert stage() == ("legacy", 0)
    assert json.loads(cli("status", "--json").stdout)["state"]["paused"] is True
    assert cli("resume", "--execute").exit_code == 0


def test_bad_transition_is_a_clear_error(env):
    res = cli("advance", "--to", "live")
    assert res.exit_code == 2 and "next stage is shadow" in res.output
    res = cli("rollback")
    assert res.exit_code == 2 and "first stage" in res.output


def test_tampered_audit_fails_verify(env):
    cli("advance", "--execute")
    cli("advance", "--execute")
    log = env / "audit.jsonl"
    log.write_text(log.read_text().replace('"shadow"', '"canary"', 1))
    res = cli("audit", "--verify")
    assert res.exit_code == 1 and "TAMPERED" in res.output


def test_override_and_pause(env):
    org = "5f0c2b9e8a1d4e3f2a1b0c9d"
    assert cli("override", org, "--allow", "--execute").exit_code == 0
    assert json.loads(cli("status", "--json").stdout)["overrides"]["allow_orgs"] == [org]
    assert cli("pause", "--reason", "freeze", "--execute").exit_code == 0
    res = cli("advance", "--execute")
    assert res.exit_code != 0 and "paused" in res.stdout
