"""Incremental sync: keep SQL in step with the legacy database until cutover.

Two modes, one write path (the backfill's `BatchProcessor`, so mapping, child replacement,
rejects and the `src_updated_at` stale-write guard are the same as in the backfill):

- changes: a change stream (live replica set) or a recorded event file. Events of a batch are
  applied in one transaction together with the resume token that follows them, so a crash
  re-applies at most that batch, and a replayed event never overwrites a newer row.
- watermark: for sources without change streams (a standalone server, dumps taken at intervals).
  Documents newer than the version the target holds for them, or whose id the target lacks, are
  upserted (a document whose raw `updatedAt` shows it unchanged is not even mapped); a delete sweep
  removes target rows whose id the source no longer has. The newest version seen is stored as the
  collection's watermark. The scan is split into `_id` range tasks (`sync_range`) that run on an
  executor (rps_port.etl.executors); each commits its own batches and is idempotent, and the parent
  stores the watermark only once every range of the collection succeeded.
  What is read depends on the source. A file is fingerprinted (size, mtime, BLAKE2b of its bytes)
  and the fingerprint stored with the watermark: a collection whose file has the fingerprint of
  its last complete sync is not read at all. A live server is asked only for the documents whose
  version is at or after the watermark (minus `overlap`) or is not a date, plus the ids the target
  lacks; the delete sweep reads ids alone. The first run, and every run with `full`, reads all.

The change mode stays in one process: a stream is one ordered sequence, and its resume token only
means something for the whole of it.

Hard deletes in the source become deletes in SQL, or soft deletes (`deleted_at`) when asked.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, select, update

from rps_port.etl.backfill import DEFAULT_BATCH_SIZE, clear_resolved_flags, split_ids
from rps_port.etl.batch import BatchProcessor, Mapped, RejectRecord
from rps_port.etl.changes import ChangeEvent, ChangeSource
from rps_port.etl.errors import RejectError
from rps_port.etl.executors import (
    Executor,
    LocalExecutor,
    RangeDispatch,
    RangeFailure,
    WorkerSpec,
    clear_failures,
    range_job_id,
    range_of_run,
    retry_if_busy,
)
from rps_port.etl.fixes import Fixes
from rps_port.etl.loader import chunks, writer_for
from rps_port.etl.mapping import Mapping, SkipDocument
from rps_port.etl.sources import FileFingerprint, FileSource, MongoSource, Source
from rps_port.etl.sync_models import EtlSyncState
from rps_port.etl.tables import mapping_tables
from rps_port.ids import normalize_object_id
from rps_port.observability.metrics import set_etl_lag
from rps_port.timeutil import ensure_utc, utcnow

log = logging.getLogger("rps_port.etl.sync")
Progress = Callable[[dict[str, Any]], None]
ALL = "*"
# A live source is asked for versions from this long before the watermark: a document saved by an
# app server whose clock runs behind, or committed after a newer one was read, is still picked up.
WATERMARK_OVERLAP = timedelta(minutes=5)
UNCHANGED = "source file unchanged since the last sync"
STATE_KEY_LENGTH = 64  # etl_sync_state.source_key


@dataclass
class SyncCounts:
    upserted: int = 0
    deleted: int = 0
    rejected: int = 0
    skipped: int = 0
    stale: int = 0

    def add(self, other: SyncCounts) -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)


@dataclass
class SyncResult:
    mode: str
    source_key: str
    batches: int = 0
    events: int = 0
    counts: SyncCounts = field(default_factory=SyncCounts)
    lag_seconds: float = 0.0
    seconds: float = 0.0
    # watermark mode: where its range tasks ran, which failed (the change mode is one stream, here)
    executor: str = "local"
    workers: int = 1
    failures: list[RangeFailure] = field(default_factory=list)
    processes: set[int] = field(default_factory=set)
    only_range: str | None = None
    unchanged: list[str] = field(default_factory=list)  # collections whose source file had not changed

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "source": self.source_key, "batches": self.batches, "events": self.events,
                **asdict(self.counts), "lag_seconds": round(self.lag_seconds, 3), "seconds": round(self.seconds, 3),
                "executor": self.executor, "workers": self.workers, "worker_processes": len(self.processes),
                "only_range": self.only_range, "unchanged": self.unchanged,
                "failed_ranges": [{"range": f.selector, "error": f.error} for f in self.failures]}


# --------------------------------------------------------------------------- state


def _state_key(source_key: str) -> str:
    """What a source's rows are stored under: its key, or for a long one a prefix and a digest (two
    dump folders whose paths start alike must not share a position)."""
    if len(source_key) <= STATE_KEY_LENGTH:
        return source_key
    digest = hashlib.blake2b(source_key.encode(), digest_size=8).hexdigest()
    return f"{source_key[:STATE_KEY_LENGTH - len(digest) - 1]}~{digest}"


def _state(conn: Connection, source_key: str, collection: str) -> Any:
    t = EtlSyncState.__table__
    key = _state_key(source_key)
    return conn.execute(select(t).where(and_(t.c.source_key == key, t.c.collection == collection))).first()


def _save_state(conn: Connection, source_key: str, collection: str, mode: str, **values: Any) -> None:
    t = EtlSyncState.__table__
    key = _state_key(source_key)
    values = {**values, "updated_at": utcnow()}
    if _state(conn, key, collection) is None:
        conn.execute(t.insert().values(source_key=key, collection=collection, mode=mode,
                                       applied=values.pop("applied", 0), **values))
    else:
        applied = values.pop("applied", 0)
        conn.execute(update(t).where(and_(t.c.source_key == key, t.c.collection == collection))
                     .values(mode=mode, applied=t.c.applied + applied, **values))


def sync_state(engine: Engine) -> list[dict[str, Any]]:
    """Every stored sync position with its lag (what the cutover gates read; `etl status` shows it)."""
    t = EtlSyncState.__table__
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).order_by(t.c.source_key, t.c.collection))]


def capture_token(engine: Engine, changes: Any) -> None:
    """Store the stream's current position before a backfill starts, so the sync later covers it."""
    with engine.begin() as conn:
        if _state(conn, changes.key, ALL) is None:
            _save_state(conn, changes.key, ALL, "changestream", resume_token=changes.current_token())


