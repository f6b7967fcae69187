"""A backfill into empty tables is a bulk load: secondary indexes and parent-child foreign keys wait.

Maintaining every secondary B-tree row by row, and checking each child row's foreign key with a
query, costs the PostgreSQL server more than the COPY itself. When a job starts on empty target
tables, nobody reads them yet, so (as pg_restore and pgloader do) the load drops:

- the non-unique secondary indexes no lookup of the loader needs (unique indexes, primary keys and
  any index leading with a lookup key stay: they keep uniqueness checks and lookups cheap);
- the foreign keys from a child table to its parent, which the loader satisfies by construction
  (child rows are written in the same transaction as their parent);

and rebuilds them once the tables are loaded: a sorted index build and one validating join per
constraint, each collection's tables as soon as that collection is reconciled (while the next one
loads), the last collection's at the end.
Each dropped object is recorded in `etl_deferred_ddl` with its DDL, in the same transaction as the
drop, and removed in the same transaction as its rebuild, so a load killed at any point still knows
what to restore (the next run of the job does it at its end; `rps-port etl indexes restore` at once).

A bulk load also knows no target row existed when it started, so batches skip the per-batch
"which of these rows exist already" lookup; a row written meanwhile by someone else makes the
batch's plain INSERT fail, and the batch is then written again with every check.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, text, update

from rps_port.etl.loader import _q
from rps_port.etl.mapping import Mapping
from rps_port.etl.models import EtlDeferredDDL, EtlFlag, EtlRun
from rps_port.timeutil import utcnow

log = logging.getLogger("rps_port.etl")


@dataclass(frozen=True)
class DeferredDDL:
    table: str
    name: str
    kind: str  # index, foreign_key
    ddl: str


@dataclass
class RestoreReport:
    indexes: int = 0
    foreign_keys: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"indexes": self.indexes, "foreign_keys": self.foreign_keys, "seconds": round(self.seconds, 3),
                "errors": self.errors}

    def add(self, other: RestoreReport) -> None:
        """Fold in another rebuild's counts; seconds add up (time spent rebuilding, not wall time)."""
        self.indexes += other.indexes
        self.foreign_keys += other.foreign_keys
        self.seconds += other.seconds
        self.errors += other.errors


def lookup_keys(mapping: Mapping, collections: Iterable[str]) -> dict[str, list[tuple[str, ...]]]:
    """Per table, the column lists the loader, verify and sync look rows up by."""
    keys: dict[str, list[tuple[str, ...]]] = {}
    for name in collections:
        spec = mapping.collection(name).spec
        keys.setdefault(spec.table, []).append((spec.id,))
        keys[spec.table] += [tuple(rule.columns) for rule in spec.unique]
        for child in spec.children.values():
            keys.setdefault(child.table, []).append((child.parent_key,))
    return keys


def targets_empty(conn: Connection, mapping: Mapping, collections: list[str]) -> bool:
    """No row in any table the job writes, and no flag left for its collections by an earlier load."""
    for table in mapping.tables(collections):
        if conn.exec_driver_sql(f"SELECT 1 FROM {_q(table)} LIMIT 1").first() is not None:
            return False
    flags = EtlFlag.__table__
    return conn.execute(select(flags.c.record_id).where(flags.c.collection.in_(collections)).limit(1)).first() is None


_INDEXES = """
SELECT t.relname, i.relname, pg_get_indexdef(ix.indexrelid),
       ARRAY(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n)
FROM pg_index ix
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_class t ON t.oid = ix.indrelid
WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = ANY(%s)
  AND NOT ix.indisunique AND NOT ix.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid)
ORDER BY t.relname, i.relname
"""

_FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.confrelid::regclass::text,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n)
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
WHERE c.contype = 'f' AND t.relnamespace = current_schema()::regnamespace AND t.relname = ANY(%s)
ORDER BY 1, 2
"""


def deferrable(conn: Connection, mapping: Mapping, collections: list[str]) -> list[DeferredDDL]:
    """What a bulk load of `collections` may drop and rebuild (PostgreSQL only; nothing elsewhere)."""
    if conn.dialect.name != "postgresql":
        return []
    tables = mapping.tables(collections)
    keys = lookup_keys(mapping, collections)
    out = []
    for table, name, ddl, columns in conn.exec_driver_sql(_INDEXES, (tables,)).fetchall():
        columns = tuple(columns)
        if any(columns[: len(key)] == key for key in keys.get(table, ())):
            continue  # a lookup probes it
        out.append(DeferredDDL(table, name, "index", ddl))
    parents = {
        (child.table, (child.parent_key,)): mapping.collection(coll).table
        for coll in collections
        for child in mapping.collection(coll).spec.children.values()
    }
    for table, name, definition, referenced, columns in conn.exec_driver_sql(_FOREIGN_KEYS, (tables,)).fetchall():
        if parents.get((table, tuple(columns))) == referenced.strip('"'):
            out.append(DeferredDDL(table, name, "foreign_key", f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} {definition}"))
    return out


def begin(engine: Engine, mapping: Mapping, job_id: str, run_id: str, collections: list[str], resumed: bool,
          enabled: bool = True) -> tuple[bool, list[DeferredDDL]]:
    """Decide whether this run is a bulk load (a resumed run keeps its job's answer) and, for a new
    one on PostgreSQL, drop what it defers. Returns (bulk load?, what was deferred by this call)."""
    runs = EtlRun.__table__
    with engine.begin() as conn:
        if resumed:
            bulk = bool(conn.execute(
                select(runs.c.bulk_load).where(runs.c.job_id == job_id, runs.c.id != run_id, runs.c.bulk_load.is_not(None))
                .order_by(runs.c.started_at.desc()).limit(1)
            ).scalar())
        else:
            bulk = enabled and targets_empty(conn, mapping, collections)
        deferred = deferrable(conn, mapping, collections) if bulk and not resumed else []
        if deferred:
            now = utcnow()
            conn.execute(insert(EtlDeferredDDL.__table__), [
                {"name": d.name, "table_name": d.table, "kind": d.kind, "ddl": d.ddl, "job_id": job_id, "deferred_at": now}
                for d in deferred
            ])
            for d in sorted(deferred, key=lambda d: d.kind != "foreign_key"):  # constraints first
                if d.kind == "foreign_key":
                    conn.exec_driver_sql(f"ALTER TABLE {_q(d.table)} DROP CONSTRAINT {_q(d.name)}")
                else:
                    conn.exec_driver_sql(f"DROP INDEX {_q(d.name)}")
        conn.execute(update(runs).where(runs.c.id == run_id).values(bulk_load=bulk))
    if deferred:
        log.info("bulk load: %d secondary indexes and %d foreign keys deferred until the load ends",
                 sum(d.kind == "index" for d in deferred), sum(d.kind == "foreign_key" for d in deferred),
                 extra={"job_id": job_id, "run_id": run_id})
    return bulk, deferred


def pending(engine: Engine, tables: Iterable[str] | None = None) -> list[DeferredDDL]:
    table = EtlDeferredDDL.__table__
    query = select(table.c.table_name, table.c.name, table.c.kind, table.c.ddl).order_by(table.c.table_name, table.c.name)
    if tables is not None:
        query = query.where(table.c.table_name.in_(list(tables)))
    with engine.connect() as conn:
        return [DeferredDDL(*row) for row in conn.execute(query)]


def _rebuild(engine: Engine, item: DeferredDDL) -> str | None:
    """One object back, and its record gone, in one transaction; the error text if it cannot be."""
    ddl = item.ddl
    if item.kind == "index" and ddl.startswith("CREATE INDEX "):
        ddl = "CREATE INDEX IF NOT EXISTS " + ddl[len("CREATE INDEX "):]
    table = EtlDeferredDDL.__table__
    try:
        with engine.begin() as conn:
            exists = conn.exec_driver_sql(
                "SELECT 1 FROM pg_constraint WHERE conname = %s AND conrelid = CAST(%s AS regclass)",
                (item.name, _q(item.table)),
            ).first() if item.kind == "foreign_key" else None
            if exists is None:
                conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
                conn.exec_driver_sql(ddl)
            conn.execute(delete(table).where(table.c.name == item.name))
    except Exception as exc:  # noqa: BLE001 - reported with the object's name; its record stays for a retry
        return f"{item.kind} {item.name} on {item.table}: {str(exc).splitlines()[0]}"
    return None


def _analyze(engine: Engine, table: str) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql(f"ANALYZE {_q(table)}")
        conn.commit()


def restore(engine: Engine, tables: Iterable[str] | None = None, *, workers: int | None = None) -> RestoreReport:
    """Rebuild what bulk loads deferred (of `tables`, or all) on `workers` connections at once: the
    indexes, then the foreign keys (each validated by one join), then ANALYZE of the tables."""
    started = time.monotonic()
    items = pending(engine, tables)
    report = RestoreReport()
    if not items:
        return report
    with engine.connect() as conn:
        sizes = dict(conn.exec_driver_sql(
            "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname = ANY(%s)",
            (sorted({i.table for i in items}),),
        ).fetchall())
    # Largest tables first, so the builds that start last are short ones.
    indexes = sorted((i for i in items if i.kind == "index"), key=lambda i: -sizes.get(i.table, 0))
    fks = [i for i in items if i.kind == "foreign_key"]
    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 2)) as pool:
        # Each phase on the pool: the foreign keys need their tables' indexes done (a constraint's
        # lock would wait for a build anyway); ANALYZE last, on the finished tables.
        outcomes = list(pool.map(lambda item: (item, _rebuild(engine, item)), indexes))
        outcomes += list(pool.map(lambda item: (item, _rebuild(engine, item)), fks))
        list(pool.map(lambda table: _analyze(engine, table), sorted({i.table for i in items})))
    report.errors = [error for _item, error in outcomes if error]
    report.indexes = sum(1 for item, error in outcomes if item.kind == "index" and not error)
    report.foreign_keys = sum(1 for item, error in outcomes if item.kind == "foreign_key" and not error)
    report.seconds = time.monotonic() - started
    log.info("bulk load: %d indexes and %d foreign keys rebuilt in %.1f s", report.indexes, report.foreign_keys,
             report.seconds, extra={"errors": len(report.errors)})
    return report


class EarlyRestore:
    """Rebuilds a finished collection's tables while the later collections load.

    At the end of a bulk load the index builds and foreign-key checks of every table used to run in
    one go, with the loader stopped and the server's cores partly idle. A collection's tables take
    no more writes once it is reconciled (later collections only read its keys, through the indexes
    a bulk load keeps), so their rebuild starts then, on a thread of its own; the end of the load
    waits for it and rebuilds only the last tables. PostgreSQL only: nothing is deferred elsewhere,
    and an SQLite reader on another thread would contend with the loader's writes."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="etl-rebuild") if engine.dialect.name == "postgresql" else None
        self._futures: list[Any] = []

    def submit(self, tables: list[str]) -> None:
        if self._pool is not None and tables:
            self._futures.append(self._pool.submit(restore, self._engine, tables))

    def join(self) -> RestoreReport:
        """Wait for every rebuild submitted; their reports folded into one."""
        report = RestoreReport()
        try:
            for future in self._futures:
                report.add(future.result())
        finally:
            if self._pool is not None:
                self._pool.shutdown()
        return report

    def settle(self) -> None:
        """On a failed or interrupted run: let a rebuild already running finish (each object commits on
        its own), never raise over the run's own error; whatever is not rebuilt stays recorded."""
        try:
            self.join()
        except Exception as exc:  # noqa: BLE001 - the run is failing already: its own error is the one raised
            cause = getattr(exc, "orig", None) or exc  # the driver's message, not the statement SQLAlchemy appends
            log.warning("bulk load: a rebuild during the load failed (%s: %s); `rps-port etl indexes list` shows "
                        "what is left", type(cause).__name__, str(cause).splitlines()[0] if str(cause) else "")
