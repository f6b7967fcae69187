"""The backfill: bounded, idempotent, resumable, by `_id` range, with a reconciliation at the end.

Work is "process range [lo, hi) of collection C up to bound B" (`process_range`), checkpointed in
the target in the same transaction as each batch; `run_backfill` plans the ranges of each
collection (referenced collections first), runs them, and reconciles. Another executor (issue 4:
local processes, Dask) can call `start_job`, `plan_ranges`, `process_range` and `finish_job` itself.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, select, update

from rps_port.etl import bulkload
from rps_port.etl.batch import BatchProcessor, Mapped
from rps_port.etl.fixes import Fixes
from rps_port.etl.gctune import bulk_gc
from rps_port.etl.loader import writer_for
from rps_port.etl.mapping import Mapping
from rps_port.etl.models import EtlCheckpoint, EtlFlag, EtlReconciliation, EtlReject, EtlRun
from rps_port.etl.sources import Source
from rps_port.etl.tables import mapping_tables
from rps_port.timeutil import utcnow

DEFAULT_BATCH_SIZE = 2000
log = logging.getLogger("rps_port.etl")
Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class RangeTask:
    collection: str
    lo: str = ""  # inclusive ("" = from the start, including non-ObjectId ids)
    hi: str | None = None  # exclusive (None = up to the bound)
    bound: str | None = None  # highest _id when the job started (inclusive)


@dataclass
class RangeCounts:
    loaded: int = 0
    rejected: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    flagged: int = 0

    @property
    def total(self) -> int:
        return self.loaded + self.rejected + sum(self.skipped.values())

    def add(self, other: RangeCounts) -> None:
        self.loaded += other.loaded
        self.rejected += other.rejected
        self.skipped.update(other.skipped)
        self.flagged += other.flagged


@dataclass
class Reconciliation:
    collection: str
    source_total: int
    loaded: int
    rejected: int
    skipped: dict[str, int]
    flagged: int

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def balanced(self) -> bool:
        return self.source_total == self.loaded + self.rejected + self.skipped_total

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "skipped_total": self.skipped_total, "balanced": self.balanced}


@dataclass
class Job:
    run_id: str
    job_id: str
    job_key: str
    resumed: bool
    bulk_load: bool = False  # began on empty tables: see rps_port.etl.bulkload
    deferred: int = 0  # indexes and foreign keys this run dropped until the load ends


@dataclass
class RunSummary:
    run_id: str
    job_id: str
    resumed: bool
    status: str
    seconds: float
    reconciliations: list[Reconciliation]
    rejects_by_reason: dict[str, dict[str, int]]
    migrated: bool = False
    bulk_load: dict[str, Any] | None = None  # what a bulk load deferred and rebuilt

    @property
    def balanced(self) -> bool:
        return all(r.balanced for r in self.reconciliations)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "job_id": self.job_id,
            "resumed": self.resumed,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "balanced": self.balanced,
            "migrated_schema": self.migrated,
            "reconciliation": [r.as_dict() for r in self.reconciliations],
            "rejects_by_reason": self.rejects_by_reason,
            "bulk_load": self.bulk_load,
        }


# --------------------------------------------------------------------------- jobs


def job_key(source: Source, mapping: Mapping, collections: list[str]) -> str:
    text = "|".join([source.key, mapping.version, ",".join(collections)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def start_job(
    engine: Engine, source: Source, mapping: Mapping, collections: list[str], *, bulk_load: bool = True
) -> Job:
    """A new run; it joins the job of an interrupted run of the same source/mapping/collections.

    A new job on empty target tables is a bulk load (unless `bulk_load` is False): see bulkload."""
    key = job_key(source, mapping, collections)
    run_id = str(uuid.uuid4())
    runs = EtlRun.__table__
    with engine.begin() as conn:
        previous = conn.execute(
            select(runs.c.id, runs.c.job_id, runs.c.status)
            .where(runs.c.job_key == key)
            .order_by(runs.c.started_at.desc())
            .limit(1)
        ).first()
        resumed = previous is not None and previous.status in ("running", "failed", "interrupted")
        job_id = previous.job_id if resumed else run_id
        if resumed and previous.status == "running":
            conn.execute(update(runs).where(runs.c.id == previous.id).values(status="interrupted"))
        conn.execute(
            insert(runs).values(
                id=run_id,
                job_id=job_id,
                job_key=key,
                source=source.description,
                mapping_version=mapping.version,
                collections=collections,
                status="running",
                started_at=utcnow(),
            )
        )
    bulk, deferred = bulkload.begin(engine, mapping, job_id, run_id, collections, resumed, enabled=bulk_load)
    return Job(run_id, job_id, key, resumed, bulk, len(deferred))


def loaded_tables(mapping: Mapping, names: list[str], done: str) -> list[str]:
    """The tables of collection `done` that none of the collections after it in `names` writes."""
    later = set(mapping.tables(names[names.index(done) + 1:]))
    return [t for t in mapping.tables([done]) if t not in later]


def end_bulk_load(
    engine: Engine, mapping: Mapping, job: Job, names: list[str], early: bulkload.EarlyRestore
) -> dict[str, Any] | None:
    """Rebuild what was deferred on the job's tables (by this job, or an earlier one left unfinished),
    after the rebuilds `early` started while the load went on."""
    report = early.join()
    report.add(bulkload.restore(engine, mapping.tables(names)))
    if not job.bulk_load and not report.indexes and not report.foreign_keys and not report.errors:
        return None
    return {"bulk_load": job.bulk_load, "deferred": job.deferred, "rebuilt": report.as_dict()}


def plan_ranges(engine: Engine, source: Source, job: Job, collection: str, parts: int = 1) -> list[RangeTask]:
    """The job's ranges of a collection: those already recorded (a resumed job keeps its bound), or new ones."""
    cps = EtlCheckpoint.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(cps.c.range_lo, cps.c.range_hi, cps.c.bound)
            .where(and_(cps.c.job_id == job.job_id, cps.c.collection == collection))
            .order_by(cps.c.range_lo)
        ).all()
    if rows:
        return [RangeTask(collection, r.range_lo, r.range_hi, r.bound) for r in rows]
    stats = source.stats(collection)
    tasks = [RangeTask(collection, lo, hi, stats.max_id)
             for lo, hi in split_ids(stats.min_id, stats.max_id, parts, stats.sample)]
    # All ranges are recorded at once, so a job killed before reaching some of them still knows them all.
    with engine.begin() as conn:
        conn.execute(
            insert(cps),
            [
                {"job_id": job.job_id, "collection": collection, "range_lo": t.lo, "range_hi": t.hi, "bound": t.bound,
                 "position": None, "status": "pending", "loaded": 0, "rejected": 0, "skipped": {}, "flagged": 0,
                 "run_id": job.run_id, "updated_at": utcnow()}
                for t in tasks
            ],
        )
    return tasks