# --------------------------------------------------------------------------- applying documents


class _Applier:
    """Upserts and deletes for one collection through the backfill's write path."""

    def __init__(self, mapping: Mapping, collection: str, run_id: str, delete_mode: str, fixes: Fixes) -> None:
        self.mapping = mapping
        self.tables = mapping_tables(mapping)
        self.processor = BatchProcessor(mapping, collection, self.tables, run_id)
        self.processor.fixes = fixes
        self.cm = mapping.collection(collection)
        self.delete_mode = delete_mode

    def upsert(self, conn: Connection, docs: list[dict[str, Any]]) -> SyncCounts:
        return self.write(conn, self.processor.map(docs))

    def write(self, conn: Connection, mapped: Mapped) -> SyncCounts:
        result = self.processor.write(writer_for(conn), mapped)
        stale = result.skipped.get("target_newer", 0)
        return SyncCounts(upserted=result.loaded, rejected=len(result.rejects),
                          skipped=sum(result.skipped.values()) - stale, stale=stale)

    def delete(self, conn: Connection, ids: list[str], at: datetime | None = None) -> SyncCounts:
        if not ids:
            return SyncCounts()
        spec = self.cm.spec
        table = self.tables[spec.table]
        key = table.c[spec.id]
        if self.delete_mode == "soft" and spec.deleted and spec.deleted in table.c:
            n = 0
            for part in chunks(ids):
                n += conn.execute(update(table).where(key.in_(part), table.c[spec.deleted].is_(None))
                                  .values({spec.deleted: at or utcnow()})).rowcount
            return SyncCounts(deleted=n)
        writer = writer_for(conn)
        for child in spec.children.values():
            writer.delete_by(self.tables[child.table], child.parent_key, ids)
        n = 0
        for part in chunks(ids):
            n += conn.execute(table.delete().where(key.in_(part))).rowcount
        return SyncCounts(deleted=n)


