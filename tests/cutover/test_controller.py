from __future__ import annotations

import json

import pytest

from rps_port.cutover.controller import ConcurrentChange, CutoverError
from rps_port.cutover.evidence import RecordedEvidence, SyncLag
from rps_port.cutover.gates import Outcome
from rps_port.cutover.models import GateRecord
from rps_port.cutover.reverse import ReverseSyncReport
from rps_port.db import session_scope

from .conftest import good_evidence


def test_nothing_changes_without_execute(db_url, make_controller):
    ctl = make_controller(db_url)
    move = ctl.advance()
    assert move.to_stage == "shadow" and move.outcome == Outcome.PASSED and not move.applied
    assert ctl.state().stage == "legacy"
    assert ctl.audit.entries() == []
    with session_scope(ctl.engine) as s:
        assert s.query(GateRecord).count() == 0


def test_walk_every_stage_and_ramp_step(db_url, make_controller):
    ctl = make_controller(db_url)
    seen = []
    while ctl.state().stage != "complete":
        move = ctl.advance(execute=True)
        assert move.applied, move.message
        seen.append((ctl.state().stage, ctl.state().percent))
    assert seen == [("shadow", 0), ("canary", 1), ("canary", 5), ("canary", 25), ("canary", 50),
                    ("canary", 100), ("live", 100), ("complete", 100)]
    assert ctl.state().live_since is not None
    assert [e["action"] for e in ctl.audit.entries()] == ["advance"] * 8
    assert ctl.verify_audit().ok
    with pytest.raises(CutoverError, match="complete"):
        ctl.advance()
    with pytest.raises(CutoverError, match="legacy is retired"):
        ctl.rollback()


def test_percent_and_to_options(db_url, make_controller):
    ctl = make_controller(db_url)
    with pytest.raises(CutoverError, match="needs the shadow or canary"):
        ctl.advance(percent=10)
    with pytest.raises(CutoverError, match="next stage is shadow"):
        ctl.advance(to="live")
    ctl.advance(execute=True)
    ctl.advance(percent=10, execute=True)
    assert (ctl.state().stage, ctl.state().percent) == ("canary", 10)
    with pytest.raises(CutoverError, match="lowering the share is a rollback"):
        ctl.advance(percent=5)
    assert ctl.advance().to_percent == 25  # next ramp step above 10
    ctl.advance(to="live", execute=True)
    assert ctl.state().stage == "live"


def test_failed_gate_leaves_the_previous_stage_and_is_recorded(db_url, make_controller):
    ev = good_evidence()
    ctl = make_controller(db_url, ev)
    ctl.advance(execute=True)
    ev.lag = SyncLag(600.0, "test")
    move = ctl.advance(execute=True)
    assert move.outcome == Outcome.FAILED and not move.applied
    assert ctl.state().stage == "shadow" and not ctl.state().paused
    assert ctl.audit.entries()[-1]["action"] == "advance-refused"
    with session_scope(ctl.engine) as s:
        failed = s.query(GateRecord).filter_by(gate="sync_lag", outcome="failed").one()
        assert failed.evidence["lag_seconds"] == 600.0


def test_inconclusive_gate_pauses_until_resume(db_url, make_controller):
    ev = good_evidence()
    ctl = make_controller(db_url, ev)
    ctl.advance(execute=True)
    ev.shadow_stats = None
    move = ctl.advance(execute=True)
    assert move.outcome == Outcome.INCONCLUSIVE and not move.applied
    state = ctl.state()
    assert state.stage == "shadow" and state.paused and "shadow" in state.paused_reason
    ctl.evidence = good_evidence()
    blocked = ctl.advance(execute=True)
    assert not blocked.applied and "resume" in blocked.message
    assert not ctl.resume().applied and ctl.state().paused  # dry run
    assert ctl.resume(execute=True).applied
    assert ctl.advance(execute=True).applied
    assert ctl.state().stage == "canary"


def test_pause_blocks_advance(db_url, make_controller):
    ctl = make_controller(db_url)
    ctl.pause("change freeze", execute=True)
    assert not ctl.advance(execute=True).applied
    assert ctl.state().stage == "legacy"


def test_rollback_one_back_or_to_legacy(db_url, make_controller):
    ctl = make_controller(db_url)
    for _ in range(3):
        ctl.advance(execute=True)  # shadow, canary 1, canary 5
    assert ctl.rollback().to_stage == "shadow"
    assert ctl.state().stage == "canary"  # dry run changed nothing
    ctl.rollback(to="legacy", execute=True)
    assert (ctl.state().stage, ctl.state().percent) == ("legacy", 0)
    with pytest.raises(CutoverError, match="first stage"):
        ctl.rollback()


