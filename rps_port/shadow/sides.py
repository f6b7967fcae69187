"""The three ways a record reaches canonical form, and the lookups cause labelling needs.

- `LegacySide`: a legacy answer (Mongoose JSON) -> the ETL mapping's rows -> canonical form.
- `new_record`: a new API answer -> the API schema -> canonical form (in `canonical`).
- `SqlSide`: the row (and child rows) in the target database -> canonical form.
- `SourceSide`: the raw source document (dump directory or live MongoDB) -> mapping -> canonical.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from rps_port.shadow.canonical import CanonicalError, Rows, canonical_from_rows

COLLECTION_TABLES = {"customers": "customers", "orders": "orders", "transactions": "transactions"}


class Unmappable(Exception):
    """The mapping rejects or skips this legacy record (the ETL would not load it either)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LegacySide:
    """Canonicalises legacy documents through the ETL mapping (the one statement of legacy quirks)."""

    CACHE_SIZE = 4096

    def __init__(self, mapping: Any | None = None, *, mapping_path: str | Path | None = None,
                 secret: str | None = None) -> None:
        if mapping is None:
            from rps_port.etl.mapping import load_mapping

            mapping = load_mapping(mapping_path, secret=secret)
        self.mapping = mapping
        self._cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def rows(self, collection: str, doc: dict[str, Any]) -> Rows:
        from rps_port.etl.errors import RejectError
        from rps_port.etl.mapping import SkipDocument

        try:
            mapped = self.mapping.map_document(collection, doc)
        except RejectError as exc:
            raise Unmappable(f"mapping rejects it: {exc.field_path or '-'}: {exc.reason}") from None
        except SkipDocument as exc:
            raise Unmappable(f"mapping skips it: {exc.reason}") from None
        return Rows(mapped.row, mapped.children)

    def canonical(self, collection: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Canonical form of a legacy document; repeated documents (the noise read, the race re-read,
        a record in a detail and a list answer) come from a small cache keyed by their JSON text."""
        import json

        try:
            key = (collection, json.dumps(doc, sort_keys=True, default=lambda o: f"{type(o).__name__}:{o}"))
        except (TypeError, ValueError):
            return canonical_from_rows(collection, self.rows(collection, doc), side="legacy")
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
        if hit is not None:
            if isinstance(hit, Exception):
                raise hit
            return hit
        try:
            value: Any = canonical_from_rows(collection, self.rows(collection, doc), side="legacy")
        except (Unmappable, CanonicalError) as exc:
            value = exc
        with self._lock:
            self._cache[key] = value
            if len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
        if isinstance(value, Exception):
            raise value
        return value


class SqlSide:
    """Reads one record (parent row and child rows) from the target database."""

    def __init__(self, url: str) -> None:
        from rps_port.db import make_engine

        self.engine = make_engine(url)

    def rows(self, collection: str, record_id: str) -> Rows | None:
        from sqlalchemy import select

        from rps_port.domain.registry import load_metadata
        from rps_port.shadow.canonical import _model_for

        load_metadata()
        model = _model_for(collection)
        table = model.__table__
        with self.engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.id == record_id)).mappings().first()
            if row is None:
                return None
            children: dict[str, list[dict[str, Any]]] = {}
            from sqlalchemy import inspect

            for rel in inspect(model).relationships:
                child = rel.mapper.local_table
                fk = next(iter(rel.remote_side)) if rel.remote_side else None
                if fk is None:
                    continue
                found = conn.execute(select(child).where(fk == record_id)).mappings().all()
                children[child.name] = [dict(r) for r in found]
        return Rows(dict(row), children)

    def canonical(self, collection: str, record_id: str) -> dict[str, Any] | None:
        rows = self.rows(collection, record_id)
        return None if rows is None else canonical_from_rows(collection, rows, side="sql")

    def close(self) -> None:
        self.engine.dispose()


class SourceSide:
    """Finds a raw legacy document by id: in a dump/export directory or a live MongoDB."""

    def __init__(self, source: str, legacy: LegacySide) -> None:
        self.source = source
        self.legacy = legacy
        self._index: dict[str, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._mongo = None
        if source.startswith(("mongodb://", "mongodb+srv://")):
            import pymongo

            client = pymongo.MongoClient(source, tz_aware=True)
            self._mongo = client.get_default_database(default="rps")

    def document(self, collection: str, record_id: str) -> dict[str, Any] | None:
        if self._mongo is not None:
            from bson import ObjectId

            coll = self._mongo[collection]
            return coll.find_one({"_id": ObjectId(record_id)}) or coll.find_one({"_id": record_id})
        with self._lock:
            if collection not in self._index:
                from rps_port.legacy.emulator_store import iter_documents, ref

                self._index[collection] = {
                    rid: doc for doc in iter_documents(self.source, collection) if (rid := ref(doc.get("_id")))
                }
        return self._index[collection].get(record_id)

    def canonical(self, collection: str, record_id: str) -> dict[str, Any] | None:
        doc = self.document(collection, record_id)
        return None if doc is None else self.legacy.canonical(collection, doc)


class CauseLabeller:
    """`data drift` when SQL differs from the source as the mapping reads it; `logic` when they agree."""

    def __init__(self, source: SourceSide, sql: SqlSide, rules: Any) -> None:
        self.source = source
        self.sql = sql
        self.rules = rules

    def label(self, collection: str, record_id: str) -> tuple[str, str | None]:
        from rps_port.shadow.compare import diff

        try:
            src = self.source.canonical(collection, record_id)
            row = self.sql.canonical(collection, record_id)
        except (CanonicalError, Unmappable) as exc:
            return "unknown", str(exc)
        except Exception as exc:  # noqa: BLE001 - a lookup failure must not stop the run
            return "unknown", f"lookup failed: {type(exc).__name__}"
        if src is None and row is None:
            return "unknown", "neither the source nor SQL has this record"
        if src is None:
            return "data drift", "in SQL but not in the source"
        if row is None:
            return "data drift", "in the source but not in SQL (run sync / verify)"
        diffs = diff(self.rules.apply(src), self.rules.apply(row), self.rules)
        if diffs:
            paths = ", ".join(sorted({d.template for d in diffs})[:5])
            return "data drift", f"SQL differs from the source at {paths} (run sync / verify)"
        return "logic", "SQL matches the source; the new API answers differently"
