"""Run `_id` range tasks in-process, in local processes, or on a Dask cluster.

Three commands are split into range tasks that run on these executors: the backfill (the parent
plans with `start_job`/`plan_ranges`, the executor runs `process_range` per task, the parent
reconciles), verify (tasks hash their range's leaves and name the differing ids; the parent builds
the tree) and the sync's watermark mode (tasks upsert and sweep their range; the parent advances
the watermark). Engines and sources do not pickle, so a task carries a `WorkerSpec` (URLs and paths)
and each worker process opens its own engine, source and mapping once (cached per process). Every
task is idempotent, so re-running one — after a crash, or by hand with `--range` — is always safe.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import multiprocessing
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, Self, TypeVar

from sqlalchemy import Engine, and_, delete, insert, select
from sqlalchemy.exc import OperationalError

from rps_port.etl import bulkload
from rps_port.etl.backfill import (
    DEFAULT_BATCH_SIZE,
    Job,
    RangeTask,
    Reconciliation,
    RunSummary,
    clear_resolved_flags,
    end_bulk_load,
    finish_job,
    loaded_tables,
    plan_ranges,
    process_range,
    reconcile,
    rejects_by_reason,
    start_job,
)
from rps_port.etl.gctune import bulk_gc
from rps_port.etl.mapping import Mapping
from rps_port.etl.models import EtlCheckpoint
from rps_port.etl.sources import FileSource, Source
from rps_port.etl.sync_models import EtlRangeFailure
from rps_port.timeutil import utcnow

log = logging.getLogger("rps_port.etl")
Progress = Callable[[dict[str, Any]], None]
SQLITE_RETRIES = 20
T = TypeVar("T")
Opened = tuple[Engine, Source, Mapping]
# A range task's work: it gets the worker's own engine, source and mapping, and its (picklable) task.
Work = Callable[[Engine, Source, Mapping, Any], Any]


# --------------------------------------------------------------------------- one task, in a worker


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to open its own engine, source and mapping (no secrets: workers read their settings)."""

    source: str
    target: str
    db: str | None = None
    mapping: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    # Write each batch on a thread while mapping the next (process_range's `overlap`). Off when
    # several ranges run at once: their processes keep the cores busy already, and the extra thread
    # only hands the GIL back and forth (two workers, 1.1M documents: 44.7-46.8 s in line, 46.7-48.0 s
    # overlapped).
    overlap_writes: bool = True


@dataclass
class RangeOutcome:
    task: RangeTask
    loaded: int = 0
    rejected: int = 0
    skipped: int = 0
    seconds: float = 0.0
    error: str | None = None
    worker: str = ""

    @property
    def documents(self) -> int:
        return self.loaded + self.rejected + self.skipped


_opened: dict[WorkerSpec, Opened] = {}
_lock = threading.Lock()
# Set by a LocalExecutor around each task it runs: the caller's own engine, source and mapping (a
# ContextVar, so a Dask thread in the same process never sees them).
_in_process: contextvars.ContextVar[Opened | None] = contextvars.ContextVar("rps_etl_in_process", default=None)


def _open(spec: WorkerSpec | None) -> Opened:
    given = _in_process.get()
    if given is not None:
        return given
    if spec is None:
        raise ValueError("a task outside the caller's process needs a WorkerSpec (source, target, mapping)")
    from rps_port.db import make_engine
    from rps_port.etl.mapping import load_mapping
    from rps_port.etl.sources import open_source

    with _lock:
        if spec not in _opened:
            _opened[spec] = (make_engine(spec.target), open_source(spec.source, db=spec.db), load_mapping(spec.mapping))
        return _opened[spec]


def _describe_error(exc: BaseException) -> str:
    # The driver's own message, not SQLAlchemy's (which appends the statement and its parameters: data).
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return f"{type(orig or exc).__name__}: {text[0] if text else ''}"[:300]


