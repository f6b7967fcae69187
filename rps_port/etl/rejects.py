"""Rejected documents: list, show, export (JSON lines a person can edit), and replay only them.

Replay takes each unresolved reject's document (as stored, re-read from the source, or from an
edited export file), runs it through the current mapping and loads it like the backfill does. A
document that loads marks its reject resolved; one that still fails is updated with the new reason.
An edited document that loads is kept as a fix (`rps_port.etl.fixes`), so later runs over the same
source version load it again instead of rejecting the source's.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, select, update

from rps_port.etl import extjson, fixes
from rps_port.etl.batch import BatchProcessor, BatchResult
from rps_port.etl.loader import writer_for
from rps_port.etl.mapping import Mapping
from rps_port.etl.models import EtlFix, EtlReject, EtlRun
from rps_port.etl.sources import Source
from rps_port.etl.tables import mapping_tables
from rps_port.timeutil import utcnow

_T = EtlReject.__table__
REPLAY_JOB_KEY = "replay"  # etl_runs.job_key of a replay: never a job a later `etl run` resumes


def _where(collection: str | None, reasons: list[str] | None, include_resolved: bool) -> Any:
    conds = []
    if collection:
        conds.append(_T.c.collection == collection)
    if reasons:
        conds.append(_T.c.reason.in_(reasons))
    if not include_resolved:
        conds.append(_T.c.resolved_at.is_(None))
    return and_(True, *conds)


def list_rejects(
    engine: Engine,
    collection: str | None = None,
    reasons: list[str] | None = None,
    *,
    include_resolved: bool = False,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    stmt = (
        select(_T.c.id, _T.c.collection, _T.c.record_id, _T.c.reason, _T.c.field_path, _T.c.message,
               _T.c.mapping_version, _T.c.last_seen_at, _T.c.resolved_at)
        .where(_where(collection, reasons, include_resolved))
        .order_by(_T.c.collection, _T.c.record_id)
    )
    if limit:
        stmt = stmt.limit(limit)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def show_reject(engine: Engine, key: str, collection: str | None = None) -> dict[str, Any] | None:
    """A reject by its numeric id or by the document's record id, with the stored document."""
    cond = _T.c.id == int(key) if key.isdigit() else _T.c.record_id == key
    if collection:
        cond = and_(cond, _T.c.collection == collection)
    with engine.connect() as conn:
        row = conn.execute(select(_T).where(cond).limit(1)).first()
        if row is None:
            return None
        fix = conn.execute(select(EtlFix.__table__).where(
            and_(EtlFix.collection == row.collection, EtlFix.record_id == row.record_id))).first()
    out = dict(row._mapping)
    if fix is not None:  # an edited document stands in for this one while the source is unchanged
        out["edited"] = {"document": json.loads(fix.document), "replay_run_id": fix.run_id, "fixed_at": fix.fixed_at,
                         "applies": fix.source_digest == fixes.digest(out["document"])}
    out["document"] = json.loads(out["document"]) if out["document"].startswith("{") else out["document"]
    return out


def export_rejects(
    engine: Engine, out: Path, collection: str | None = None, reasons: list[str] | None = None
) -> int:
    """JSON lines: {collection, record_id, reason, field, message, document (canonical Extended JSON)}."""
    n = 0
    with engine.connect() as conn, open(out, "w", encoding="utf-8") as fh:
        for r in conn.execute(select(_T).where(_where(collection, reasons, False)).order_by(_T.c.collection, _T.c.id)):
            doc = json.loads(r.document) if r.document.startswith("{") else r.document
            line = {"collection": r.collection, "record_id": r.record_id, "reason": r.reason, "field": r.field_path,
                    "message": r.message, "document": doc}
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
            n += 1
    return n


@dataclass
class ReplaySummary:
    run_id: str
    attempted: int = 0
    loaded: int = 0
    edited: int = 0  # of those loaded, documents edited in the file: kept as fixes
    still_rejected: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "attempted": self.attempted, "loaded": self.loaded, "edited": self.edited,
                "still_rejected": self.still_rejected, "skipped": self.skipped}


class ReplayFileError(ValueError):
    """An edited export file that cannot be replayed; the message names each bad line and field."""


_MAX_LISTED = 20