def _coalesce(events: Iterable[ChangeEvent]) -> dict[str, dict[str, ChangeEvent]]:
    """The last event per document, per collection (events carry full documents, so last wins)."""
    out: dict[str, dict[str, ChangeEvent]] = {}
    for e in events:
        per = out.setdefault(e.collection, {})
        per.pop(e.record_id, None)
        per[e.record_id] = e
    return out


def apply_events(conn: Connection, mapping: Mapping, events: list[ChangeEvent], run_id: str,
                 delete_mode: str = "hard") -> SyncCounts:
    """Apply one batch of change events in the caller's transaction."""
    counts = SyncCounts()
    grouped = _coalesce(events)
    for name in mapping.order([c for c in grouped if c in mapping.collections]):
        applier = _Applier(mapping, name, run_id, delete_mode, Fixes.load(conn, name))
        latest = grouped[name]
        upserts = [e.document for e in latest.values() if e.op != "delete" and e.document is not None]
        deletes = [e.record_id for e in latest.values() if e.op == "delete"]
        if upserts:
            counts.add(applier.upsert(conn, upserts))
        if deletes:
            at = max((e.at for e in latest.values() if e.op == "delete" and e.at), default=None)
            counts.add(applier.delete(conn, deletes, at))
    unknown = [c for c in grouped if c not in mapping.collections]
    counts.skipped += sum(len(grouped[c]) for c in unknown)
    return counts


# --------------------------------------------------------------------------- change mode


def run_sync(
    engine: Engine,
    mapping: Mapping,
    changes: ChangeSource,
    *,
    follow: bool = False,
    poll_seconds: float = 1.0,
    delete_mode: str = "hard",
    should_stop: Callable[[], bool] | None = None,
    progress: Progress | None = None,
) -> SyncResult:
    """Apply changes after the stored resume token; catch up and return, or keep following."""
    started = time.monotonic()
    run_id = str(uuid.uuid4())
    result = SyncResult("changes", changes.key)
    while True:
        with engine.connect() as conn:
            row = _state(conn, changes.key, ALL)
        token = row.resume_token if row is not None else None
        idle = True
        for events, next_token in changes.batches(token):
            with engine.connect() as conn, conn.begin():
                counts = apply_events(conn, mapping, events, run_id, delete_mode)
                last_at = max((e.at for e in events if e.at), default=None)
                lag = (utcnow() - ensure_utc(last_at)).total_seconds() if last_at else 0.0
                _save_state(conn, changes.key, ALL, "changes", resume_token=next_token, applied=len(events),
                            lag_seconds=max(0.0, lag), source_time=last_at)
            if counts.upserted:
                clear_resolved_flags(engine, mapping, sorted({e.collection for e in events if e.op != "delete"}))
            result.batches += 1
            result.events += len(events)
            result.counts.add(counts)
            result.lag_seconds = max(0.0, lag)
            for name in mapping.collections:
                set_etl_lag(name, result.lag_seconds)
            if events:
                idle = False
                if progress is not None:
                    progress({"event": "sync", **result.as_dict()})
        if idle:
            with engine.begin() as conn:
                _save_state(conn, changes.key, ALL, "changes", lag_seconds=0.0)
            result.lag_seconds = 0.0
            for name in mapping.collections:
                set_etl_lag(name, 0.0)
        if not follow or (should_stop is not None and should_stop()):
            break
        time.sleep(poll_seconds)
    result.seconds = time.monotonic() - started
    log.info("sync caught up", extra={"mode": "changes", "events": result.events, "lag_seconds": result.lag_seconds})
    return result


# --------------------------------------------------------------------------- watermark mode


def _version_of(mapping: Mapping, name: str, md: Any) -> datetime | None:
    version = mapping.collection(name).spec.version
    value = md.row.get(version) if version else None
    return ensure_utc(value) if isinstance(value, datetime) else None