def split_ids(
    min_id: str | None, max_id: str | None, parts: int, sample: Sequence[str] = ()
) -> list[tuple[str, str | None]]:
    """`parts` contiguous ranges covering everything up to max_id. With a sorted `sample` of the
    collection's ids, cut at its quantiles (ranges of about equal document counts: ObjectIds are
    timestamps, and collections grow unevenly over time); without one, evenly over the id space."""
    if parts <= 1 or not min_id or not max_id or min_id == max_id:
        return [("", None)]
    if len(sample) >= parts:
        cuts = sorted({sample[len(sample) * i // parts] for i in range(1, parts)} - {min_id})
    else:
        lo, hi = int(min_id, 16), int(max_id, 16)
        step = max(1, (hi - lo) // parts)
        cuts = sorted({format(lo + step * i, "024x") for i in range(1, parts)})
    edges = ["", *cuts]
    return [(edges[i], edges[i + 1] if i + 1 < len(edges) else None) for i in range(len(edges))]


# --------------------------------------------------------------------------- ranges


def _checkpoint_of(job: Job, task: RangeTask) -> Any:
    """The WHERE clause of a range's row in etl_checkpoints."""
    cps = EtlCheckpoint.__table__
    return and_(cps.c.job_id == job.job_id, cps.c.collection == task.collection, cps.c.range_lo == task.lo)


def _checkpoint(engine: Engine, job: Job, task: RangeTask) -> tuple[str | None, str, RangeCounts]:
    cps = EtlCheckpoint.__table__
    with engine.begin() as conn:
        row = conn.execute(
            select(cps).where(_checkpoint_of(job, task))
        ).first()
        if row is None:
            conn.execute(
                insert(cps).values(
                    job_id=job.job_id, collection=task.collection, range_lo=task.lo, range_hi=task.hi,
                    bound=task.bound, position=None, status="running", loaded=0, rejected=0, skipped={},
                    flagged=0, run_id=job.run_id, updated_at=utcnow(),
                )
            )
            return None, "running", RangeCounts()
        counts = RangeCounts(row.loaded, row.rejected, Counter(row.skipped or {}), row.flagged)
        return row.position, row.status, counts


def _batches(source: Source, task: RangeTask, start: str | None, size: int) -> Iterator[tuple[str, list[Any]]]:
    docs: list[Any] = []
    pos = start
    for pos, doc in source.scan(task.collection, task.lo, task.hi, task.bound, start):
        docs.append(doc)
        if len(docs) >= size:
            yield pos, docs
            docs = []
    if docs:
        yield pos or "", docs


@bulk_gc()
def process_range(
    engine: Engine,
    source: Source,
    mapping: Mapping,
    job: Job,
    task: RangeTask,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    overlap: bool = True,
) -> RangeCounts:
    """Load one range, resuming after its last committed batch. Idempotent: a done range returns its counts.

    With `overlap`, each batch is written on a thread while the next one is mapped (see below)."""
    position, status, counts = _checkpoint(engine, job, task)
    if status == "done":
        return counts
    tables = mapping_tables(mapping)
    processor = BatchProcessor(mapping, task.collection, tables, job.run_id)
    rejects = EtlReject.__table__
    with engine.connect() as conn:
        open_rejects = conn.execute(
            select(func.count()).select_from(rejects).where(
                and_(rejects.c.collection == task.collection, rejects.c.resolved_at.is_(None))
            )
        ).scalar_one()
        processor.fixes = Fixes.load(conn, task.collection)
    processor.check_open_rejects = bool(open_rejects)
    processor.bulk_load = job.bulk_load
    if progress is not None and counts.total:
        progress({"event": "batch", "collection": task.collection, "range": [task.lo, task.hi], "resumed": True,
                  "documents": counts.total, "loaded": counts.loaded, "rejected": counts.rejected,
                  "skipped": sum(counts.skipped.values())})
    cps = EtlCheckpoint.__table__
    where = _checkpoint_of(job, task)

    def commit(pos: str, docs: list[Any], mapped: Mapped) -> None:
        with engine.connect() as conn, conn.begin():
            result = processor.write(writer_for(conn), mapped)
            counts.loaded += result.loaded
            counts.rejected += len(result.rejects)
            counts.skipped.update(result.skipped)
            counts.flagged += len(result.flags)
            conn.execute(
                update(cps).where(where).values(
                    position=pos, loaded=counts.loaded, rejected=counts.rejected, skipped=dict(counts.skipped),
                    flagged=counts.flagged, run_id=job.run_id, updated_at=utcnow(),
                )
            )
        if progress is not None:
            progress({"event": "batch", "collection": task.collection, "range": [task.lo, task.hi],
                      "documents": len(docs), "loaded": counts.loaded, "rejected": counts.rejected,
                      "skipped": sum(counts.skipped.values())})

    if not overlap:
        for pos, docs in _batches(source, task, position, batch_size):
            commit(pos, docs, processor.map(docs))
        return _range_done(engine, job, task, counts)
    # One batch is written (and its checkpoint committed with it, in order) on a thread while the
    # next one is read and mapped: the server's COPY and index work overlap the client's mapping.
    with ThreadPoolExecutor(1, thread_name_prefix="etl-write") as writing:
        pending: Future[None] | None = None
        for pos, docs in _batches(source, task, position, batch_size):
            mapped = processor.map(docs)
            if pending is not None:
                pending.result()
            pending = writing.submit(commit, pos, docs, mapped)
        if pending is not None:
            pending.result()
    return _range_done(engine, job, task, counts)


def _range_done(engine: Engine, job: Job, task: RangeTask, counts: RangeCounts) -> RangeCounts:
    cps = EtlCheckpoint.__table__
    with engine.begin() as conn:
        conn.execute(update(cps).where(_checkpoint_of(job, task)).values(status="done", run_id=job.run_id, updated_at=utcnow()))
    log.info(
        "range done",
        extra={"collection": task.collection, "range_lo": task.lo, "range_hi": task.hi, "loaded": counts.loaded,
               "rejected": counts.rejected, "skipped": sum(counts.skipped.values()), "run_id": job.run_id},
    )
    return counts


# --------------------------------------------------------------------------- reconciliation


def reconcile(engine: Engine, source: Source, job: Job, collection: str) -> Reconciliation:
    """Source documents = loaded + rejected + skipped (incl. documents beyond the job's bound), stored per run."""
    cps = EtlCheckpoint.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(cps).where(and_(cps.c.job_id == job.job_id, cps.c.collection == collection))
        ).all()
    counts = RangeCounts()
    bound = None
    for r in rows:
        counts.add(RangeCounts(r.loaded, r.rejected, Counter(r.skipped or {}), r.flagged))
        bound = r.bound
    beyond = source.count_beyond(collection, bound)
    if beyond:
        counts.skipped["beyond_bound"] += beyond
    total = source.count(collection)
    rec = Reconciliation(collection, total, counts.loaded, counts.rejected, dict(counts.skipped), counts.flagged)
    table = EtlReconciliation.__table__
    with engine.begin() as conn:
        conn.execute(table.delete().where(and_(table.c.run_id == job.run_id, table.c.collection == collection)))
        conn.execute(
            insert(table).values(
                run_id=job.run_id, collection=collection, job_id=job.job_id, source_total=rec.source_total,
                loaded=rec.loaded, rejected=rec.rejected, skipped=rec.skipped, flagged=rec.flagged,
                balanced=rec.balanced, created_at=utcnow(),
            )
        )
    return rec


def clear_resolved_flags(engine: Engine, mapping: Mapping, loaded: Sequence[str]) -> dict[str, int]:
    """Drop the dangling-reference flags that rows of the `loaded` collections now resolve.

    A reference kept when dangling (`on_missing: keep`) is flagged with the id it points to. When
    the referenced collection loads later (a later run, or a sync), those flags are stale: each is
    dropped when its id now exists. A reference set to NULL keeps its flag, which is where its
    original id lives. Returns the count per `collection.flag`."""
    flags = EtlFlag.__table__
    tables = mapping_tables(mapping)
    cleared: dict[str, int] = {}
    with engine.begin() as conn:
        for name in mapping.collections:
            refs = list(mapping.collection(name).spec.references.values())
            for flag in {r.flag for r in refs if r.collection in loaded and r.on_missing == "keep"}:
                targets = {r.collection for r in refs if r.flag == flag}
                if len(targets) != 1:
                    continue  # one flag for references to several collections: its ids cannot be told apart
                target = mapping.collection(targets.pop())
                ids = select(tables[target.table].c[target.spec.id])
                n = conn.execute(delete(flags).where(
                    and_(flags.c.collection == name, flags.c.flag == flag, flags.c.detail.in_(ids)))).rowcount
                if n:
                    cleared[f"{name}.{flag}"] = n
    if cleared:
        log.info("cleared reference flags that now resolve", extra={"cleared": cleared})
    return cleared


def rejects_by_reason(engine: Engine, collections: list[str]) -> dict[str, dict[str, int]]:
    table = EtlReject.__table__
    out: dict[str, dict[str, int]] = {c: {} for c in collections}
    with engine.connect() as conn:
        for coll, reason, n in conn.execute(
            select(table.c.collection, table.c.reason, func.count())
            .where(and_(table.c.collection.in_(collections), table.c.resolved_at.is_(None)))
            .group_by(table.c.collection, table.c.reason)
        ):
            out[coll][reason] = n
    return out


def finish_job(engine: Engine, job: Job, status: str, summary: dict[str, Any]) -> None:
    runs = EtlRun.__table__
    with engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == job.run_id).values(status=status, finished_at=utcnow(),
                                                                         summary=summary))


# --------------------------------------------------------------------------- the whole run


def run_backfill(
    engine: Engine,
    source: Source,
    mapping: Mapping,
    collections: list[str] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    parts: int = 1,
    progress: Progress | None = None,
    bulk_load: bool = True,
) -> RunSummary:
    """Load `collections` (default: all the mapping names that the source has) and reconcile them.

    On empty target tables the run is a bulk load (`bulk_load=False` turns that off): see bulkload."""
    started = time.monotonic()
    names = mapping.order(collections) if collections else [c for c in mapping.order() if c in source.collections()]
    job = start_job(engine, source, mapping, names, bulk_load=bulk_load)
    if progress is not None:
        progress({"event": "start", "run_id": job.run_id, "job_id": job.job_id, "resumed": job.resumed,
                  "collections": names, "bulk_load": job.bulk_load, "deferred": job.deferred})
    recs: list[Reconciliation] = []
    early = bulkload.EarlyRestore(engine)
    try:
        for name in names:
            tasks = plan_ranges(engine, source, job, name, parts)
            total = source.stats(name).count
            if progress is not None:
                progress({"event": "collection", "collection": name, "total": total, "ranges": len(tasks)})
            for task in tasks:
                process_range(engine, source, mapping, job, task, batch_size=batch_size, progress=progress)
            rec = reconcile(engine, source, job, name)
            recs.append(rec)
            early.submit(loaded_tables(mapping, names, name))
            if progress is not None:
                progress({"event": "reconciled", **rec.as_dict()})
        rebuilt = end_bulk_load(engine, mapping, job, names, early)
        if progress is not None and rebuilt:
            progress({"event": "rebuilt", **rebuilt["rebuilt"]})
        clear_resolved_flags(engine, mapping, names)
    except BaseException:
        early.settle()
        finish_job(engine, job, "failed", {"error": "interrupted by an exception; run again to resume"})
        raise
    summary = RunSummary(
        job.run_id, job.job_id, job.resumed, "done" if all(r.balanced for r in recs) else "imbalanced",
        time.monotonic() - started, recs, rejects_by_reason(engine, names), bulk_load=rebuilt,
    )
    finish_job(engine, job, summary.status, summary.as_dict())
    log.log(
        logging.INFO if summary.balanced else logging.ERROR,
        "backfill %s", summary.status,
        extra={"run_id": job.run_id, "job_id": job.job_id, "resumed": job.resumed, "seconds": round(summary.seconds, 3),
               "documents": sum(r.source_total for r in recs), "balanced": summary.balanced},
    )
    return summary
