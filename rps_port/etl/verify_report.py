"""What a verification found: differences per collection, the report, its JSON and JUnit forms."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

if TYPE_CHECKING:
    from rps_port.etl.executors import RangeFailure


@dataclass
class Difference:
    collection: str
    record_id: str
    kind: str  # missing | extra | different
    columns: list[str] = field(default_factory=list)
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "id": self.record_id, "kind": self.kind, "columns": self.columns,
                "detail": self.detail}


@dataclass
class CollectionResult:
    collection: str
    source_documents: int = 0
    expected_rows: int = 0
    target_rows: int = 0
    expected_absent: int = 0
    leaves: int = 0
    leaves_rescanned: int = 0
    differences: list[Difference] = field(default_factory=list)
    failed_ranges: list[RangeFailure] = field(default_factory=list)  # not verified: the result is incomplete
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.differences and not self.failed_ranges

    def counts(self) -> dict[str, int]:
        out = {"missing": 0, "extra": 0, "different": 0}
        for d in self.differences:
            out[d.kind] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection, "source_documents": self.source_documents,
            "expected_rows": self.expected_rows, "target_rows": self.target_rows,
            "expected_absent": self.expected_absent, "leaves": self.leaves,
            "leaves_rescanned": self.leaves_rescanned, "clean": self.clean, **self.counts(),
            "seconds": round(self.seconds, 3), "differences": [d.as_dict() for d in self.differences],
            "failed_ranges": [{"range": f.selector, "error": f.error} for f in self.failed_ranges],
        }


@dataclass
class VerifyReport:
    id: str
    started_at: datetime
    finished_at: datetime
    mode: str  # full | recheck-changed | range (--range: one range, not stored) | incomplete (ranges failed)
    collections: list[CollectionResult]
    executor: str = "local"
    workers: int = 1
    only_range: str | None = None
    processes: set[int] = field(default_factory=set)  # pids that ran the range tasks

    @property
    def clean(self) -> bool:
        return all(c.clean for c in self.collections)

    @property
    def differences(self) -> list[Difference]:
        return [d for c in self.collections for d in c.differences]

    @property
    def failed_ranges(self) -> list[RangeFailure]:
        return [f for c in self.collections for f in c.failed_ranges]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "started_at": self.started_at.isoformat(), "finished_at": self.finished_at.isoformat(),
            "mode": self.mode, "clean": self.clean, "executor": self.executor, "workers": self.workers,
            "only_range": self.only_range, "worker_processes": len(self.processes),
            "failed_ranges": [{"range": f.selector, "error": f.error} for f in self.failed_ranges],
            "collections": [c.as_dict() for c in self.collections],
        }

    def junit(self) -> str:
        suite = ET.Element("testsuite", name="rps-port etl verify", tests=str(len(self.collections)),
                           failures=str(sum(not c.clean for c in self.collections)))
        for c in self.collections:
            case = ET.SubElement(suite, "testcase", classname="etl.verify", name=c.collection, time=f"{c.seconds:.3f}")
            if not c.clean:
                counts = c.counts()
                unverified = f", {len(c.failed_ranges)} range(s) not verified" if c.failed_ranges else ""
                failure = ET.SubElement(
                    case, "failure",
                    message=f"{counts['missing']} missing, {counts['extra']} extra, {counts['different']} different"
                            f"{unverified}",
                )
                failure.text = "\n".join(
                    [f"not verified {f.selector} {f.error}" for f in c.failed_ranges]
                    + [f"{d.kind} {d.record_id} {','.join(d.columns)} {d.detail}".rstrip() for d in c.differences[:200]]
                )
        return ET.tostring(suite, encoding="unicode")