def run_watermark_sync(
    engine: Engine,
    source: Source,
    mapping: Mapping,
    collections: list[str] | None = None,
    *,
    delete_mode: str = "hard",
    sweep_deletes: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    executor: Executor | None = None,
    spec: WorkerSpec | None = None,
    parts: int | None = None,
    only_range: str | None = None,
    full: bool = False,
    overlap: timedelta = WATERMARK_OVERLAP,
) -> SyncResult:
    """Pick up new and changed documents by watermark, and deletions by a sweep of ids.

    Collections run one after another in `mapping.order()` (a referenced collection is in step
    before the collections that reference it); the `parts` ranges of a collection (default: one per
    worker) run on `executor` (default: this process), each worker opening `spec`. A failed range is
    recorded in `etl_range_failures` and stops the run before the next collection, without moving
    the collection's watermark. `only_range` (`COLLECTION:LO:HI`) syncs that range alone.
    A collection whose source file is unchanged since its last complete sync is skipped, and a live
    source is queried from the watermark on; `full` reads every document of every collection.
    """
    started = time.monotonic()
    run_id = str(uuid.uuid4())
    names = mapping.order(collections) if collections else [c for c in mapping.order() if c in source.collections()]
    only = range_of_run(only_range, names)
    executor = executor or LocalExecutor((engine, source, mapping))
    dispatch = RangeDispatch(engine, executor, spec, range_job_id("sync", source.key), progress)
    result = SyncResult("watermark", source.key, executor=executor.name, workers=executor.workers,
                        failures=dispatch.failures, processes=dispatch.processes, only_range=only_range)
    for name in names:
        if only and name != only[0]:
            continue
        checked_at = utcnow()
        fingerprint = source.fingerprint(name) if isinstance(source, FileSource) and only is None else None
        if fingerprint is not None and not full and _file_unchanged(engine, source.key, name, fingerprint,
                                                                    mapping.version):
            lag = _record_unchanged(engine, source.key, name, checked_at)
            result.unchanged.append(name)
            if progress is not None:
                progress({"event": "sync", "collection": name, **asdict(SyncCounts()), "unchanged": UNCHANGED})
        else:
            since = None if full else _query_since(engine, source, mapping, name, overlap)
            plan = WatermarkPlan(name, run_id, delete_mode, sweep_deletes, batch_size, since)
            kept = fingerprint if sweep_deletes else None  # a run without the sweep is not a complete sync
            counts, lag = _watermark_collection(engine, source, dispatch, plan, parts or executor.workers, only,
                                                _file_columns(kept, mapping.version))
            result.counts.add(counts)
            result.batches += 1
            if counts.upserted:
                clear_resolved_flags(engine, mapping, [name])
            if progress is not None:
                progress({"event": "sync", "collection": name, **asdict(counts)})
            if dispatch.failed(name):
                break  # later collections reference this one: they wait for the retry
        if lag is not None:
            set_etl_lag(name, lag)
            result.lag_seconds = max(result.lag_seconds, lag)
    result.seconds = time.monotonic() - started
    log.info("watermark sync done", extra={"upserted": result.counts.upserted, "deleted": result.counts.deleted,
                                           "unchanged": len(result.unchanged), "failed_ranges": len(dispatch.failures)})
    return result


@dataclass(frozen=True)
class WatermarkPlan:
    """What every range task of one collection does (shipped with each task)."""

    collection: str
    run_id: str
    delete_mode: str
    sweep_deletes: bool
    batch_size: int
    since: datetime | None = None  # a live source: ask only for versions from here on (None: read all)


@dataclass(frozen=True)
class SyncTask:
    """Sync the documents of `plan.collection` with `_id` in [lo, hi)."""

    plan: WatermarkPlan
    lo: str
    hi: str | None

    @property
    def collection(self) -> str:
        return self.plan.collection


@dataclass
class RangeSynced:
    counts: SyncCounts
    newest: datetime | None  # the newest version among the range's documents


def _file_columns(fingerprint: FileFingerprint | None, mapping_version: str | None) -> dict[str, Any]:
    """The state's `file_*` columns: the file a complete sync read, and the mapping it read it through."""
    if fingerprint is None:
        return dict.fromkeys(("file_size", "file_mtime_ns", "file_digest", "file_mapping_version"))
    return {"file_size": fingerprint.size, "file_mtime_ns": fingerprint.mtime_ns, "file_digest": fingerprint.digest,
            "file_mapping_version": mapping_version}


