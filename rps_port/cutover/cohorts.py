"""Canary cohorts: orgs (or org+client pairs) bucketed by a stable hash of their id.

An id's bucket never changes, and it is in the cohort when its bucket is below the percentage,
so raising the percentage only ever adds orgs: nobody flips back to legacy mid-ramp.
Deny beats allow; both beat the percentage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

BUCKETS = 10_000  # basis points, so 0.5% steps work


def bucket(key: str) -> int:
    """Stable bucket in [0, 10000) from sha256 of the id."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % BUCKETS


def parse_steps(text: str) -> list[float]:
    try:
        steps = [float(p) for p in text.replace(" ", "").split(",") if p]
    except ValueError:
        raise ValueError(f"RPS_CUTOVER_RAMP_STEPS: {text!r} is not a comma-separated list of percentages") from None
    if not steps or any(not 0 < s <= 100 for s in steps) or steps != sorted(set(steps)):
        raise ValueError(f"RPS_CUTOVER_RAMP_STEPS: {text!r} must be increasing percentages in (0, 100]")
    if steps[-1] != 100:
        steps.append(100.0)
    return steps


@dataclass(frozen=True)
class Overrides:
    allow_orgs: frozenset[str] = field(default_factory=frozenset)
    deny_orgs: frozenset[str] = field(default_factory=frozenset)
    allow_clients: frozenset[str] = field(default_factory=frozenset)
    deny_clients: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_rows(cls, rows: Iterable[Any]) -> Overrides:
        """From `cohort_overrides` rows (each with kind org|client, action allow|deny, subject_id)."""
        sets: dict[tuple[str, str], set[str]] = {(k, a): set() for k in ("org", "client") for a in ("allow", "deny")}
        for row in rows:
            if (row.kind, row.action) in sets:
                sets[(row.kind, row.action)].add(row.subject_id)
        return cls(*(frozenset(sets[key]) for key in
                     [("org", "allow"), ("org", "deny"), ("client", "allow"), ("client", "deny")]))


@dataclass(frozen=True)
class CohortPolicy:
    percent: float
    by: str = "org"  # "org" or "client"
    overrides: Overrides = field(default_factory=Overrides)

    def key(self, org_id: str, client_id: str | None) -> str:
        return f"{org_id}:{client_id}" if self.by == "client" and client_id else org_id

    def decide(self, org_id: str, client_id: str | None = None) -> tuple[bool, str]:
        """(in cohort, why) for one caller."""
        o = self.overrides
        if org_id in o.deny_orgs:
            return False, "org denied"
        if client_id and client_id in o.deny_clients:
            return False, "client denied"
        if client_id and client_id in o.allow_clients:
            return True, "client allowed"
        if org_id in o.allow_orgs:
            return True, "org allowed"
        b = bucket(self.key(org_id, client_id))
        inside = b < round(self.percent * BUCKETS / 100)
        return inside, f"bucket {b / 100:.2f}% {'<' if inside else '>='} {self.percent:g}%"

    def contains(self, org_id: str, client_id: str | None = None) -> bool:
        return self.decide(org_id, client_id)[0]