def _sqlite_busy(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    return isinstance(exc, OperationalError) and isinstance(orig, sqlite3.OperationalError) and (
        "locked" in str(orig) or "busy" in str(orig))


def retry_if_busy(attempt: Callable[[], T]) -> T:
    """`attempt()` again while SQLite answers "database is locked" (up to SQLITE_RETRIES times).

    SQLite in WAL mode answers a stale read-then-write transaction with "database is locked" at once
    (the busy timeout does not apply); `attempt` must be safe to repeat (a transaction, a resumable range).
    """
    for tries in range(SQLITE_RETRIES + 1):
        try:
            return attempt()
        except OperationalError as exc:
            if not _sqlite_busy(exc) or tries == SQLITE_RETRIES:
                raise
            time.sleep(0.05 * (tries + 1))
    raise AssertionError("unreachable")


def _worker() -> str:
    return f"{os.getpid()}/{threading.get_ident()}"


def run_task(engine: Engine, source: Source, mapping: Mapping, job: Job, task: RangeTask,
             batch_size: int = DEFAULT_BATCH_SIZE, overlap: bool = True) -> RangeOutcome:
    """Process one backfill range; never raises (a failure comes back as `error`)."""
    started = time.monotonic()
    try:  # a busy retry resumes the range from its last committed batch
        counts = retry_if_busy(lambda: process_range(engine, source, mapping, job, task, batch_size=batch_size,
                                                     overlap=overlap))
    except Exception as exc:  # noqa: BLE001 - a task reports its failure, the run goes on
        _log_failure(task, exc)
        return RangeOutcome(task, seconds=time.monotonic() - started, error=_describe_error(exc), worker=_worker())
    return RangeOutcome(task, counts.loaded, counts.rejected, sum(counts.skipped.values()),
                        time.monotonic() - started, None, _worker())


def _log_failure(task: Any, exc: BaseException) -> None:
    log.warning("range failed", extra={"collection": task.collection, "range_lo": task.lo, "range_hi": task.hi,
                                       "error": _describe_error(exc)})


def run_range(spec: WorkerSpec | None, job: Job, task: RangeTask) -> RangeOutcome:
    """The backfill's task function executors ship to workers (importable, arguments pickle)."""
    try:
        engine, source, mapping = _open(spec)
    except Exception as exc:  # noqa: BLE001 - cannot open the source/target: the range fails, reported
        return RangeOutcome(task, error=_describe_error(exc), worker=str(os.getpid()))
    if spec is None:
        return run_task(engine, source, mapping, job, task)
    return run_task(engine, source, mapping, job, task, spec.batch_size, spec.overlap_writes)


@dataclass
class TaskOutcome:
    """What a verify or sync range task hands back: its value, or why it failed."""

    task: Any
    value: Any = None
    error: str | None = None
    worker: str = ""
    seconds: float = 0.0


def run_work(work: Work, spec: WorkerSpec | None, task: Any) -> TaskOutcome:
    """The generic task function: `work(engine, source, mapping, task)` in the worker; never raises.
    Range work is bulk document work, so it runs with the collector tuned for it (`bulk_gc`)."""
    started = time.monotonic()
    try:
        with bulk_gc():
            value = work(*_open(spec), task)
    except Exception as exc:  # noqa: BLE001 - a task reports its failure, the run goes on
        _log_failure(task, exc)
        return TaskOutcome(task, error=_describe_error(exc), worker=_worker(), seconds=time.monotonic() - started)
    return TaskOutcome(task, value, None, _worker(), time.monotonic() - started)


# --------------------------------------------------------------------------- executors


# (task, value, None) or (task, None, error): the executor's own failures (a worker process that died,
# a lost Dask worker, a result that did not pickle) come back as errors, never as exceptions.
Completed = tuple[Any, Any, str | None]


class Executor(Protocol):
    name: str
    workers: int

    def map(self, fn: Callable[..., Any], tasks: list[Any], *args: Any) -> Iterator[Completed]:
        """`fn(*args, task)` for each task, yielded as each completes."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """In this process, one range after another, with the caller's engine/source/mapping when given."""

    name = "local"
    workers = 1

    def __init__(self, opened: Opened | None = None) -> None:
        self.opened = opened

    def map(self, fn: Callable[..., Any], tasks: list[Any], *args: Any) -> Iterator[Completed]:
        for task in tasks:
            yield self._call(fn, args, task)

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...], task: Any) -> Completed:
        token = _in_process.set(self.opened) if self.opened is not None else None
        try:
            return task, fn(*args, task), None
        except Exception as exc:  # noqa: BLE001 - same contract as the pools
            return task, None, _describe_error(exc)
        finally:
            if token is not None:
                _in_process.reset(token)

    def close(self) -> None:
        pass


