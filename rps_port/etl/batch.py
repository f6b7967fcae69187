"""One batch of documents of one collection, end to end, inside the caller's transaction.

map -> resolve references against the target -> drop versions older than the target's ->
enforce uniqueness among live rows (a violation is a reject, never a crashed batch) -> upsert
parents -> replace their child rows -> record rejects and flags. The caller writes the checkpoint in
the same transaction and commits.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite

from rps_port.etl.errors import RejectError
from rps_port.etl.fixes import Fixes, document_text
from rps_port.etl.loader import INTEGRITY_ERRORS, Writer, _q, constraint_of
from rps_port.etl.mapping import CollectionMapping, MappedDocument, Mapping, SkipDocument, apply_references
from rps_port.etl.models import EtlFlag, EtlReject
from rps_port.timeutil import utcnow


@dataclass
class RejectRecord:
    collection: str
    record_id: str
    reason: str
    field_path: str
    message: str
    document: str

    @classmethod
    def of(cls, collection: str, exc: RejectError, doc: Any) -> RejectRecord:
        return cls(collection, exc.record_id, exc.reason, exc.field_path, exc.message, document_text(doc))


@dataclass
class BatchResult:
    loaded_ids: list[str] = field(default_factory=list)
    rejects: list[RejectRecord] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    flags: list[tuple[str, str, str | None]] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return len(self.loaded_ids)


@dataclass
class Mapped:
    """The pure half of a batch (no database): mapped documents, rejects and mapping skips."""

    docs: list[tuple[MappedDocument, Any]] = field(default_factory=list)
    rejects: list[RejectRecord] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


class BatchProcessor:
    def __init__(self, mapping: Mapping, collection: str, tables: dict[str, Table], run_id: str) -> None:
        self.mapping = mapping
        self.name = collection
        self.cm: CollectionMapping = mapping.collection(collection)
        self.tables = tables
        self.table = tables[self.cm.table]
        self.run_id = run_id
        self.secret = mapping.secret
        self.check_open_rejects = True  # set False when the target has no unresolved rejects for this collection
        # A bulk load's job began on empty tables: a batch first assumes none of its rows exists yet.
        self.bulk_load = False
        self.fixes = Fixes()  # the collection's edited documents (rps_port.etl.fixes); the caller loads them
        spec = self.cm.spec
        # A table without the version / soft-delete column (a user's own table) simply has no such guard.
        self.version = spec.version if spec.version in self.table.c else None
        self.deleted = spec.deleted if spec.deleted in self.table.c else None

    # ----------------------------------------------------------------- pure

    def map(self, docs: list[Any]) -> Mapped:
        out = Mapped()
        cm, secret = self.cm, self.secret
        for doc in docs:
            try:
                out.docs.append((cm.map(doc, secret), doc))
            except RejectError as exc:
                if (fixed := self.fixes.map(cm, doc, secret)) is not None:
                    out.docs.append(fixed)
                else:
                    out.rejects.append(RejectRecord.of(self.name, exc, doc))
            except SkipDocument as skip:
                out.skipped[skip.reason] += 1
        return out

    # ----------------------------------------------------------------- with the database

    def write(self, writer: Writer, mapped: Mapped) -> BatchResult:
        """Everything for the batch in the current transaction; on a constraint error, isolates documents.

        In a bulk load the batch is first written as new rows without asking which exist; a row someone
        wrote meanwhile fails that attempt, and the batch is written again with every check."""
        for assume_new in (True, False) if self.bulk_load else (False,):
            try:
                with writer.conn.begin_nested():
                    return self._write(writer, mapped, mapped.docs, assume_new=assume_new)
            except INTEGRITY_ERRORS:
                pass
        # A constraint the pre-checks did not foresee: load document by document, rejecting the culprits.
        result = BatchResult(rejects=list(mapped.rejects), skipped=Counter(mapped.skipped))
        for md, doc in mapped.docs:
            try:
                with writer.conn.begin_nested():
                    one = self._write(writer, Mapped(), [(md, doc)], record=False)
            except INTEGRITY_ERRORS as exc:
                constraint = constraint_of(exc)
                err = RejectError(md.record_id, constraint, "constraint_violation",
                                  f"violates {constraint} in {self.table.name}")
                result.rejects.append(RejectRecord.of(self.name, err, doc))
                continue
            result.loaded_ids += one.loaded_ids
            result.rejects += one.rejects
            result.skipped.update(one.skipped)
            result.flags += one.flags
        self._record(writer, result)
        return result

    def _write(
        self, writer: Writer, mapped: Mapped, docs: list[tuple[MappedDocument, Any]], record: bool = True,
        assume_new: bool = False,
    ) -> BatchResult:
        result = BatchResult(rejects=list(mapped.rejects), skipped=Counter(mapped.skipped))
        spec = self.cm.spec
        docs = self._resolve_references(writer, docs, result)
        if assume_new:
            any_existing = False
        else:
            docs, any_existing = self._drop_stale(writer, docs, result)
        docs = self._enforce_unique(writer, docs, result)
        rows = [md.row for md, _ in docs]
        ids = [md.row[spec.id] for md, _ in docs]
        if any_existing:
            writer.upsert(self.table, rows, self.version)
        else:
            # None of these rows exists yet (the usual first load): a straight COPY / INSERT, and no
            # children to replace. A row someone else inserts meanwhile raises IntegrityError, and the
            # per-document fallback then takes the upsert path.
            writer.insert(self.table, rows)
        for child in self.cm.children:
            table = self.tables[child.spec.table]
            if any_existing:
                writer.delete_by(table, child.spec.parent_key, ids)
            writer.insert(table, [r for md, _ in docs for r in md.children.get(child.spec.table, ())])
        result.loaded_ids = ids
        result.flags = [(md.record_id, flag, detail) for md, _ in docs for flag, detail in md.flags.items()]
        if record:
            self._record(writer, result, flags_exist=not assume_new)
        return result

    def _resolve_references(
        self, writer: Writer, docs: list[tuple[MappedDocument, Any]], result: BatchResult
    ) -> list[tuple[MappedDocument, Any]]:
        refs = self.cm.spec.references
        if not refs:
            return docs
        found: dict[str, set[str]] = {}
        for coll in {r.collection for r in refs.values()}:
            target = self.mapping.collection(coll)
            wanted = {ref.value for md, _ in docs for ref in md.references if ref.collection == coll}
            if coll == self.name:  # a self-reference may point into this very batch
                found[coll] = writer.existing_ids(self.table, wanted, target.spec.id) | {md.record_id for md, _ in docs}
            else:
                found[coll] = writer.existing_ids(self.tables[target.table], wanted, target.spec.id)
        kept = []
        for md, doc in docs:
            try:
                apply_references(md, lambda coll, value: value in found[coll])
            except RejectError as exc:
                result.rejects.append(RejectRecord.of(self.name, exc, doc))
                continue
            kept.append((md, doc))
        return kept

    def _drop_stale(
        self, writer: Writer, docs: list[tuple[MappedDocument, Any]], result: BatchResult
    ) -> tuple[list[tuple[MappedDocument, Any]], bool]:
        """Drop documents older than the target's row; also says whether any row of the batch exists yet."""
        if not docs:
            return docs, False
        version = self.version
        codec = writer.codec(self.table)
        id_col = self.cm.spec.id
        ids = [md.row[id_col] for md, _ in docs]
        if not version:
            return docs, bool(writer.existing_ids(self.table, ids, id_col))
        existing = dict(writer.select_by_ids(self.table, [id_col, version], id_col, ids))
        if not existing:
            return docs, False
        kept = []
        for md, doc in docs:
            current = existing.get(md.row[id_col])
            mine = codec.bind_value(version, md.row.get(version))
            if current is not None and mine is not None and current > mine:
                result.skipped["target_newer"] += 1
                continue
            kept.append((md, doc))
        return kept, True

    def _enforce_unique(
        self, writer: Writer, docs: list[tuple[MappedDocument, Any]], result: BatchResult
    ) -> list[tuple[MappedDocument, Any]]:
        spec = self.cm.spec
        if not spec.unique or not docs:
            return docs
        codec = writer.codec(self.table)
        batch_ids = {md.row[spec.id] for md, _ in docs}
        rejected: set[str] = set()
        for rule in spec.unique:
            keyed: dict[tuple[Any, ...], list[tuple[MappedDocument, Any]]] = {}
            key_of = codec.key_of(rule.columns)
            for md, doc in docs:
                if md.record_id in rejected:
                    continue
                if rule.live_only and self.deleted and md.row.get(self.deleted) is not None:
                    continue
                key = key_of(md.row)
                if None in key:
                    continue
                keyed.setdefault(key, []).append((md, doc))
            holders = writer.live_holders(self.table, rule.columns, self.deleted if rule.live_only else None,
                                          list(keyed))
            for key, group in keyed.items():
                holder = holders.get(key)
                if holder in batch_ids:
                    holder = None  # that row's new version is in this batch: judged below
                winner = group[0][0] if holder is None else None
                for md, doc in group:
                    if md is winner:
                        continue
                    other = holder or winner.record_id
                    err = RejectError(
                        md.record_id, "+".join(rule.columns), rule.reason,
                        f"{'+'.join(rule.columns)} already used by live {spec.table} row {other}",
                    )
                    result.rejects.append(RejectRecord.of(self.name, err, doc))
                    rejected.add(md.record_id)
        return [(md, doc) for md, doc in docs if md.record_id not in rejected]

    # ----------------------------------------------------------------- bookkeeping

    def _record(self, writer: Writer, result: BatchResult, flags_exist: bool = True) -> None:
        conn = writer.conn
        now = utcnow()
        if result.loaded_ids:
            flags = EtlFlag.__table__
            for cond, params in writer.id_filters(flags, "record_id", result.loaded_ids) if flags_exist else ():
                conn.exec_driver_sql(f"DELETE FROM {_q(flags.name)} WHERE collection = {writer.ph} AND {cond}",
                                     (self.name, *params))
            writer.insert(
                flags,
                [
                    {"collection": self.name, "record_id": rid, "flag": flag, "detail": detail, "run_id": self.run_id}
                    for rid, flag, detail in result.flags
                ],
            )
            if self.check_open_rejects:
                rejects = EtlReject.__table__
                conn.execute(
                    update(rejects)
                    .where(and_(rejects.c.collection == self.name, rejects.c.record_id.in_(bindparam("ids", expanding=True)),
                                rejects.c.resolved_at.is_(None)))
                    .values(resolved_at=now),
                    {"ids": result.loaded_ids},
                )
        if result.rejects:
            write_rejects(conn, result.rejects, self.mapping.version, self.run_id)


