"""The shadow report: what a run found, per endpoint and per fingerprint. JSON in, JSON out.

Cutover gates read `endpoints[*].upper_bound` and `endpoints[*].compared` (the sample size) from
the saved file (`ShadowReport.load(path)`) or from the `shadow_results` table.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

Cause = Literal["data drift", "logic", "unknown"]


class EndpointStats(BaseModel):
    endpoint: str
    requests: int = 0
    compared: int = Field(0, description="Answers compared (errors, racy and unmappable excluded): the sample size.")
    matches: int = 0
    mismatches: int = 0
    noise_suppressed: int = Field(0, description="Requests whose only differences were noise.")
    racy: int = 0
    errors: int = 0
    unmappable: int = 0
    rate: float = 0.0
    lower_bound: float = 0.0
    upper_bound: float = 1.0
    verdict: Literal["pass", "fail", "inconclusive"] = "inconclusive"


class Example(BaseModel):
    request: str
    record_id: str | None = None
    path: str
    legacy: Any = None
    new: Any = None
    cause: Cause = "unknown"
    cause_detail: str | None = None
    legacy_record: Any = None
    new_record: Any = None


class Fingerprint(BaseModel):
    id: str
    endpoint: str
    path: str
    kind: str
    count: int = 0
    first_seen: datetime
    last_seen: datetime
    causes: dict[str, int] = Field(default_factory=dict)
    examples: list[Example] = Field(default_factory=list)
    curl: dict[str, str] = Field(default_factory=dict)


class NoisePath(BaseModel):
    endpoint: str
    path: str
    noise_rate: float
    new_rate: float
    suppressed: bool


class ErrorGroup(BaseModel):
    endpoint: str
    side: str
    message: str
    count: int


class Timing(BaseModel):
    wall_seconds: float = 0.0
    http_seconds: float = Field(0.0, description="Time spent waiting on HTTP (summed over requests).")
    compare_seconds: float = Field(0.0, description="Time spent canonicalising and comparing.")

    @property
    def compare_share(self) -> float:
        """Comparing vs waiting on HTTP, both summed over requests (concurrent waits add up)."""
        total = self.http_seconds + self.compare_seconds
        return self.compare_seconds / total if total else 0.0

    @property
    def compare_share_of_wall(self) -> float:
        """Comparing as a share of the run's wall-clock time (the comparator runs on one thread)."""
        return min(1.0, self.compare_seconds / self.wall_seconds) if self.wall_seconds else 0.0


class Totals(BaseModel):
    requests: int = 0
    compared: int = 0
    matches: int = 0
    mismatches: int = 0
    noise_suppressed: int = 0
    racy: int = 0
    errors: int = 0
    unmappable: int = 0


class ShadowReport(BaseModel):
    run_id: str
    source: Literal["http", "in-app"] = "http"
    started_at: datetime
    finished_at: datetime
    legacy_url: str | None = None
    new_url: str | None = None
    max_mismatch_rate: float
    confidence: float
    min_samples: int
    verdict: Literal["pass", "fail", "inconclusive"]
    totals: Totals
    endpoints: list[EndpointStats]
    fingerprints: list[Fingerprint]
    noise: list[NoisePath] = Field(default_factory=list)
    errors: list[ErrorGroup] = Field(default_factory=list)
    unmappable: list[ErrorGroup] = Field(default_factory=list, description="Legacy records not comparable, by reason.")
    timing: Timing = Field(default_factory=Timing)
    skipped: list[str] = Field(default_factory=list, description="Corpus lines not replayed, with the reason.")

    def exit_code(self) -> int:
        """0 when every endpoint's upper bound is within the threshold, 1 on a failure, 3 when inconclusive."""
        if any(e.verdict == "fail" for e in self.endpoints):
            return 1
        if not self.endpoints or any(e.upper_bound > self.max_mismatch_rate for e in self.endpoints):
            return 3
        return 0

    def gate_summary(self) -> dict[str, Any]:
        """What a cutover gate needs: per endpoint the sample size and the mismatch upper bound."""
        return {
            "run_id": self.run_id,
            "finished_at": self.finished_at.isoformat(),
            "verdict": self.verdict,
            "max_mismatch_rate": self.max_mismatch_rate,
            "endpoints": {
                e.endpoint: {"compared": e.compared, "mismatches": e.mismatches, "upper_bound": e.upper_bound,
                             "verdict": e.verdict}
                for e in self.endpoints
            },
        }

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        tmp.replace(p)
        return p

    @classmethod
    def load(cls, path: str | Path) -> ShadowReport:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