def _warm_up() -> None:
    """Nothing: to call it, a worker imports this module, i.e. the whole ETL."""


def _die_with_parent(parent: int) -> None:
    """Pool initializer: the worker exits within a fraction of a second of the process that started it.

    A pool's workers otherwise outlive a parent killed with SIGKILL and go on loading their ranges,
    minutes after the operator stopped the run. Exiting at once is the same as killing the worker:
    its open batch rolls back with its connection, and the next run resumes from the checkpoints."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(70)

    threading.Thread(target=watch, name="rps-etl-parent-watch", daemon=True).start()


class ProcessExecutor:
    """A pool of local processes (spawned, so none inherits the parent's connections)."""

    name = "process"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_die_with_parent, initargs=(os.getpid(),))
        # Start the workers now: each spends a second or more importing the ETL, which then overlaps
        # with the parent's planning (job, id samples) instead of delaying the first ranges.
        for _ in range(self.workers):
            self.pool.submit(_warm_up)

    def map(self, fn: Callable[..., Any], tasks: list[Any], *args: Any) -> Iterator[Completed]:
        futures = {self.pool.submit(fn, *args, t): t for t in tasks}
        for fut in as_completed(futures):
            try:
                yield futures[fut], fut.result(), None
            except Exception as exc:  # noqa: BLE001 - the worker process died (BrokenProcessPool) or the result did not pickle
                yield futures[fut], None, _describe_error(exc)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Tasks on a Dask distributed cluster (`tcp://HOST:8786`, or a given `distributed.Client`).

    Each Dask worker needs rps-port installed and the same settings (env / rps-port.toml) as the parent:
    the legacy secret and field keys are read there, never shipped with the task.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, client: Any = None) -> None:
        from distributed import Client

        self._own = client is None
        self.client = client if client is not None else Client(scheduler)
        self.workers = max(1, sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values()))

    def map(self, fn: Callable[..., Any], tasks: list[Any], *args: Any) -> Iterator[Completed]:
        from distributed import as_completed as dask_completed

        futures = {self.client.submit(fn, *args, t, pure=False): t for t in tasks}
        for fut in dask_completed(list(futures)):
            try:
                yield futures[fut], fut.result(), None
            except Exception as exc:  # noqa: BLE001 - lost worker, scheduler gone, ...
                yield futures[fut], None, _describe_error(exc)

    def close(self) -> None:
        if self._own:
            self.client.close()


def make_executor(kind: str, workers: int | None = None, scheduler: str | None = None) -> Executor:
    if kind == "local":
        return LocalExecutor()
    if kind == "process":
        return ProcessExecutor(workers)
    if kind == "dask":
        if not scheduler:
            raise ValueError("--executor dask needs --scheduler tcp://HOST:8786")
        return DaskExecutor(scheduler)
    raise ValueError(f"unknown executor {kind!r} (local, process or dask)")


# --------------------------------------------------------------------------- failures


@dataclass(frozen=True)
class RangeFailure:
    collection: str
    lo: str
    hi: str | None
    error: str

    @property
    def selector(self) -> str:
        """The `--range` value that re-runs this range alone."""
        return f"{self.collection}:{self.lo}:{self.hi or ''}"