_REJECT_UPDATES = ("reason", "field_path", "message", "document", "mapping_version", "run_id", "last_seen_at",
                   "resolved_at")


def _reject_upsert(dialect_name: str) -> Any:
    """One statement per dialect, executed with many parameter sets: compiled once, not per batch."""
    table = EtlReject.__table__
    stmt = (postgresql if dialect_name == "postgresql" else sqlite).insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.collection, table.c.record_id],
        set_={c: getattr(stmt.excluded, c) for c in _REJECT_UPDATES},
    )


_REJECT_UPSERTS = {name: _reject_upsert(name) for name in ("postgresql", "sqlite")}


def write_rejects(conn: Connection, rejects: list[RejectRecord], mapping_version: str, run_id: str) -> None:
    now = utcnow()
    # The last occurrence of an id wins (an upsert may not touch a row twice in one statement).
    latest = {(r.collection, r.record_id): r for r in rejects}
    rows = [
        {
            "collection": r.collection,
            "record_id": r.record_id,
            "reason": r.reason,
            "field_path": r.field_path,
            "message": r.message,
            "document": r.document,
            "mapping_version": mapping_version,
            "run_id": run_id,
            "first_seen_at": now,
            "last_seen_at": now,
            "resolved_at": None,
        }
        for r in latest.values()
    ]
    conn.execute(_REJECT_UPSERTS[conn.dialect.name], rows)