def _file_unchanged(engine: Engine, source_key: str, name: str, fingerprint: FileFingerprint,
                    mapping_version: str) -> bool:
    """Whether the collection's last complete sync from this source read this same file through this
    same mapping (a changed mapping may load documents it rejected before: the file is read again)."""
    with engine.connect() as conn:
        row = _state(conn, source_key, name)
    if row is None or row.mode != "watermark":
        return False
    return {k: getattr(row, k) for k in _file_columns(None, None)} == _file_columns(fingerprint, mapping_version)


def _record_unchanged(engine: Engine, source_key: str, name: str, checked_at: datetime) -> float:
    """The collection is in step with its source as of `checked_at`: its lag is the age of that check."""
    lag = (utcnow() - checked_at).total_seconds()
    with engine.connect() as conn, conn.begin():
        _save_state(conn, source_key, name, "watermark", lag_seconds=lag, source_time=checked_at, last_run="unchanged")
    return lag


def _forget_other_fingerprints(engine: Engine, source_key: str, name: str) -> None:
    """Another source is about to write this collection: a file read before no longer describes the target."""
    t = EtlSyncState.__table__
    with engine.connect() as conn, conn.begin():
        conn.execute(update(t).where(t.c.collection == name, t.c.source_key != _state_key(source_key),
                                     t.c.file_digest.is_not(None))
                     .values(_file_columns(None, None)))


def _query_since(engine: Engine, source: Source, mapping: Mapping, name: str, overlap: timedelta) -> datetime | None:
    """For a live source with a stored watermark and a plain version field: where its query starts."""
    if not isinstance(source, MongoSource) or _raw_version_path(mapping, name) is None:
        return None
    with engine.connect() as conn:
        row = _state(conn, source.key, name)
    held = row.watermark_ts if row is not None and row.mode == "watermark" else None
    return ensure_utc(held) - overlap if held is not None else None


def _watermark_collection(
    engine: Engine, source: Source, dispatch: RangeDispatch, plan: WatermarkPlan, parts: int,
    only: tuple[str, str, str | None] | None, file_columns: dict[str, Any],
) -> tuple[SyncCounts, float | None]:
    """Run the collection's range tasks; store its watermark (and `file_columns`, the fingerprint of the
    file taken before the read) when all succeeded (lag None otherwise)."""
    scan_started = utcnow()
    name = plan.collection
    _forget_other_fingerprints(engine, source.key, name)
    if only is not None:
        ranges = [(only[1], only[2])]
    else:  # the first range starts at "" and the last is open: target ids beyond the source's are swept too
        stats = source.stats(name) if parts > 1 else None
        ranges = split_ids(stats.min_id if stats else None, stats.max_id if stats else None, parts,
                           stats.sample if stats else ())
    outcomes = dispatch.run(sync_range, [SyncTask(plan, lo, hi) for lo, hi in ranges], "sync-range")
    counts = SyncCounts()
    for out in outcomes:
        counts.add(out.value.counts)
    if dispatch.failed(name) or only is not None:
        return counts, None  # the watermark moves only when the whole collection is in step
    newest = max((out.value.newest for out in outcomes if out.value.newest is not None), default=None)
    with engine.connect() as conn, conn.begin():
        row = _state(conn, source.key, name)
        held = row.watermark_ts if row is not None else None
        if held is not None and (newest is None or held > newest):
            newest = held
        lag = (utcnow() - scan_started).total_seconds()
        _save_state(conn, source.key, name, "watermark", watermark_ts=newest, applied=counts.upserted + counts.deleted,
                    lag_seconds=lag, source_time=scan_started, last_run="queried" if plan.since else "scanned",
                    **file_columns)
    clear_failures(engine, dispatch.job_id, name)
    return counts, lag


def _raw_version_path(mapping: Mapping, name: str) -> str | None:
    """The source field the version column is read from first, when it is a plain top-level path."""
    spec = mapping.collection(name).spec
    column = spec.columns.get(spec.version) if spec.version else None
    first = column.alternatives[0] if column and column.alternatives else None
    return first.path if first is not None and first.path and "." not in first.path else None


