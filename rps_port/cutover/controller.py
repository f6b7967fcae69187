"""The cutover controller: reads the state, proposes a move, evaluates its gates, and (only when asked
to execute) records the move in the database and the audit log. A refused move changes nothing but
the record of the refusal (and a pause when a gate was inconclusive)."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select, update

from rps_port.cutover import stages as st
from rps_port.cutover.audit import AuditCheck, AuditLog
from rps_port.cutover.cohorts import CohortPolicy, Overrides, parse_steps
from rps_port.cutover.evidence import EvidenceProvider, RecordedEvidence
from rps_port.cutover.gates import Context, GateConfig, GateResult, Outcome, decision, evaluate, gates_for
from rps_port.cutover.models import CohortOverride, CutoverState, GateRecord
from rps_port.db import make_engine, session_scope
from rps_port.timeutil import utcnow


class CutoverError(RuntimeError):
    """A move that cannot be made; the message says why and what to do."""


class ConcurrentChange(CutoverError):
    pass


@dataclass(frozen=True)
class State:
    stage: str = "legacy"
    percent: float = 0.0
    paused: bool = False
    paused_reason: str | None = None
    live_since: datetime | None = None
    version: int = 0
    audit_seq: int = 0
    audit_head: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "percent": self.percent, "paused": self.paused, "paused_reason": self.paused_reason,
                "live_since": self.live_since.isoformat() if self.live_since else None,
                "updated_at": self.updated_at.isoformat() if self.updated_at else None, "updated_by": self.updated_by}


@dataclass
class Move:
    kind: str  # advance | rollback | pause | resume | override
    from_stage: str
    from_percent: float
    to_stage: str
    to_percent: float
    gates: list[GateResult] = field(default_factory=list)
    outcome: Outcome = Outcome.PASSED
    executed: bool = False
    applied: bool = False
    message: str = ""
    reverse_sync: Any = None
    audit: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        rs = self.reverse_sync
        return {"kind": self.kind, "from": {"stage": self.from_stage, "percent": self.from_percent},
                "to": {"stage": self.to_stage, "percent": self.to_percent}, "outcome": self.outcome.value,
                "executed": self.executed, "applied": self.applied, "message": self.message,
                "gates": [g.to_json() for g in self.gates],
                "reverse_sync": rs.to_json() if hasattr(rs, "to_json") else rs}


ReverseSyncFn = Callable[[datetime | None, bool], Any]


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


class Controller:
    def __init__(
        self,
        settings: Any,
        *,
        engine: Engine | None = None,
        evidence: EvidenceProvider | None = None,
        reverse_sync: ReverseSyncFn | None = None,
        actor: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.evidence = evidence or RecordedEvidence()
        self.reverse_sync = reverse_sync
        self.actor = actor or default_actor()
        self.clock = clock
        self.audit = AuditLog(settings.cutover_audit_log)
        self.gate_config = GateConfig.from_settings(settings)
        self.ramp = parse_steps(settings.cutover_ramp_steps)

    # ------------------------------------------------------------------ reads
    def state(self) -> State:
        with session_scope(self.engine) as s:
            row = s.get(CutoverState, 1)
            if row is None:
                return State()
            return State(row.stage, row.percent, row.paused, row.paused_reason, row.live_since, row.version,
                         row.audit_seq, row.audit_head, row.updated_at, row.updated_by)

    def overrides(self) -> Overrides:
        with session_scope(self.engine) as s:
            rows = s.scalars(select(CohortOverride)).all()
        return Overrides.from_rows(rows)

    def cohort(self, state: State | None = None) -> CohortPolicy:
        state = state or self.state()
        return CohortPolicy(state.percent, self.settings.cutover_cohort_by, self.overrides())

    def gate_history(self, limit: int = 20) -> list[GateRecord]:
        with session_scope(self.engine) as s:
            return list(s.scalars(select(GateRecord).order_by(GateRecord.id.desc()).limit(limit)))

    def verify_audit(self) -> AuditCheck:
        state = self.state()
        return self.audit.verify(state.audit_head, state.audit_seq)

    # ------------------------------------------------------------------ planning
    def target_of_advance(self, state: State, to: str | None, percent: float | None) -> tuple[str, float]:
        if state.stage == "complete":
            raise CutoverError("the cutover is complete; there is nothing to advance to")
        if percent is not None:
            if not 0 < percent <= 100:
                raise CutoverError(f"--percent {percent:g} must be in (0, 100]")
            if to not in (None, "canary"):
                raise CutoverError("--percent only applies to the canary stage")
            if state.stage == "shadow":
                return "canary", percent
            if state.stage != "canary":
                raise CutoverError(f"--percent needs the shadow or canary stage; the stage is {state.stage}")
            if percent <= state.percent:
                raise CutoverError(f"--percent {percent:g} is not above the current {state.percent:g}%; "
                                   "lowering the share is a rollback")
            return "canary", percent
        if to is not None:
            if to == state.stage == "canary":
                return "canary", self._next_step(state.percent) or 100.0
            st.check_forward(state.stage, to)
            return to, self._percent_for(to)
        nxt = st.next_stage(state.stage)
        if state.stage == "canary":
            step = self._next_step(state.percent)
            if step is not None:
                return "canary", step
        if state.stage == "shadow":
            return "canary", self.ramp[0]
        return nxt, self._percent_for(nxt)

    def _next_step(self, percent: float) -> float | None:
        return next((s for s in self.ramp if s > percent), None)

    def _percent_for(self, stage: str) -> float:
        return {"legacy": 0.0, "shadow": 0.0, "canary": self.ramp[0], "live": 100.0, "complete": 100.0}[stage]

    def evaluate_gates(self, from_stage: str, to_stage: str, approved_by: str | None = None) -> list[GateResult]:
        ctx = Context(self.evidence, self.gate_config, self.clock(), approved_by)
        return evaluate(gates_for(from_stage, to_stage, self.gate_config), ctx)

    # ------------------------------------------------------------------ moves
    def advance(self, to: str | None = None, percent: float | None = None, *, execute: bool = False,
                approved_by: str | None = None) -> Move:
        state = self.state()
        try:
            to_stage, to_percent = self.target_of_advance(state, to, percent)
        except st.TransitionError as exc:
            raise CutoverError(str(exc)) from None
        gates = self.evaluate_gates(state.stage, to_stage, approved_by)
        outcome = decision(gates)
        move = Move("advance", state.stage, state.percent, to_stage, to_percent, gates, outcome, execute)
        if state.paused:
            move.outcome = Outcome.INCONCLUSIVE if outcome == Outcome.PASSED else outcome
            move.message = f"paused ({state.paused_reason}); run `cutover resume --execute` first"
            return move
        if outcome == Outcome.PASSED:
            move.message = "all enforced gates passed" + ("" if execute else "; dry run: pass --execute to apply")
        elif outcome == Outcome.FAILED:
            move.message = "refused: a gate failed; the current stage stays in force"
        else:
            move.message = "refused and paused: a gate was inconclusive (not enough evidence); the current stage stays in force"
        if not execute:
            return move
        self._record_gates(move)
        if outcome == Outcome.PASSED:
            changes: dict[str, Any] = {"stage": to_stage, "percent": to_percent}
            if to_stage == "live" and state.stage != "live":
                changes["live_since"] = self.clock()
            move.audit = self._apply(state, "advance", changes, move)
            move.applied = True
        elif outcome == Outcome.INCONCLUSIVE:
            reason = "inconclusive gate(s): " + ", ".join(g.gate for g in gates if g.enforced and g.outcome == Outcome.INCONCLUSIVE)
            move.audit = self._apply(state, "advance-refused", {"paused": True, "paused_reason": reason}, move)
        else:
            move.audit = self._apply(state, "advance-refused", {}, move)
        return move

    def rollback(self, to: str | None = None, *, execute: bool = False) -> Move:
        state = self.state()
        targets = st.rollback_targets(state.stage)
        target = to or (targets[0] if targets else state.stage)
        try:
            st.check_rollback(state.stage, target)
        except st.TransitionError as exc:
            raise CutoverError(str(exc)) from None
        move = Move("rollback", state.stage, state.percent, target, self._rollback_percent(state, target), executed=execute)
        if state.stage == "live":
            if self.reverse_sync is None:
                move.outcome = Outcome.FAILED
                move.message = ("refused: rolling back from live needs reverse sync (writes made on the new side would be lost); "
                                "set RPS_MONGO_URI and make sure the ETL mapping is installed")
                return move
            report = self.reverse_sync(state.live_since, execute)
            move.reverse_sync = report
            if getattr(report, "errors", None):
                move.outcome = Outcome.FAILED
                move.message = f"refused: reverse sync failed for {len(report.errors)} record(s); the stage stays live"
                if execute:
                    move.audit = self._apply(state, "rollback-refused", {}, move)
                return move
        move.message = "rollback " + ("applied" if execute else "planned; dry run: pass --execute to apply")
        if getattr(move.reverse_sync, "conflicts", None):
            move.message += f"; {len(move.reverse_sync.conflicts)} conflict(s) left for review (legacy changed too)"
        if execute:
            changes: dict[str, Any] = {"stage": target, "percent": move.to_percent}
            if target not in ("live", "complete"):
                changes["live_since"] = None
            move.audit = self._apply(state, "rollback", changes, move)
            move.applied = True
        return move

    def keep_legacy_in_step(self, *, execute: bool = False) -> Move:
        """While live: write the new side's changes since `live_since` back to legacy (reverse sync)."""
        state = self.state()
        if state.stage != "live":
            raise CutoverError(f"reverse sync keeps legacy in step while live; the stage is {state.stage}")
        if self.reverse_sync is None:
            raise CutoverError("reverse sync is not available: set RPS_MONGO_URI (the legacy MongoDB)")
        report = self.reverse_sync(state.live_since, execute)
        move = Move("reverse-sync", state.stage, state.percent, state.stage, state.percent, executed=execute,
                    reverse_sync=report)
        if report.errors:
            move.outcome = Outcome.FAILED
        move.message = f"reverse sync {report.summary()}" + ("" if execute else "; dry run: pass --execute to write")
        if execute and (report.written or report.conflicts or report.errors):
            move.audit = self._apply(state, "reverse-sync", {}, move)
        return move

    def _rollback_percent(self, state: State, target: str) -> float:
        if target == "canary":
            return state.percent if state.stage == "canary" else 100.0
        return self._percent_for(target)

    def pause(self, reason: str, *, execute: bool = False) -> Move:
        state = self.state()
        move = Move("pause", state.stage, state.percent, state.stage, state.percent, executed=execute,
                    message="already paused" if state.paused else f"pause: {reason}")
        if execute and not state.paused:
            move.audit = self._apply(state, "pause", {"paused": True, "paused_reason": reason}, move)
            move.applied = True
        return move

    def resume(self, *, execute: bool = False) -> Move:
        state = self.state()
        move = Move("resume", state.stage, state.percent, state.stage, state.percent, executed=execute,
                    message="resume" if state.paused else "not paused")
        if execute and state.paused:
            move.audit = self._apply(state, "resume", {"paused": False, "paused_reason": None}, move)
            move.applied = True
        return move

    def set_override(self, kind: str, subject_id: str, action: str | None, *, reason: str | None = None,
                     execute: bool = False) -> Move:
        """Force an org/client into (allow) or out of (deny) the cohort; action None removes the override."""
        if kind not in ("org", "client") or action not in (None, "allow", "deny"):
            raise CutoverError("override kind is org|client and action allow|deny")
        state = self.state()
        label = f"{action or 'remove'} {kind} {subject_id}"
        move = Move("override", state.stage, state.percent, state.stage, state.percent, executed=execute, message=label)
        if execute:
            with session_scope(self.engine) as s:
                s.execute(delete(CohortOverride).where(CohortOverride.kind == kind, CohortOverride.subject_id == subject_id))
                if action:
                    s.add(CohortOverride(kind=kind, subject_id=subject_id, action=action, reason=reason,
                                         created_at=self.clock(), created_by=self.actor))
            move.audit = self._apply(state, "override", {}, move, extra={"override": {"kind": kind, "id": subject_id,
                                                                                     "action": action, "reason": reason}})
            move.applied = True
        return move

    # ------------------------------------------------------------------ persistence
    def _record_gates(self, move: Move) -> None:
        now = self.clock()
        with session_scope(self.engine) as s:
            for g in move.gates:
                s.add(GateRecord(evaluated_at=now, from_stage=move.from_stage, to_stage=move.to_stage,
                                 to_percent=move.to_percent, gate=g.gate, outcome=g.outcome.value,
                                 enforced=g.enforced, message=g.message, evidence=g.evidence))

    def _apply(self, state: State, action: str, changes: dict[str, Any], move: Move,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Change the state row (guarded by its version) and append the audit entry in one transaction."""
        now = self.clock()
        with session_scope(self.engine) as s:
            row = s.get(CutoverState, 1)
            if row is None:
                row = CutoverState(id=1, stage="legacy", percent=0.0, paused=False, version=0, audit_seq=0, updated_at=now)
                s.add(row)
                s.flush()
            new_version = row.version + 1
            values = {**changes, "version": new_version, "updated_at": now, "updated_by": self.actor}
            res = s.execute(update(CutoverState).where(CutoverState.id == 1, CutoverState.version == state.version)
                            .values(**values))
            if res.rowcount != 1:
                raise ConcurrentChange("the cutover state changed while this command ran; run `cutover status` and retry")
            rs = move.reverse_sync
            entry = self.audit.append(
                actor=self.actor, action=action,
                **{"from": {"stage": move.from_stage, "percent": move.from_percent},
                   "to": {"stage": changes.get("stage", state.stage), "percent": changes.get("percent", state.percent)},
                   "outcome": move.outcome.value, "message": move.message,
                   "gates": [g.to_json() for g in move.gates],
                   "reverse_sync": rs.summary() if hasattr(rs, "summary") else None,
                   **(extra or {})},
            )
            s.execute(update(CutoverState).where(CutoverState.id == 1)
                      .values(audit_seq=entry["seq"], audit_head=entry["hash"]))
        return entry

    # ------------------------------------------------------------------ views
    def plan(self) -> dict[str, Any]:
        cfg = self.gate_config
        transitions = []
        for frm, to in st.FORWARD.items():
            transitions.append({"from": frm, "to": to, "gates": gates_for(frm, to, cfg)})
        transitions.insert(2, {"from": "canary", "to": "canary (next ramp step)", "gates": gates_for("canary", "canary", cfg)})
        return {
            "stages": [{"name": s.name, "reads": s.reads.value, "writes": s.writes.value,
                        "authoritative": s.authoritative.value, "shadow": s.shadow, "kept_in_step_by": s.keeps_in_step,
                        "description": s.description, "rollback_to": st.rollback_targets(s.name)} for s in st.STAGES.values()],
            "transitions": transitions,
            "ramp_steps": self.ramp,
            "cohort_by": self.settings.cutover_cohort_by,
            "thresholds": {"max_sync_lag_seconds": cfg.max_sync_lag_seconds, "verify_max_age_seconds": cfg.verify_max_age_seconds,
                           "max_mismatch_rate": cfg.max_mismatch_rate, "min_shadow_sample": cfg.min_shadow_sample,
                           "max_error_rate": cfg.max_error_rate, "max_p99_ms": cfg.max_p99_ms,
                           "min_requests": cfg.min_requests, "require_approval": cfg.require_approval,
                           "dry_run_gates": sorted(cfg.dry_run_gates)},
            "overrides": _overrides_json(self.overrides()),
            "audit_log": str(self.audit.path),
        }

    def status(self) -> dict[str, Any]:
        state = self.state()
        out: dict[str, Any] = {"state": state.to_json(), "overrides": _overrides_json(self.overrides())}
        lag = self.evidence.sync_lag()
        out["sync_lag_seconds"] = lag.seconds if lag else None
        try:
            to_stage, to_percent = self.target_of_advance(state, None, None)
            gates = self.evaluate_gates(state.stage, to_stage)
            out["next"] = {"stage": to_stage, "percent": to_percent, "outcome": decision(gates).value,
                           "gates": [g.to_json() for g in gates]}
        except CutoverError:
            out["next"] = None
        out["rollback_to"] = st.rollback_targets(state.stage)
        out["audit"] = {"path": str(self.audit.path), "entries": state.audit_seq}
        return out


def _overrides_json(o: Overrides) -> dict[str, list[str]]:
    return {"allow_orgs": sorted(o.allow_orgs), "deny_orgs": sorted(o.deny_orgs),
            "allow_clients": sorted(o.allow_clients), "deny_clients": sorted(o.deny_clients)}