def test_rollback_from_live_requires_reverse_sync(db_url, make_controller):
    ctl = make_controller(db_url)
    ctl.advance(execute=True)
    ctl.advance(to="canary", percent=100, execute=True)
    ctl.advance(execute=True)
    assert ctl.state().stage == "live"
    refused = ctl.rollback(execute=True)
    assert refused.outcome == Outcome.FAILED and "reverse sync" in refused.message
    assert ctl.state().stage == "live"

    calls = []

    def reverse(since, execute):
        calls.append((since, execute))
        return ReverseSyncReport(execute, written=["orders/1"], conflicts=["customers/2: legacy updatedAt newer"])

    ctl.reverse_sync = reverse
    dry = ctl.rollback()
    assert calls[-1] == (ctl.state().live_since, False) and "conflict" in dry.message
    move = ctl.rollback(execute=True)
    assert move.applied and ctl.state().stage == "canary" and ctl.state().live_since is None
    entry = ctl.audit.entries()[-1]
    assert entry["action"] == "rollback" and "1 written" in entry["reverse_sync"]


def test_reverse_sync_errors_keep_live(db_url, make_controller):
    ctl = make_controller(db_url)
    ctl.advance(execute=True)
    ctl.advance(percent=100, execute=True)
    ctl.advance(execute=True)
    ctl.reverse_sync = lambda since, execute: ReverseSyncReport(execute, errors=["orders/1: mongo down"])
    move = ctl.rollback(execute=True)
    assert move.outcome == Outcome.FAILED and ctl.state().stage == "live"


def test_overrides_are_stored_and_audited(db_url, make_controller):
    ctl = make_controller(db_url)
    org = "5f0c2b9e8a1d4e3f2a1b0c9d"
    ctl.set_override("org", org, "allow", reason="pilot customer", execute=True)
    assert ctl.cohort().contains(org)
    ctl.set_override("org", org, "deny", execute=True)
    assert org in ctl.overrides().deny_orgs and org not in ctl.overrides().allow_orgs
    ctl.set_override("org", org, None, execute=True)
    assert not ctl.overrides().deny_orgs
    assert [e["override"]["action"] for e in ctl.audit.entries()] == ["allow", "deny", None]


def test_concurrent_change_is_refused(db_url, make_controller):
    a, b = make_controller(db_url), make_controller(db_url)
    stale = a.state()
    b.advance(execute=True)
    move = a.advance()
    with pytest.raises(ConcurrentChange):
        a._apply(stale, "advance", {"stage": "shadow"}, move)


def test_missing_evidence_never_advances(db_url, make_controller):
    ctl = make_controller(db_url, RecordedEvidence())
    move = ctl.advance(execute=True)
    assert move.outcome == Outcome.INCONCLUSIVE and ctl.state().stage == "legacy" and ctl.state().paused


def test_audit_detects_tampering(db_url, make_controller):
    ctl = make_controller(db_url)
    for _ in range(3):
        ctl.advance(execute=True)
    assert ctl.verify_audit().ok
    path = ctl.audit.path
    original = path.read_text()
    lines = original.splitlines()

    entry = json.loads(lines[1])
    entry["actor"] = "mallory"
    path.write_text("\n".join([lines[0], json.dumps(entry, sort_keys=True), lines[2]]) + "\n")
    check = ctl.verify_audit()
    assert not check.ok and check.line == 2 and "edited" in check.problem

    path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    check = ctl.verify_audit()
    assert not check.ok and check.line == 2

    path.write_text("\n".join(lines[:2]) + "\n")  # tail truncated: only the database notices
    check = ctl.verify_audit()
    assert not check.ok and "truncated" in check.problem

    path.write_text(original)
    assert ctl.verify_audit().ok


def test_reverse_sync_while_live_only(db_url, make_controller):
    ctl = make_controller(db_url)
    with pytest.raises(CutoverError, match="while live"):
        ctl.keep_legacy_in_step()
    ctl.advance(execute=True)
    ctl.advance(percent=100, execute=True)
    ctl.advance(execute=True)
    with pytest.raises(CutoverError, match="RPS_MONGO_URI"):
        ctl.keep_legacy_in_step()
    ctl.reverse_sync = lambda since, execute: ReverseSyncReport(execute, written=["orders/1"])
    assert "would write" in ctl.keep_legacy_in_step().message
    move = ctl.keep_legacy_in_step(execute=True)
    assert ctl.audit.entries()[-1]["action"] == "reverse-sync" and ctl.state().stage == "live" and move.executed
    assert ctl.verify_audit().ok