def sync_range(engine: Engine, source: Source, mapping: Mapping, task: SyncTask) -> RangeSynced:
    """Upsert what changed in one `_id` range and sweep its deleted ids (a task: runs in a worker).

    Each batch commits on its own; running the range again is harmless (a document the target
    already holds at its version is skipped, a row already deleted is not found again).
    """
    plan, name = task.plan, task.collection
    cm = mapping.collection(name)
    with engine.connect() as conn:
        fixes = Fixes.load(conn, name)
    applier = _Applier(mapping, name, plan.run_id, plan.delete_mode, fixes)
    present = _present(engine, applier, cm, task.lo, task.hi)
    raw_path = _raw_version_path(mapping, name)
    docs, seen = _range_documents(source, task, raw_path, present)
    newest: datetime | None = None
    pending = Mapped()
    counts = SyncCounts()

    def flush() -> None:
        def write() -> SyncCounts:
            with engine.connect() as conn, conn.begin():
                return applier.write(conn, pending)

        counts.add(retry_if_busy(write))
        pending.docs.clear()
        pending.rejects.clear()
        pending.skipped.clear()

    for doc in docs:
        rid = cm.record_id(doc)
        seen.add(rid)
        held = present.get(rid)
        raw = doc.get(raw_path) if raw_path else None
        if held is not None and isinstance(raw, datetime) and (raw := ensure_utc(raw)) <= held:
            newest = raw if newest is None or raw > newest else newest
            continue  # unchanged since the target's version: no need to map it again
        try:
            md = cm.map(doc, mapping.secret)
        except RejectError as exc:
            if (fixed := fixes.map(cm, doc, mapping.secret)) is None:
                # Recorded with its reason, as the backfill does; a row the target holds keeps its
                # last good version, and the reject says why the newer one is not applied.
                pending.rejects.append(RejectRecord.of(name, exc, doc))
                continue
            md, doc = fixed
        except SkipDocument as skip:
            pending.skipped[skip.reason] += 1
            continue
        version = _version_of(mapping, name, md)
        if version is not None and (newest is None or version > newest):
            newest = version
        if rid not in present or version is None or held is None or version > held:
            pending.docs.append((md, doc))
        if len(pending.docs) >= plan.batch_size:
            flush()
    flush()
    gone = sorted(present.keys() - seen) if plan.sweep_deletes else []
    if gone:
        def sweep() -> SyncCounts:
            with engine.connect() as conn, conn.begin():
                return applier.delete(conn, gone)

        counts.add(retry_if_busy(sweep))
    return RangeSynced(counts, newest)


def _range_documents(
    source: Source, task: SyncTask, raw_path: str | None, present: dict[str, datetime | None]
) -> tuple[Iterator[dict[str, Any]], set[str]]:
    """The range's documents to compare with the target, and the set its ids are collected in.

    A full read yields every document and the caller collects their ids. A live source queried
    from the watermark yields the changed documents and those the target lacks, and the set starts
    with every id of the range, read first (ids only), so the sweep sees exactly what a full read sees.
    """
    name, plan = task.collection, task.plan
    if plan.since is None or raw_path is None or not isinstance(source, MongoSource):
        return (doc for _pos, doc in source.scan(name, task.lo, task.hi)), set()
    ids = set(source.ids(name, task.lo, task.hi))

    def changed_then_unknown() -> Iterator[dict[str, Any]]:
        returned: set[str] = set()
        for doc in source.changed_since(name, raw_path, plan.since, task.lo, task.hi):
            returned.add(normalize_object_id(doc.get("_id")) or "")
            yield doc
        # new documents (whatever their _id or version) and any the target lost or rejected
        yield from source.fetch(name, sorted(ids - present.keys() - returned))

    return changed_then_unknown(), ids


def _present(engine: Engine, applier: _Applier, cm: Any, lo: str, hi: str | None) -> dict[str, datetime | None]:
    """id -> version of the target's rows in [lo, hi)."""
    table = applier.tables[cm.table]
    key = table.c[cm.spec.id]
    version_col = table.c[cm.spec.version] if cm.spec.version and cm.spec.version in table.c else None
    cond = [key >= lo] if hi is None else [key >= lo, key < hi]
    with engine.connect() as conn:
        if version_col is None:
            return dict.fromkeys(conn.execute(select(key).where(*cond)).scalars())
        return {r[0]: r[1] for r in conn.execute(select(key, version_col).where(*cond))}
