"""Gates: each reads its evidence and answers passed / failed / inconclusive, with the evidence.

Missing evidence or too small a sample is `inconclusive`, which pauses the cutover and is never
treated as a pass. A gate listed as dry-run is evaluated and reported but not enforced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from rps_port.cutover.evidence import EvidenceProvider
from rps_port.timeutil import utcnow


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class GateResult:
    gate: str
    outcome: Outcome
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    enforced: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"gate": self.gate, "outcome": self.outcome.value, "message": self.message,
                "evidence": self.evidence, "enforced": self.enforced}


@dataclass(frozen=True)
class GateConfig:
    max_sync_lag_seconds: float = 60.0
    verify_max_age_seconds: float = 3600.0
    max_mismatch_rate: float = 0.01
    min_shadow_sample: int = 100
    max_error_rate: float = 0.01
    max_p99_ms: float = 500.0
    min_requests: int = 100
    require_approval: bool = False
    dry_run_gates: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Any) -> GateConfig:
        return cls(
            max_sync_lag_seconds=settings.cutover_max_sync_lag_seconds,
            verify_max_age_seconds=settings.cutover_verify_max_age_seconds,
            max_mismatch_rate=settings.cutover_max_mismatch_rate,
            min_shadow_sample=settings.cutover_min_shadow_sample,
            max_error_rate=settings.cutover_max_error_rate,
            max_p99_ms=settings.cutover_max_p99_ms,
            min_requests=settings.cutover_min_requests,
            require_approval=settings.cutover_require_approval,
            dry_run_gates=frozenset(g.strip() for g in settings.cutover_dry_run_gates.split(",") if g.strip()),
        )


@dataclass(frozen=True)
class Context:
    evidence: EvidenceProvider
    config: GateConfig
    now: datetime
    approved_by: str | None = None


def _inconclusive(name: str, why: str, **ev: Any) -> GateResult:
    return GateResult(name, Outcome.INCONCLUSIVE, why, ev)


def sync_lag(ctx: Context) -> GateResult:
    lag = ctx.evidence.sync_lag()
    bound = ctx.config.max_sync_lag_seconds
    if lag is None:
        return _inconclusive("sync_lag", "no sync lag recorded (evidence file or sync)", bound_seconds=bound)
    ev = {"lag_seconds": lag.seconds, "bound_seconds": bound, "source": lag.source}
    if lag.seconds <= bound:
        return GateResult("sync_lag", Outcome.PASSED, f"sync lag {lag.seconds:.1f}s <= {bound:g}s", ev)
    return GateResult("sync_lag", Outcome.FAILED, f"sync lag {lag.seconds:.1f}s > {bound:g}s", ev)


def verify_clean(ctx: Context) -> GateResult:
    v = ctx.evidence.last_verify()
    max_age = ctx.config.verify_max_age_seconds
    if v is None:
        return _inconclusive("verify", "no verify result recorded", max_age_seconds=max_age)
    age = (ctx.now - v.finished_at).total_seconds()
    ev = {"differences": v.differences, "checked": v.checked, "finished_at": v.finished_at.isoformat(),
          "age_seconds": round(age, 1), "max_age_seconds": max_age, "source": v.source}
    if v.differences:
        return GateResult("verify", Outcome.FAILED, f"last verify found {v.differences} difference(s)", ev)
    if age > max_age:
        return GateResult("verify", Outcome.FAILED, f"last verify is {age:.0f}s old (> {max_age:g}s): run it again", ev)
    if v.checked == 0:
        return GateResult("verify", Outcome.INCONCLUSIVE, "last verify checked no records", ev)
    return GateResult("verify", Outcome.PASSED, f"verify clean over {v.checked} records, {age:.0f}s ago", ev)


def shadow_mismatch(ctx: Context) -> GateResult:
    s = ctx.evidence.shadow()
    cfg = ctx.config
    if s is None:
        return _inconclusive("shadow", "no shadow results (run `shadow run`)", max_rate=cfg.max_mismatch_rate)
    bound = s.bound()
    ev = {"samples": s.samples, "mismatches": s.mismatches, "upper_bound": round(bound, 6),
          "max_rate": cfg.max_mismatch_rate, "min_sample": cfg.min_shadow_sample, "source": s.source}
    if s.report:
        ev["report"] = s.report
    if s.samples < cfg.min_shadow_sample:
        return GateResult("shadow", Outcome.INCONCLUSIVE,
                          f"only {s.samples} samples (< {cfg.min_shadow_sample}): not enough data", ev)
    if bound <= cfg.max_mismatch_rate:
        return GateResult("shadow", Outcome.PASSED,
                          f"mismatch upper bound {bound:.2%} <= {cfg.max_mismatch_rate:.2%} over {s.samples} samples", ev)
    return GateResult("shadow", Outcome.FAILED,
                      f"mismatch upper bound {bound:.2%} > {cfg.max_mismatch_rate:.2%} ({s.mismatches}/{s.samples})", ev)


def _metrics(ctx: Context, name: str) -> tuple[Any, GateResult | None]:
    m = ctx.evidence.metrics()
    if m is None:
        return None, _inconclusive(name, "no request metrics from the new side")
    if m.requests < ctx.config.min_requests:
        return None, GateResult(name, Outcome.INCONCLUSIVE,
                                f"only {m.requests} requests (< {ctx.config.min_requests}): not enough data",
                                {"requests": m.requests, "min_requests": ctx.config.min_requests, "source": m.source})
    return m, None


def error_rate(ctx: Context) -> GateResult:
    m, early = _metrics(ctx, "error_rate")
    if early:
        return early
    bound = ctx.config.max_error_rate
    ev = {"requests": m.requests, "errors": m.errors, "error_rate": round(m.error_rate, 6), "max_rate": bound, "source": m.source}
    ok = m.error_rate <= bound
    return GateResult("error_rate", Outcome.PASSED if ok else Outcome.FAILED,
                      f"error rate {m.error_rate:.2%} {'<=' if ok else '>'} {bound:.2%}", ev)


def p99_latency(ctx: Context) -> GateResult:
    m, early = _metrics(ctx, "p99")
    if early:
        return early
    bound = ctx.config.max_p99_ms
    if m.p99_ms is None:
        return _inconclusive("p99", "metrics carry no latency histogram", source=m.source)
    ev = {"p99_ms": m.p99_ms, "max_p99_ms": bound, "requests": m.requests, "source": m.source}
    ok = m.p99_ms <= bound
    return GateResult("p99", Outcome.PASSED if ok else Outcome.FAILED,
                      f"p99 {m.p99_ms:.0f} ms {'<=' if ok else '>'} {bound:g} ms", ev)


def approval(ctx: Context) -> GateResult:
    if ctx.approved_by:
        return GateResult("approval", Outcome.PASSED, f"approved by {ctx.approved_by}", {"approved_by": ctx.approved_by})
    return GateResult("approval", Outcome.FAILED, "manual approval required: pass --approve", {})


GATES = {"sync_lag": sync_lag, "verify": verify_clean, "shadow": shadow_mismatch,
         "error_rate": error_rate, "p99": p99_latency, "approval": approval}


def gates_for(from_stage: str, to_stage: str, config: GateConfig) -> list[str]:
    """Which gates guard a move (a canary ramp step is canary -> canary)."""
    if to_stage == "shadow":
        names = ["sync_lag", "verify"]
    elif to_stage == "canary" and from_stage == "shadow":
        names = ["sync_lag", "verify", "shadow"]
    elif to_stage == "canary":  # ramp step: the canary cohort is already served by the new side
        names = ["sync_lag", "shadow", "error_rate", "p99"]
    elif to_stage == "live":
        names = ["sync_lag", "verify", "shadow", "error_rate", "p99"]
    elif to_stage == "complete":
        names = ["error_rate", "p99"]
    else:
        names = []
    if config.require_approval and to_stage in ("canary", "live", "complete"):
        names.append("approval")
    return names


def evaluate(names: list[str], ctx: Context) -> list[GateResult]:
    out = []
    for name in names:
        r = GATES[name](ctx)
        if name in ctx.config.dry_run_gates:
            r = GateResult(r.gate, r.outcome, r.message + " (dry-run gate: reported, not enforced)", r.evidence, False)
        out.append(r)
    return out


def decision(results: list[GateResult]) -> Outcome:
    """Failed if any enforced gate failed; else inconclusive if any enforced gate was; else passed."""
    enforced = [r.outcome for r in results if r.enforced]
    if Outcome.FAILED in enforced:
        return Outcome.FAILED
    if Outcome.INCONCLUSIVE in enforced:
        return Outcome.INCONCLUSIVE
    return Outcome.PASSED


def now() -> datetime:
    return utcnow()
