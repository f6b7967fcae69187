"""The cutover stages as data: who serves reads, who takes writes, which side is authoritative.

Canary serves *reads* for its cohort from the new side while writes still go to the legacy app
(and reach SQL through ETL sync), so only `live` creates records that exist on the new side
first; that is why only a rollback from `live` needs reverse sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Side(StrEnum):
    LEGACY = "legacy"
    NEW = "new"
    COHORT = "cohort"  # the new side for orgs in the canary cohort, legacy for the rest


@dataclass(frozen=True)
class Stage:
    name: str
    order: int
    reads: Side
    writes: Side
    authoritative: Side
    shadow: str  # what is compared in the background
    keeps_in_step: str  # what keeps the non-authoritative side current
    description: str


STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        Stage("legacy", 0, Side.LEGACY, Side.LEGACY, Side.LEGACY, "nothing", "ETL sync (legacy -> SQL)",
              "Legacy serves everything; the new side is filled and kept in step by the ETL."),
        Stage("shadow", 1, Side.LEGACY, Side.LEGACY, Side.LEGACY, "new vs legacy (sampled reads)", "ETL sync (legacy -> SQL)",
              "Legacy serves; reads are replayed on the new side and compared."),
        Stage("canary", 2, Side.COHORT, Side.LEGACY, Side.LEGACY, "new vs legacy for everyone else", "ETL sync (legacy -> SQL)",
              "The cohort's reads are served by the new side; writes still go to legacy."),
        Stage("live", 3, Side.NEW, Side.NEW, Side.NEW, "legacy vs new (reverse shadow)", "reverse sync (SQL -> legacy)",
              "The new side serves and writes; legacy is kept in step by reverse sync for a rollback."),
        Stage("complete", 4, Side.NEW, Side.NEW, Side.NEW, "nothing", "nothing (legacy retired)",
              "Legacy is retired; no rollback from here."),
    )
}

STAGE_NAMES = tuple(STAGES)

# Forward moves allowed; every other forward move is refused.
FORWARD: dict[str, str] = {"legacy": "shadow", "shadow": "canary", "canary": "live", "live": "complete"}


class TransitionError(ValueError):
    """A move the stage graph does not allow; the message says which moves are allowed."""


def stage(name: str) -> Stage:
    try:
        return STAGES[name]
    except KeyError:
        raise TransitionError(f"unknown stage {name!r}; stages are {', '.join(STAGE_NAMES)}") from None


def next_stage(current: str) -> str | None:
    return FORWARD.get(stage(current).name)


def rollback_targets(current: str) -> list[str]:
    """One stage back, or straight to legacy; nothing once complete (legacy is gone)."""
    s = stage(current)
    if s.name in ("complete", "legacy"):
        return []
    back = STAGE_NAMES[s.order - 1]
    return [back] if back == "legacy" else [back, "legacy"]


def check_forward(current: str, target: str) -> None:
    stage(target)
    if FORWARD.get(current) != target:
        allowed = FORWARD.get(current)
        raise TransitionError(
            f"cannot advance from {current} to {target}; "
            + (f"the next stage is {allowed}" if allowed else f"{current} is the last stage")
        )


def check_rollback(current: str, target: str) -> None:
    stage(target)
    allowed = rollback_targets(current)
    if target not in allowed:
        if current == "complete":
            raise TransitionError("cannot roll back from complete: legacy is retired")
        raise TransitionError(
            f"cannot roll back from {current} to {target}; "
            + (f"allowed: {', '.join(allowed)}" if allowed else f"{current} is the first stage")
        )
