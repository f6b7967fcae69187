from __future__ import annotations

from datetime import timedelta

from rps_port.cutover.evidence import (
    Metrics,
    RecordedEvidence,
    ShadowStats,
    SyncLag,
    VerifyResult,
    wilson_upper,
)
from rps_port.cutover.gates import Context, GateConfig, Outcome, decision, evaluate, gates_for
from rps_port.timeutil import utcnow

NOW = utcnow()


def _ctx(ev: RecordedEvidence, **cfg) -> Context:
    return Context(ev, GateConfig(**cfg), NOW)


def good() -> RecordedEvidence:
    return RecordedEvidence(
        lag=SyncLag(2.0, "test"),
        verify=VerifyResult(NOW - timedelta(minutes=5), 0, 1200, "test"),
        shadow_stats=ShadowStats(5000, 0, "test"),
        app_metrics=Metrics(5000, 3, 120.0, "test"),
    )


def outcomes(ev: RecordedEvidence, to: str = "live", frm: str = "canary", **cfg) -> dict[str, Outcome]:
    return {r.gate: r.outcome for r in evaluate(gates_for(frm, to, GateConfig(**cfg)), _ctx(ev, **cfg))}


def test_all_gates_pass_on_good_evidence():
    res = outcomes(good())
    assert res == {g: Outcome.PASSED for g in ("sync_lag", "verify", "shadow", "error_rate", "p99")}


def test_missing_evidence_is_inconclusive_never_passed():
    res = outcomes(RecordedEvidence())
    assert set(res.values()) == {Outcome.INCONCLUSIVE}


def test_sync_lag_over_the_bound_fails():
    ev = good()
    ev.lag = SyncLag(61.0, "test")
    assert outcomes(ev)["sync_lag"] == Outcome.FAILED


def test_verify_with_differences_or_stale_fails():
    ev = good()
    ev.verify = VerifyResult(NOW, 1, 1200, "test")
    assert outcomes(ev)["verify"] == Outcome.FAILED
    ev.verify = VerifyResult(NOW - timedelta(hours=2), 0, 1200, "test")
    assert outcomes(ev)["verify"] == Outcome.FAILED


def test_shadow_uses_the_upper_bound_and_a_minimum_sample():
    ev = good()
    ev.shadow_stats = ShadowStats(50, 0, "test")  # zero mismatches but too few samples
    assert outcomes(ev)["shadow"] == Outcome.INCONCLUSIVE
    ev.shadow_stats = ShadowStats(1000, 5, "test")  # 0.5% observed, but the upper bound is above 1%
    assert wilson_upper(5, 1000) > 0.01
    assert outcomes(ev)["shadow"] == Outcome.FAILED
    ev.shadow_stats = ShadowStats(100_000, 5, "test")
    assert outcomes(ev)["shadow"] == Outcome.PASSED


def test_error_rate_and_p99():
    ev = good()
    ev.app_metrics = Metrics(1000, 50, 120.0, "test")
    assert outcomes(ev)["error_rate"] == Outcome.FAILED
    ev.app_metrics = Metrics(1000, 0, 900.0, "test")
    assert outcomes(ev)["p99"] == Outcome.FAILED
    ev.app_metrics = Metrics(10, 0, 10.0, "test")
    assert outcomes(ev)["p99"] == Outcome.INCONCLUSIVE


def test_dry_run_gate_is_reported_not_enforced():
    ev = good()
    ev.lag = SyncLag(999.0, "test")
    results = evaluate(gates_for("canary", "live", GateConfig(dry_run_gates=frozenset({"sync_lag"}))),
                       _ctx(ev, dry_run_gates=frozenset({"sync_lag"})))
    lag = next(r for r in results if r.gate == "sync_lag")
    assert lag.outcome == Outcome.FAILED and not lag.enforced and "not enforced" in lag.message
    assert decision(results) == Outcome.PASSED


def test_decision_failed_beats_inconclusive():
    ev = good()
    ev.lag = SyncLag(999.0, "test")
    ev.shadow_stats = None
    assert decision(evaluate(gates_for("canary", "live", GateConfig()), _ctx(ev))) == Outcome.FAILED


def test_approval_gate_only_when_required():
    assert "approval" not in gates_for("canary", "live", GateConfig())
    assert "approval" in gates_for("canary", "live", GateConfig(require_approval=True))
    res = outcomes(good(), require_approval=True)
    assert res["approval"] == Outcome.FAILED