def parse_range(text: str) -> tuple[str, str, str | None]:
    """`COLLECTION:LO:HI` (LO empty = from the start, HI empty = to the end; the backfill's end is its bound)."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[0]:
        raise ValueError(f"--range {text!r}: expected COLLECTION:LO:HI (LO or HI may be empty)")
    return parts[0], parts[1], parts[2] or None


def range_of_run(only_range: str | None, names: list[str]) -> tuple[str, str, str | None] | None:
    """The parsed `--range`, refused when its collection is not one of the run's `names`."""
    if not only_range:
        return None
    only = parse_range(only_range)
    if only[0] not in names:
        raise ValueError(f"--range {only_range!r}: {only[0]!r} is not one of this run's collections ({', '.join(names)})")
    return only


def range_job_id(kind: str, source_key: str) -> str:
    """The stable id a verify or sync of one source records its failed ranges under (a backfill uses its job's)."""
    return f"{kind}:{hashlib.sha256(source_key.encode()).hexdigest()}"[:36]


def record_failure(engine: Engine, job_id: str, failure: RangeFailure) -> None:
    table = EtlRangeFailure.__table__
    with engine.begin() as conn:
        conn.execute(delete(table).where(and_(table.c.job_id == job_id, table.c.collection == failure.collection,
                                              table.c.range_lo == failure.lo)))
        conn.execute(insert(table).values(job_id=job_id, collection=failure.collection, range_lo=failure.lo,
                                          range_hi=failure.hi, error=failure.error, failed_at=utcnow()))


def clear_failures(engine: Engine, job_id: str, collection: str, lo: str | None = None) -> None:
    """Forget the failure of range `lo` of `collection` (every range of it when `lo` is None)."""
    table = EtlRangeFailure.__table__
    cond = [table.c.job_id == job_id, table.c.collection == collection]
    if lo is not None:
        cond.append(table.c.range_lo == lo)
    with engine.begin() as conn:
        conn.execute(delete(table).where(and_(*cond)))


def list_failures(engine: Engine, job_id: str | None = None) -> list[RangeFailure]:
    table = EtlRangeFailure.__table__
    query = select(table).order_by(table.c.failed_at)
    if job_id is not None:
        query = query.where(table.c.job_id == job_id)
    with engine.connect() as conn:
        return [RangeFailure(r.collection, r.range_lo, r.range_hi, r.error) for r in conn.execute(query)]


# --------------------------------------------------------------------------- range tasks of verify and sync


@dataclass
class RangeDispatch:
    """Runs one command's range tasks on an executor and keeps the books: failures recorded in
    `etl_range_failures` under `job_id` (a success clears its range's), the worker processes, and a
    progress event per finished task. Tasks have `collection`, `lo` and `hi`, and pickle."""

    engine: Engine
    executor: Executor
    spec: WorkerSpec | None
    job_id: str
    progress: Progress | None = None
    failures: list[RangeFailure] = field(default_factory=list)
    processes: set[int] = field(default_factory=set)

    def run(self, work: Work, tasks: list[Any], event: str) -> list[TaskOutcome]:
        """`work` over `tasks`; the outcomes of those that succeeded, in the order of `tasks`."""
        succeeded: dict[int, TaskOutcome] = {}
        for task, outcome, error in self.executor.map(run_work, tasks, work, self.spec):
            out = outcome if outcome is not None else TaskOutcome(task, error=error)
            self.settle(task, out.error, out.worker)
            if out.error is None:
                succeeded[id(task)] = out
            if self.progress is not None:
                self.progress({"event": event, "collection": task.collection, "range": [task.lo, task.hi],
                               "seconds": round(out.seconds, 3), "error": out.error})
        return [succeeded[id(t)] for t in tasks if id(t) in succeeded]

    def settle(self, task: Any, error: str | None, worker: str) -> None:
        """Book one finished task: the process that ran it, and its range's failure recorded or cleared."""
        if worker:
            self.processes.add(int(worker.split("/")[0]))
        if error is None:
            clear_failures(self.engine, self.job_id, task.collection, task.lo)
        else:
            failure = RangeFailure(task.collection, task.lo, task.hi, error)
            record_failure(self.engine, self.job_id, failure)
            self.failures.append(failure)

    def failed(self, collection: str) -> bool:
        return any(f.collection == collection for f in self.failures)


