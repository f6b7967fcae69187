"""Evidence the gates read, behind one small interface so real sources plug in without touching gates.

A provider answers each question or returns None ("not available"), which a gate turns into
`inconclusive`, never `passed`. `ChainEvidence` asks several providers in order.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rps_port.timeutil import ensure_utc


@dataclass(frozen=True)
class SyncLag:
    seconds: float
    source: str
    observed_at: datetime | None = None


@dataclass(frozen=True)
class VerifyResult:
    finished_at: datetime
    differences: int
    checked: int
    source: str


@dataclass(frozen=True)
class ShadowStats:
    samples: int
    mismatches: int
    source: str
    upper_bound: float | None = None  # Wilson upper bound as the shadow tool reported it
    report: str | None = None

    def bound(self) -> float:
        return self.upper_bound if self.upper_bound is not None else wilson_upper(self.mismatches, self.samples)


@dataclass(frozen=True)
class Metrics:
    requests: int
    errors: int
    p99_ms: float | None
    source: str

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@runtime_checkable
class EvidenceProvider(Protocol):
    def sync_lag(self) -> SyncLag | None: ...
    def last_verify(self) -> VerifyResult | None: ...
    def shadow(self) -> ShadowStats | None: ...
    def metrics(self) -> Metrics | None: ...


def wilson_upper(k: int, n: int, z: float = 1.959963984540054) -> float:
    """Upper end of the Wilson score interval for k failures in n trials (95% by default)."""
    if n <= 0:
        return 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + margin) / denom)


@dataclass
class RecordedEvidence:
    """Evidence held in memory: what the dry-run and tests hand to the gates after running each step."""

    lag: SyncLag | None = None
    verify: VerifyResult | None = None
    shadow_stats: ShadowStats | None = None
    app_metrics: Metrics | None = None

    def sync_lag(self) -> SyncLag | None:
        return self.lag

    def last_verify(self) -> VerifyResult | None:
        return self.verify

    def shadow(self) -> ShadowStats | None:
        return self.shadow_stats

    def metrics(self) -> Metrics | None:
        return self.app_metrics

    def to_json(self) -> dict[str, Any]:
        return {k: (None if v is None else asdict(v)) for k, v in
                (("sync_lag", self.lag), ("verify", self.verify), ("shadow", self.shadow_stats), ("metrics", self.app_metrics))}


def _dt(value: Any) -> datetime | None:
    if value is None:
        return None
    return ensure_utc(value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def load_evidence_file(path: Path) -> RecordedEvidence:
    """Evidence from a JSON file (`{"sync_lag": {...}, "verify": {...}, "shadow": {...}, "metrics": {...}}`)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    ev = RecordedEvidence()
    if lag := data.get("sync_lag"):
        ev.lag = SyncLag(float(lag["seconds"]), lag.get("source", str(path)), _dt(lag.get("observed_at")))
    if v := data.get("verify"):
        ev.verify = VerifyResult(_dt(v["finished_at"]), int(v["differences"]), int(v.get("checked", 0)), v.get("source", str(path)))
    if s := data.get("shadow"):
        ev.shadow_stats = ShadowStats(int(s["samples"]), int(s["mismatches"]), s.get("source", str(path)),
                                      s.get("upper_bound"), s.get("report"))
    if m := data.get("metrics"):
        ev.app_metrics = Metrics(int(m["requests"]), int(m["errors"]), m.get("p99_ms"), m.get("source", str(path)))
    return ev


def save_evidence_file(path: Path, ev: RecordedEvidence) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ev.to_json(), default=str, indent=2), encoding="utf-8")


@dataclass
class ChainEvidence:
    """Ask providers in order; the first answer that is not None wins."""

    providers: list[EvidenceProvider] = field(default_factory=list)

    def _first(self, name: str) -> Any:
        for p in self.providers:
            value = getattr(p, name)()
            if value is not None:
                return value
        return None

    def sync_lag(self) -> SyncLag | None:
        return self._first("sync_lag")

    def last_verify(self) -> VerifyResult | None:
        return self._first("last_verify")

    def shadow(self) -> ShadowStats | None:
        return self._first("shadow")

    def metrics(self) -> Metrics | None:
        return self._first("metrics")
