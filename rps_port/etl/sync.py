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
  collection's watermark.

Hard deletes in the source become deletes in SQL, or soft deletes (`deleted_at`) when asked.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, select, update

from rps_port.etl.batch import BatchProcessor, Mapped, RejectRecord
from rps_port.etl.changes import ChangeEvent, ChangeSource
from rps_port.etl.errors import RejectError
from rps_port.etl.loader import chunks, writer_for
from rps_port.etl.mapping import Mapping, SkipDocument
from rps_port.etl.sources import Source
from rps_port.etl.sync_models import EtlSyncState
from rps_port.etl.tables import mapping_tables
from rps_port.observability.metrics import set_etl_lag
from rps_port.timeutil import ensure_utc, utcnow

log = logging.getLogger("rps_port.etl.sync")
Progress = Callable[[dict[str, Any]], None]
ALL = "*"


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

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "source": self.source_key, "batches": self.batches, "events": self.events,
                **asdict(self.counts), "lag_seconds": round(self.lag_seconds, 3), "seconds": round(self.seconds, 3)}


# --------------------------------------------------------------------------- state


def _state(conn: Connection, source_key: str, collection: str) -> Any:
    t = EtlSyncState.__table__
    return conn.execute(select(t).where(and_(t.c.source_key == source_key[:64], t.c.collection == collection))).first()


def _save_state(conn: Connection, source_key: str, collection: str, mode: str, **values: Any) -> None:
    t = EtlSyncState.__table__
    key = source_key[:64]
    values = {**values, "updated_at": utcnow()}
    if _state(conn, key, collection) is None:
        conn.execute(t.insert().values(source_key=key, collection=collection, mode=mode,
                                       applied=values.pop("applied", 0), **values))
    else:
        applied = values.pop("applied", 0)
        conn.execute(update(t).where(and_(t.c.source_key == key, t.c.collection == collection))
                     .values(mode=mode, applied=t.c.applied + applied, **values))


def sync_state(engine: Engine) -> list[dict[str, Any]]:
    """Every stored sync position with its lag (what `etl sync --status` and the cutover gates read)."""
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

    def __init__(self, mapping: Mapping, collection: str, run_id: str, delete_mode: str) -> None:
        self.mapping = mapping
        self.tables = mapping_tables(mapping)
        self.processor = BatchProcessor(mapping, collection, self.tables, run_id)
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
        applier = _Applier(mapping, name, run_id, delete_mode)
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
    batch_size: int = 2000,
    progress: Progress | None = None,
) -> SyncResult:
    """Pick up new and changed documents by watermark, and deletions by a sweep of ids."""
    started = time.monotonic()
    run_id = str(uuid.uuid4())
    names = mapping.order(collections) if collections else [c for c in mapping.order() if c in source.collections()]
    result = SyncResult("watermark", source.key)
    for name in names:
        counts, lag = _watermark_collection(engine, source, mapping, name, run_id, delete_mode, sweep_deletes, batch_size)
        set_etl_lag(name, lag)
        result.counts.add(counts)
        result.batches += 1
        result.lag_seconds = max(result.lag_seconds, lag)
        if progress is not None:
            progress({"event": "sync", "collection": name, **asdict(counts)})
    result.seconds = time.monotonic() - started
    log.info("watermark sync done", extra={"upserted": result.counts.upserted, "deleted": result.counts.deleted})
    return result


def _raw_version_path(mapping: Mapping, name: str) -> str | None:
    """The source field the version column is read from first, when it is a plain top-level path."""
    spec = mapping.collection(name).spec
    column = spec.columns.get(spec.version) if spec.version else None
    first = column.alternatives[0] if column and column.alternatives else None
    return first.path if first is not None and first.path and "." not in first.path else None


def _watermark_collection(
    engine: Engine, source: Source, mapping: Mapping, name: str, run_id: str, delete_mode: str,
    sweep_deletes: bool, batch_size: int,
) -> tuple[SyncCounts, float]:
    scan_started = utcnow()
    cm = mapping.collection(name)
    applier = _Applier(mapping, name, run_id, delete_mode)
    table = applier.tables[cm.table]
    key = table.c[cm.spec.id]
    version_col = table.c[cm.spec.version] if cm.spec.version and cm.spec.version in table.c else None
    with engine.connect() as conn:
        row = _state(conn, source.key, name)
        if version_col is not None:
            present: dict[str, datetime | None] = {r[0]: r[1] for r in conn.execute(select(key, version_col))}
        else:
            present = dict.fromkeys(conn.execute(select(key)).scalars())
    newest = row.watermark_ts if row is not None else None
    raw_path = _raw_version_path(mapping, name)
    seen: set[str] = set()
    pending = Mapped()
    counts = SyncCounts()

    def flush() -> None:
        with engine.connect() as conn, conn.begin():
            counts.add(applier.write(conn, pending))
        pending.docs.clear()
        pending.rejects.clear()
        pending.skipped.clear()

    for _pos, doc in source.scan(name):
        rid = cm.record_id(doc)
        seen.add(rid)
        held = present.get(rid)
        raw = doc.get(raw_path) if raw_path else None
        if held is not None and isinstance(raw, datetime) and ensure_utc(raw) <= held:
            continue  # unchanged since the target's version: no need to map it again
        try:
            md = cm.map(doc, mapping.secret)
        except RejectError as exc:
            if rid not in present:  # recorded with its reason, as the backfill does
                pending.rejects.append(RejectRecord.of(name, exc, doc))
            continue
        except SkipDocument as skip:
            if rid not in present:
                pending.skipped[skip.reason] += 1
            continue
        version = _version_of(mapping, name, md)
        if version is not None and (newest is None or version > newest):
            newest = version
        if rid not in present or version is None or held is None or version > held:
            pending.docs.append((md, doc))
        if len(pending.docs) >= batch_size:
            flush()
    flush()
    gone = sorted(present.keys() - seen) if sweep_deletes else []
    with engine.connect() as conn, conn.begin():
        counts.add(applier.delete(conn, gone))
        lag = (utcnow() - scan_started).total_seconds()
        _save_state(conn, source.key, name, "watermark", watermark_ts=newest, applied=counts.upserted + counts.deleted,
                    lag_seconds=lag, source_time=scan_started)
    return counts, lag