class CheckpointWatch:
    """Live progress of a collection's ranges while they run elsewhere (worker processes, Dask),
    read from their checkpoints: the same per-range `batch` events (running totals, documents added)
    that `process_range` emits when it runs in this process, about once per `interval` seconds."""

    def __init__(self, engine: Engine, job: Job, collection: str, progress: Progress, interval: float = 1.0) -> None:
        self.engine, self.job, self.collection, self.progress = engine, job, collection, progress
        self.interval = interval
        self._seen: dict[str, tuple[int, int, int]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="etl-progress", daemon=True)

    def poll(self, *, resumed: bool = False) -> None:
        cps = EtlCheckpoint.__table__
        query = select(cps.c.range_lo, cps.c.range_hi, cps.c.loaded, cps.c.rejected, cps.c.skipped).where(
            and_(cps.c.job_id == self.job.job_id, cps.c.collection == self.collection))
        with self._lock:
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            for r in rows:
                totals = (r.loaded or 0, r.rejected or 0, sum((r.skipped or {}).values()))
                before = self._seen.get(r.range_lo, (0, 0, 0))
                if totals == before:
                    continue
                self._seen[r.range_lo] = totals
                event = {"event": "batch", "collection": self.collection, "range": [r.range_lo, r.range_hi],
                         "documents": sum(totals) - sum(before), "loaded": totals[0], "rejected": totals[1],
                         "skipped": totals[2]}
                self.progress({**event, "resumed": True} if resumed else event)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # progress is best effort; the run reports real errors
                log.debug("progress poll failed", exc_info=True)

    def __enter__(self) -> Self:
        self.poll(resumed=True)  # what earlier runs of this job loaded is counted, not announced as new
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()


# --------------------------------------------------------------------------- the whole run


@dataclass
class ScaledRun:
    summary: RunSummary
    executor: str
    workers: int
    failures: list[RangeFailure] = field(default_factory=list)
    only_range: str | None = None
    processes: set[int] = field(default_factory=set)  # pids that ran the ranges

    def as_dict(self) -> dict[str, Any]:
        return {**self.summary.as_dict(), "executor": self.executor, "workers": self.workers,
                "only_range": self.only_range, "worker_processes": len(self.processes),
                "failed_ranges": [{"range": f.selector, "error": f.error} for f in self.failures]}


def _all_done(engine: Engine, job: Job, names: list[str]) -> bool:
    cps = EtlCheckpoint.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(cps.c.collection, cps.c.status).where(cps.c.job_id == job.job_id)).all()
    return {r.collection for r in rows} >= set(names) and all(r.status == "done" for r in rows)


