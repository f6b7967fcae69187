"""Reverse sync for a rollback from `live`: rows written on the new side since `live` go back to
MongoDB in the legacy document shape, by running the ETL mapping backwards (`Mapping.unmap`).

Run repeatedly while `live` (keeping legacy in step for the reverse shadow and a quick rollback)
and once more by the rollback itself. Which rows: every top-level row whose `updated_at` is at or after `live_since`, plus every
aggregate the outbox recorded an event for since then (a write that forgot to bump `updated_at`
is still found). A record is a conflict, reported and left alone, when the legacy document
changed after the version the new side last synced from it (legacy `updatedAt`, read through the
mapping, is newer than the row's `src_updated_at`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, select

from rps_port.timeutil import ensure_utc


@dataclass
class ReverseSyncReport:
    executed: bool
    written: list[str] = field(default_factory=list)  # "collection/id"
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verb = "written" if self.executed else "would write"
        return (f"{len(self.written)} {verb}, {len(self.unchanged)} already equal, "
                f"{len(self.conflicts)} conflict(s), {len(self.errors)} error(s)")

    def to_json(self) -> dict[str, Any]:
        return {"executed": self.executed, "written": self.written, "unchanged": self.unchanged,
                "conflicts": self.conflicts, "errors": self.errors, "summary": self.summary()}


def _aggregate_names(collection: str, table: str) -> set[str]:
    names = {collection, table, collection.rstrip("s"), table.rstrip("s")}
    return names | {n.capitalize() for n in names}


def changed_ids(engine: Engine, mapping: Any, since: datetime | None) -> dict[str, list[str]]:
    """Top-level ids per collection written on the new side since `since` (updated_at or outbox)."""
    from rps_port.domain.registry import load_metadata
    from rps_port.outbox.models import OutboxEvent

    tables = load_metadata().tables
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        outbox: dict[str, set[str]] = {}
        q = select(OutboxEvent.aggregatetype, OutboxEvent.aggregateid)
        if since is not None:
            q = q.where(OutboxEvent.created_at >= since)
        for agg, agg_id in conn.execute(q):
            outbox.setdefault(agg, set()).add(agg_id)
        for name in mapping.order():
            coll = mapping.collection(name)
            t: Table = tables[coll.table]
            q = select(t.c.id)
            if since is not None:
                q = q.where(t.c.updated_at >= since)
            ids = set(conn.scalars(q))
            for agg in _aggregate_names(name, coll.table):
                ids |= outbox.get(agg, set())
            out[name] = sorted(ids)
    return out


def _rows(engine: Engine, mapping: Any, collection: str, record_id: str) -> tuple[dict | None, dict[str, list[dict]]]:
    from rps_port.domain.registry import load_metadata

    tables = load_metadata().tables
    coll = mapping.collection(collection)
    with engine.connect() as conn:
        parent = conn.execute(select(tables[coll.table]).where(tables[coll.table].c.id == record_id)).mappings().first()
        children: dict[str, list[dict]] = {}
        for child in coll.children:
            ct = tables[child.spec.table]
            rows = conn.execute(select(ct).where(ct.c[child.spec.parent_key] == record_id)).mappings().all()
            children[child.spec.table] = [dict(r) for r in rows]
    return (dict(parent) if parent else None), children


def _legacy_version(mapping: Any, collection: str, doc: dict[str, Any]) -> datetime | None:
    try:
        row = mapping.map_document(collection, doc).row
    except Exception:
        return None
    value = row.get("src_updated_at") or row.get("updated_at")
    return ensure_utc(value) if value else None


def _norm(value: Any) -> Any:
    if isinstance(value, datetime):
        value = ensure_utc(value)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)  # BSON dates keep milliseconds
    return value


def _comparable(row: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    return {k: _norm(v) for k, v in row.items() if k not in skip}


def _same(mapping: Any, collection: str, legacy: dict[str, Any], parent: dict[str, Any],
          children: dict[str, list[dict]]) -> bool:
    """Does the legacy document, read through the mapping, already say what the SQL rows say?"""
    try:
        mapped = mapping.map_document(collection, legacy)
    except Exception:
        return False
    skip = {"src_updated_at"}
    if _comparable(mapped.row, skip) != _comparable({k: parent.get(k) for k in mapped.row}, skip):
        return False
    for table, rows in children.items():
        mine = sorted((_comparable(r, set()) for r in rows), key=repr)
        theirs = sorted((_comparable({k: r.get(k) for k in (rows[0] if rows else r)}, set())
                         for r in mapped.children.get(table, [])), key=repr)
        if mine != theirs:
            return False
    return True


def _mark_synced(engine: Engine, mapping: Any, collection: str, parent: dict[str, Any]) -> None:
    """Make the row say what legacy now holds: its times at BSON's millisecond precision, and
    `src_updated_at` = the version written, so the next reverse sync (or ETL sync) does not take its
    own write for a change made in legacy. Guarded by `updated_at`, so a write in between wins."""
    from sqlalchemy import update

    from rps_port.domain.registry import load_metadata
    from rps_port.domain.types import UTCDateTime

    t = load_metadata().tables[mapping.collection(collection).table]
    version = parent.get("updated_at")
    if version is None:
        return
    values = {c.name: _norm(parent[c.name]) for c in t.columns
              if isinstance(c.type, UTCDateTime) and parent.get(c.name) is not None}
    values["src_updated_at"] = _norm(version)
    with engine.begin() as conn:
        conn.execute(update(t).where(t.c.id == parent["id"], t.c.updated_at == version).values(**values))


def reverse_sync(
    engine: Engine,
    mapping: Any,
    mongo_db: Any,
    since: datetime | None,
    *,
    execute: bool,
    progress: Callable[[str], None] | None = None,
) -> ReverseSyncReport:
    """Write new-side changes since `since` back to `mongo_db` (a pymongo Database); dry run unless execute."""
    report = ReverseSyncReport(executed=execute)
    for collection, ids in changed_ids(engine, mapping, since).items():
        for record_id in ids:
            key = f"{collection}/{record_id}"
            try:
                parent, children = _rows(engine, mapping, collection, record_id)
                if parent is None:
                    report.conflicts.append(f"{key}: the outbox names it but the row is gone on the new side")
                    continue
                doc = mapping.unmap(collection, parent, children)
                legacy = mongo_db[collection].find_one({"_id": doc["_id"]})
                if legacy is not None and _same(mapping, collection, legacy, parent, children):
                    report.unchanged.append(key)
                    continue
                if legacy is not None:
                    legacy_at = _legacy_version(mapping, collection, legacy)
                    synced_at = parent.get("src_updated_at")
                    if synced_at is None or legacy_at is None or legacy_at > ensure_utc(synced_at):
                        report.conflicts.append(
                            f"{key}: changed on both sides (legacy updatedAt {legacy_at.isoformat() if legacy_at else 'unknown'}"
                            f" is newer than the last sync {ensure_utc(synced_at).isoformat() if synced_at else 'never'})")
                        continue
                if execute:
                    merged = {**(legacy or {}), **doc}
                    mongo_db[collection].replace_one({"_id": doc["_id"]}, merged, upsert=True)
                    _mark_synced(engine, mapping, collection, parent)
                report.written.append(key)
                if progress:
                    progress(key)
            except Exception as exc:  # one bad record must not hide the others
                report.errors.append(f"{key}: {type(exc).__name__}: {exc}")
    return report


def mongo_database(uri: str, default_db: str = "rps") -> Any:
    import pymongo

    client = pymongo.MongoClient(uri, tz_aware=True)
    try:
        return client.get_default_database()
    except Exception:
        return client[default_db]


def build_reverse_sync(settings: Any, engine: Engine, mongo_db: Any = None):
    """A `(since, execute) -> ReverseSyncReport` for the controller, or None when it cannot run here."""
    try:
        from rps_port.etl.mapping import load_mapping
    except ImportError:
        return None
    if mongo_db is None:
        if not settings.mongo_uri:
            return None
        mongo_db = mongo_database(settings.mongo_uri)
    mapping = load_mapping(secret=settings.legacy_secret.get_secret_value())
    return lambda since, execute: reverse_sync(engine, mapping, mongo_db, since, execute=execute)
