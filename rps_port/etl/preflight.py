"""Preflight for a live source: will the backfill finish inside the oplog window?

The sync picks up changes from a resume token taken before the backfill starts; if the backfill
outlives the oplog window, that token has fallen off the oplog when the sync starts and every change
made meanwhile is lost to it. So: sample the mapping's throughput on the first documents of each
collection, estimate the backfill from the collection counts, read the oplog window, and answer
ok / warn / refuse with the figures.

The estimate is mapping throughput divided by `write_factor` (the backfill also reads, writes and
checkpoints; measured by benchmarks/etl_scale_bench.py on PostgreSQL), scaled by the workers with
`PARALLEL_EFFICIENCY` per extra worker. `docs_per_second` replaces the sampling with a rate measured
on a real trial backfill, which is better when there is one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rps_port.etl.errors import RejectError
from rps_port.etl.mapping import Mapping, SkipDocument
from rps_port.etl.sources import MongoSource, Source

WRITE_FACTOR = 3.5  # measured 3.2 on the 1M-document dataset after the bulk load (ADR-011); a little slack
PARALLEL_EFFICIENCY = 0.5  # two workers on 2 cores gained 1.49-1.52x after the bulk load (docs/benchmarks/etl-scale.md)
WARN_SHARE = 0.5  # warn when the backfill would use more than half of the window


@dataclass
class OplogWindow:
    first: datetime
    last: datetime

    @property
    def seconds(self) -> float:
        return (self.last - self.first).total_seconds()


@dataclass
class CollectionSample:
    collection: str
    documents: int
    sampled: int
    seconds: float

    @property
    def docs_per_second(self) -> float:
        return self.sampled / self.seconds if self.seconds > 0 else 0.0


@dataclass
class PreflightReport:
    source: str
    verdict: str  # ok | warn | refuse
    reason: str
    workers: int
    backfill_docs_per_second: float
    estimated_seconds: float
    oplog_window_s: float | None
    oplog_first: datetime | None = None
    oplog_last: datetime | None = None
    collections: list[CollectionSample] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["collections"] = [{**asdict(c), "docs_per_second": round(c.docs_per_second, 1)} for c in self.collections]
        out["estimated_seconds"] = round(self.estimated_seconds, 1)
        out["backfill_docs_per_second"] = round(self.backfill_docs_per_second, 1)
        return out


def read_oplog_window(client: Any) -> OplogWindow | None:
    """First and last `ts` of local.oplog.rs; None on a server that is not a replica set member."""
    from pymongo.errors import OperationFailure

    try:
        client.admin.command("replSetGetStatus")
    except OperationFailure:
        return None
    oplog = client["local"]["oplog.rs"]
    first = next(iter(oplog.find({}, {"ts": 1}).sort("$natural", 1).limit(1)), None)
    last = next(iter(oplog.find({}, {"ts": 1}).sort("$natural", -1).limit(1)), None)
    if first is None or last is None:
        return None
    return OplogWindow(datetime.fromtimestamp(first["ts"].time, UTC), datetime.fromtimestamp(last["ts"].time, UTC))


def sample_collection(source: Source, mapping: Mapping, collection: str, n: int) -> CollectionSample:
    """Map the first `n` documents (rejects and skips count: they cost the same) and time it."""
    cm_count = source.count(collection)
    docs = []
    for _pos, doc in source.scan(collection):
        docs.append(doc)
        if len(docs) >= n:
            break
    started = time.perf_counter()
    for doc in docs:
        try:
            mapping.map_document(collection, doc)
        except (RejectError, SkipDocument):
            pass
    return CollectionSample(collection, cm_count, len(docs), time.perf_counter() - started)


def estimate_seconds(samples: list[CollectionSample], workers: int, docs_per_second: float | None = None,
                     write_factor: float = WRITE_FACTOR) -> tuple[float, float]:
    """(estimated backfill seconds, the backfill documents/s that implies)."""
    speedup = 1 + PARALLEL_EFFICIENCY * (max(1, workers) - 1)
    total = sum(s.documents for s in samples)
    if docs_per_second:
        serial = total / docs_per_second
    else:
        serial = sum(s.documents / s.docs_per_second * write_factor for s in samples if s.docs_per_second > 0)
    seconds = serial / speedup
    return seconds, (total / seconds if seconds > 0 else 0.0)


def judge(estimated: float, window: OplogWindow | None, is_live: bool) -> tuple[str, str]:
    if not is_live:
        return "ok", "a dump or export has no oplog: later changes come from a newer dump (watermark sync)"
    if window is None:
        return "warn", ("no oplog (not a replica set member): change streams are unavailable, so sync must use the "
                        "updatedAt watermark mode, which cannot see hard deletes without the delete sweep")
    if estimated > window.seconds:
        return "refuse", (f"the backfill (~{estimated:,.0f} s) would outlive the oplog window ({window.seconds:,.0f} s): "
                          "the resume token taken at the start would be gone; enlarge the oplog "
                          "(replSetResizeOplog) or add workers")
    if estimated > window.seconds * WARN_SHARE:
        return "warn", (f"the backfill (~{estimated:,.0f} s) would use over {WARN_SHARE:.0%} of the oplog window "
                        f"({window.seconds:,.0f} s); a busier source shortens the window")
    return "ok", f"the backfill (~{estimated:,.0f} s) fits the oplog window ({window.seconds:,.0f} s)"


def run_preflight(
    source: Source,
    mapping: Mapping,
    collections: list[str] | None = None,
    *,
    sample: int = 2000,
    workers: int = 1,
    docs_per_second: float | None = None,
    oplog: Callable[[Any], OplogWindow | None] = read_oplog_window,
) -> PreflightReport:
    names = mapping.order(collections) if collections else [c for c in mapping.order() if c in source.collections()]
    samples = [sample_collection(source, mapping, name, sample) for name in names]
    estimated, rate = estimate_seconds(samples, workers, docs_per_second)
    live = isinstance(source, MongoSource)
    window = oplog(source.client) if live else None
    verdict, reason = judge(estimated, window, live)
    return PreflightReport(
        source.description, verdict, reason, workers, rate, estimated,
        window.seconds if window else None, window.first if window else None, window.last if window else None, samples,
    )