def run_scaled_backfill(
    engine: Engine,
    source: Source,
    mapping: Mapping,
    spec: WorkerSpec,
    executor: Executor,
    collections: list[str] | None = None,
    *,
    parts: int | None = None,
    only_range: str | None = None,
    progress: Progress | None = None,
    bulk_load: bool = True,
) -> ScaledRun:
    """The backfill with ranges as tasks: plan here, process on `executor`, reconcile here.

    Collections run one after another in `mapping.order()` (a referenced collection is complete before
    the collections that reference it); the ranges of one collection run in parallel. A failed range is
    recorded in `etl_range_failures` and stops the run before the next collection; `only_range`
    (`COLLECTION:LO:HI`) re-runs one range of the same job alone. On empty target tables the run is
    a bulk load (see bulkload): what it defers is rebuilt here once every range is done.
    """
    started = time.monotonic()
    names = mapping.order(collections) if collections else [c for c in mapping.order() if c in source.collections()]
    only = range_of_run(only_range, names)
    parts = parts or executor.workers
    if executor.workers > 1:
        spec = replace(spec, overlap_writes=False)
    job = start_job(engine, source, mapping, names, bulk_load=bulk_load)
    if progress is not None:
        progress({"event": "start", "run_id": job.run_id, "job_id": job.job_id, "resumed": job.resumed,
                  "collections": names, "executor": executor.name, "workers": executor.workers,
                  "bulk_load": job.bulk_load, "deferred": job.deferred})
    recs: list[Reconciliation] = []
    # The books of the ranges (failures, worker processes); progress events are the backfill's own.
    dispatch = RangeDispatch(engine, executor, spec, job.job_id)
    failures = dispatch.failures
    # A file's counts and id sample take a scan of it: the parent reads the next collections' while
    # the workers load, instead of between collections with every worker idle.
    prefetch = ThreadPoolExecutor(1) if isinstance(source, FileSource) and not only else None
    upcoming = {n: prefetch.submit(source.stats, n) for n in names[1:]} if prefetch else {}
    early = bulkload.EarlyRestore(engine)
    try:
        for name in names:
            if only and name != only[0]:
                continue
            if name in upcoming:
                upcoming[name].result()
            tasks = plan_ranges(engine, source, job, name, parts)
            if only:
                chosen = [t for t in tasks if t.lo == only[1] and t.hi == only[2]]
                if not chosen:
                    known = ", ".join(f"{name}:{t.lo}:{t.hi or ''}" for t in tasks)
                    raise ValueError(f"--range {only_range!r} is not a range of job {job.job_id} (its ranges: {known})")
                tasks = chosen
            if progress is not None:
                progress({"event": "collection", "collection": name, "total": source.stats(name).count,
                          "ranges": len(tasks)})
            watch = CheckpointWatch(engine, job, name, progress) if progress is not None else nullcontext()
            with watch:
                for task, outcome, error in executor.map(run_range, tasks, spec, job):
                    out = outcome if outcome is not None else RangeOutcome(task, error=error)
                    dispatch.settle(task, out.error, out.worker)
                    if progress is not None:
                        watch.poll()  # the range's last batches, before the event that says it ended
                        progress({"event": "range", "collection": name, "range": [out.task.lo, out.task.hi],
                                  "documents": out.documents, "loaded": out.loaded, "rejected": out.rejected,
                                  "skipped": out.skipped, "seconds": round(out.seconds, 3), "error": out.error})
            if failures:
                break  # later collections reference this one: they wait for the retry
            if only:
                continue
            rec = reconcile(engine, source, job, name)
            recs.append(rec)
            early.submit(loaded_tables(mapping, names, name))
            if progress is not None:
                progress({"event": "reconciled", **rec.as_dict()})
    except BaseException:
        early.settle()
        finish_job(engine, job, "failed", {"error": "interrupted by an exception; run again to resume"})
        raise
    finally:
        if prefetch is not None:
            prefetch.shutdown(cancel_futures=True)
    if only and not failures and _all_done(engine, job, names):
        for name in names:  # the retried range was the last one missing: the job is complete
            recs.append(reconcile(engine, source, job, name))
        only_done = True
    else:
        only_done = not only
    if failures:
        status = "failed"
    elif not only_done:
        status = "interrupted"  # one range re-run; the next run without --range joins this job
    else:
        status = "done" if all(r.balanced for r in recs) else "imbalanced"
    if status in ("done", "imbalanced"):
        rebuilt = end_bulk_load(engine, mapping, job, names, early)
        clear_resolved_flags(engine, mapping, names)
    else:
        early.settle()  # the collections reconciled before the failure keep their rebuilt indexes
        rebuilt = None
    if progress is not None and rebuilt:
        progress({"event": "rebuilt", **rebuilt["rebuilt"]})
    summary = RunSummary(job.run_id, job.job_id, job.resumed, status, time.monotonic() - started, recs,
                         rejects_by_reason(engine, names), bulk_load=rebuilt)
    result = ScaledRun(summary, executor.name, executor.workers, failures, only_range, dispatch.processes)
    finish_job(engine, job, status, result.as_dict())
    return result