def read_replay_file(file: Path, mapping: Mapping) -> list[tuple[str, str | None, Any]]:
    """(collection, reason, document) of each line of an export file, all checked before any loads.

    Raises ReplayFileError listing every bad line (the first 20), so a typo on line 500 never leaves
    the file half replayed. Messages name lines and fields, never values (they may be personal data)."""
    items: list[tuple[str, str | None, Any]] = []
    errors: list[str] = []
    with open(file, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                errors.append(f"line {n}: not JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(item, dict):
                errors.append(f"line {n}: expected an object with `collection` and `document`")
                continue
            coll, doc = item.get("collection"), item.get("document")
            if not isinstance(coll, str) or not coll:
                errors.append(f"line {n}: collection: missing")
            elif coll not in mapping.collections:
                errors.append(f"line {n}: collection: not in the mapping (it has {', '.join(mapping.collections)})")
            if not isinstance(doc, dict):
                errors.append(f"line {n}: document: missing or not an object")
                continue
            try:
                decoded = extjson.from_canonical(doc)
            except Exception as exc:  # noqa: BLE001 - bson raises several types for bad Extended JSON
                errors.append(f"line {n}: document: not valid Extended JSON ({type(exc).__name__})")
                continue
            reason = item.get("reason")
            items.append((coll, reason if isinstance(reason, str) else None, decoded))
    if errors:
        more = f"\n  ... and {len(errors) - _MAX_LISTED} more" if len(errors) > _MAX_LISTED else ""
        raise ReplayFileError(f"{file}: nothing replayed:\n  " + "\n  ".join(errors[:_MAX_LISTED]) + more)
    return items


def _documents(
    engine: Engine, collection: str | None, reasons: list[str] | None, source: Source | None,
    file_items: list[tuple[str, str | None, Any]] | None,
) -> Iterator[tuple[str, Any]]:
    if file_items is not None:
        for coll, reason, doc in file_items:
            if (not collection or coll == collection) and (not reasons or reason in reasons):
                yield coll, doc
        return
    with engine.connect() as conn:
        rows = conn.execute(
            select(_T.c.collection, _T.c.record_id, _T.c.document).where(_where(collection, reasons, False))
        ).all()
    if source is None:
        for r in rows:
            yield r.collection, extjson.loads(r.document)
        return
    by_coll: dict[str, list[str]] = {}
    for r in rows:
        by_coll.setdefault(r.collection, []).append(r.record_id)
    for coll, ids in by_coll.items():
        for doc in source.fetch(coll, ids):
            yield coll, doc


def _stored_documents(conn: Connection, coll: str, mapping: Mapping, docs: list[Any]) -> dict[str, tuple[str, Any]]:
    """record id -> (the stored reject's document text, the document from the file), for the file's
    documents that have a stored reject."""
    cm = mapping.collection(coll)
    by_id = {cm.record_id(d): d for d in docs}
    rows = conn.execute(select(_T.c.record_id, _T.c.document).where(
        and_(_T.c.collection == coll, _T.c.record_id.in_(list(by_id))))).all()
    return {r.record_id: (r.document, by_id[r.record_id]) for r in rows}


def _keep_edits(conn: Connection, coll: str, edited: dict[str, tuple[str, Any]], result: BatchResult,
                run_id: str) -> int:
    """Edited documents that loaded become fixes (bound to the source version their reject holds); a
    reject that still fails keeps the source's document, so a later edit binds to it too."""
    loaded = set(result.loaded_ids)
    for r in result.rejects:
        if r.record_id in edited:
            conn.execute(update(_T).where(and_(_T.c.collection == coll, _T.c.record_id == r.record_id))
                         .values(document=edited[r.record_id][0]))
    return fixes.record(conn, coll, [(rid, text, doc) for rid, (text, doc) in edited.items() if rid in loaded], run_id)


def replay_rejects(
    engine: Engine,
    mapping: Mapping,
    collection: str | None = None,
    reasons: list[str] | None = None,
    *,
    source: Source | None = None,
    file: Path | None = None,
    batch_size: int = 500,
) -> ReplaySummary:
    """Load the unresolved rejects (optionally of one collection/reason) with the current mapping."""
    file_items = read_replay_file(file, mapping) if file is not None else None
    run_id = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(insert(EtlRun.__table__).values(
            id=run_id, job_id=run_id, job_key=REPLAY_JOB_KEY, source=str(file or (source.description if source else "stored")),
            mapping_version=mapping.version, collections=[collection] if collection else list(mapping.collections),
            status="running", started_at=utcnow(),
        ))
    tables = mapping_tables(mapping)
    summary = ReplaySummary(run_id)
    still: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    pending: dict[str, list[Any]] = {}

    def flush(coll: str) -> None:
        docs = pending.pop(coll, [])
        if not docs:
            return
        processor = BatchProcessor(mapping, coll, tables, run_id)
        mapped = processor.map(docs)
        with engine.connect() as conn, conn.begin():
            edited = _stored_documents(conn, coll, mapping, docs) if file is not None else {}
            result = processor.write(writer_for(conn), mapped)
            if edited:
                summary.edited += _keep_edits(conn, coll, edited, result, run_id)
        summary.attempted += len(docs)
        summary.loaded += result.loaded
        still.update(r.reason for r in result.rejects)
        skipped.update(result.skipped)
        if result.skipped:  # skipped on purpose (filter / older than the target): no longer a reject
            ids = [mapping.collection(coll).record_id(d) for d in docs]
            with engine.begin() as conn:
                conn.execute(update(_T).where(and_(_T.c.collection == coll, _T.c.record_id.in_(ids),
                                                   _T.c.run_id != run_id, _T.c.resolved_at.is_(None)))
                             .values(resolved_at=utcnow()))

    try:
        for coll, doc in _documents(engine, collection, reasons, source, file_items):
            pending.setdefault(coll, []).append(doc)
            if len(pending[coll]) >= batch_size:
                flush(coll)
        for coll in mapping.order([c for c in pending if c in mapping.collections]):
            flush(coll)
    except BaseException:  # each flushed batch is committed; the run says it did not finish
        _finish(engine, run_id, "failed", summary)
        raise
    summary.still_rejected = dict(still)
    summary.skipped = dict(skipped)
    _finish(engine, run_id, "done", summary)
    return summary


def _finish(engine: Engine, run_id: str, status: str, summary: ReplaySummary) -> None:
    with engine.begin() as conn:
        conn.execute(update(EtlRun.__table__).where(EtlRun.__table__.c.id == run_id)
                     .values(status=status, finished_at=utcnow(), summary=summary.as_dict()))
