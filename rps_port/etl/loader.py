"""Writing rows in bulk: PostgreSQL COPY + one upsert per batch, SQLite batched executemany upserts.

Values go through each column type's own bind processing (SQLAlchemy `bind_processor`), so Money,
UTCDateTime, JSON and any TypeDecorator added later (e.g. field encryption) store exactly what the
ORM would; None is SQL NULL. Nothing here knows a column's Python type: a type may say when its
processing returns the value unchanged (`bind_unchanged`, e.g. a Decimal for Money on PostgreSQL),
and the generated bind function then tests that inline instead of calling it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Column, Connection, Table
from sqlalchemy.exc import IntegrityError

try:  # COPY runs on the raw psycopg cursor, so its errors arrive unwrapped
    from psycopg import IntegrityError as _PgIntegrityError

    INTEGRITY_ERRORS: tuple[type[Exception], ...] = (IntegrityError, _PgIntegrityError)
except ImportError:  # pragma: no cover - psycopg is a core dependency
    INTEGRITY_ERRORS = (IntegrityError,)


def constraint_of(exc: Exception) -> str:
    """The violated constraint's name (PostgreSQL says it; SQLite does not)."""
    for candidate in (exc, getattr(exc, "orig", None)):
        name = getattr(getattr(candidate, "diag", None), "constraint_name", None)
        if name:
            return name
    return "constraint"

_CHUNK = 900  # SQLite host-parameter budget per IN list (the old 999 limit, with room to spare)

# Column types whose PostgreSQL binary COPY form psycopg writes from what their bind processing
# returns (str, int, bool, Decimal, aware datetime, psycopg's Json/Jsonb wrappers), by the DDL
# name SQLAlchemy compiles (modifiers such as `(24)` stripped); the server applies the modifiers
# (length, precision) on receipt exactly as it does for text. Any other type: text COPY.
_BINARY_COPY_TYPES = {
    "VARCHAR": "varchar", "TEXT": "text", "NUMERIC": "numeric", "INTEGER": "int4", "BIGINT": "int8",
    "SMALLINT": "int2", "BOOLEAN": "bool", "JSONB": "jsonb", "JSON": "json",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
}


class TableCodec:
    """A table's columns in order, with each column type's bind processor for one dialect."""

    def __init__(self, table: Table, dialect: Any) -> None:
        self.table = table
        self.name = table.name
        self.columns: list[Column[Any]] = list(table.columns)
        self.names = [c.name for c in self.columns]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.pk = [c.name for c in table.primary_key.columns]
        procs: list[Callable[[Any], Any] | None] = [c.type._cached_bind_processor(dialect) for c in self.columns]
        self._procs = procs
        self._defaults = [self._default_of(c) for c in self.columns]
        self._dialect = dialect
        self._keys: dict[tuple[str, ...], Callable[[dict[str, Any]], tuple[Any, ...]]] = {}
        self.bind = self._compile_bind(dialect)
        self.copy_types = self._copy_types(dialect) if dialect.name == "postgresql" else None

    def _copy_types(self, dialect: Any) -> list[str] | None:
        """The PostgreSQL type of each column for a binary COPY, or None if one has no binary form here."""
        names = []
        for col in self.columns:
            ddl = col.type.compile(dialect=dialect).split("(")[0].strip()
            name = _BINARY_COPY_TYPES.get(ddl)
            if name is None:
                return None
            names.append(name)
        return names

    @staticmethod
    def _default_of(col: Column[Any]) -> Callable[[], Any] | None:
        d = col.default
        if d is None or not getattr(d, "is_scalar", False):
            if d is not None and getattr(d, "is_callable", False):
                fn = d.arg
                try:
                    return lambda: fn(None)  # SQLAlchemy wraps zero-arg callables to take a context
                except TypeError:  # pragma: no cover
                    return None
            return None
        value = d.arg
        return lambda: value

    def _compile_bind(
        self, dialect: Any, names: Sequence[str] | None = None, defaults: bool = True
    ) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
        """A row dict -> the tuple of its bound values for `names` (default: every column), as one
        generated expression: it runs once per row of every batch. With `defaults`, a missing
        non-nullable column takes its default, as an INSERT would."""
        ns: dict[str, Any] = {}
        parts = []
        for name in self.names if names is None else names:
            i = self.index[name]
            col, proc, default = self.columns[i], self._procs[i], self._defaults[i]
            if defaults and default is not None and not col.nullable:
                ns[f"d{i}"] = default
                value = f"(row[{name!r}] if {name!r} in row else d{i}())"
            else:
                value = f"get({name!r})"
            if proc is not None:
                ns[f"p{i}"] = proc
                # None stays None; so does a value the type says its processing would return unchanged
                keep = f"(v{i} := {value}) is None"
                unchanged = getattr(col.type, "bind_unchanged", None)
                same = unchanged(dialect) if unchanged is not None else None
                if same is not None:
                    condition, names_used = same
                    ns.update(names_used)
                    keep += f" or {condition.format(v=f'v{i}')}"
                value = f"(v{i} if {keep} else p{i}(v{i}))"
            parts.append(value)
        source = "def bind(row):\n    get = row.get\n    return (" + ", ".join(parts) + ",)\n"
        exec(compile(source, f"<bind {self.name}>", "exec"), ns)  # noqa: S102 - built from the table's own columns
        return ns["bind"]

    def key_of(self, names: Sequence[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
        """The bound values of `names` as a tuple (a missing column is None), for matching keys."""
        key = tuple(names)
        fn = self._keys.get(key)
        if fn is None:
            fn = self._keys[key] = self._compile_bind(self._dialect, key, defaults=False)
        return fn

    def bind_value(self, column: str, value: Any) -> Any:
        proc = self._procs[self.index[column]]
        return value if value is None or proc is None else proc(value)


# Per engine (bind processors belong to its dialect), per Table object; gone with the engine.
_CODECS: weakref.WeakKeyDictionary[Any, dict[Table, TableCodec]] = weakref.WeakKeyDictionary()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def chunks(seq: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class Writer:
    """The dialect-neutral part: lookups by id and the statements both backends share."""

    dialect_name = ""
    ph = "?"

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect

    def codec(self, table: Table) -> TableCodec:
        """The table's codec for this connection's engine, built once: a writer lives for one batch,
        and building a codec (generated bind code, COPY types) costs about a millisecond."""
        codecs = _CODECS.get(self.conn.engine)
        if codecs is None:
            codecs = _CODECS[self.conn.engine] = {}
        codec = codecs.get(table)
        if codec is None:
            codec = codecs[table] = TableCodec(table, self.dialect)
        return codec

    def select_by_ids(self, table: Table, columns: Sequence[str], key: str, ids: Sequence[Any]) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        cols = ", ".join(_q(c) for c in columns)
        for cond, params in self.id_filters(table, key, ids):
            sql = f"SELECT {cols} FROM {_q(table.name)} WHERE {cond}"
            out.extend(tuple(r) for r in self.conn.exec_driver_sql(sql, params).fetchall())
        return out

    def existing_ids(self, table: Table, ids: Iterable[str], key: str = "id") -> set[str]:
        ids = sorted(set(ids))
        if not ids:
            return set()
        return {r[0] for r in self.select_by_ids(table, [key], key, ids)}

    def delete_by(self, table: Table, key: str, ids: Sequence[Any]) -> None:
        for cond, params in self.id_filters(table, key, ids):
            self.conn.exec_driver_sql(f"DELETE FROM {_q(table.name)} WHERE {cond}", params)

    def _upsert_sql(self, table: Table, codec: TableCodec, source: str, version: str | None) -> str:
        cols = ", ".join(_q(n) for n in codec.names)
        updates = ", ".join(f"{_q(n)} = excluded.{_q(n)}" for n in codec.names if n not in codec.pk)
        guard = ""
        if version:
            t, v = _q(table.name), _q(version)
            guard = f" WHERE {t}.{v} IS NULL OR {t}.{v} <= excluded.{v}"
        conflict = ", ".join(_q(n) for n in codec.pk)
        return f"INSERT INTO {_q(table.name)} ({cols}) {source} ON CONFLICT ({conflict}) DO UPDATE SET {updates}{guard}"

    # implemented per backend
    def id_filters(self, table: Table, key: str, ids: Sequence[Any]) -> Iterable[tuple[str, tuple[Any, ...]]]:
        """`key` is one of `ids`, as (SQL condition, parameters) per statement."""
        raise NotImplementedError

    def live_holders(
        self, table: Table, columns: Sequence[str], deleted: str | None, keys: Sequence[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], str]:
        """Which live row (by id) holds each key tuple of `columns` (bound values)."""
        raise NotImplementedError

    def upsert(self, table: Table, rows: list[dict[str, Any]], version: str | None) -> None:
        raise NotImplementedError

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError


class SQLiteWriter(Writer):
    dialect_name = "sqlite"
    ph = "?"

    def _in(self, n: int) -> str:
        return "IN (" + ",".join([self.ph] * n) + ")"

    def id_filters(self, table: Table, key: str, ids: Sequence[Any]) -> Iterable[tuple[str, tuple[Any, ...]]]:
        """IN lists of at most _CHUNK host parameters."""
        for part in chunks(list(ids)):
            yield f"{_q(key)} {self._in(len(part))}", tuple(part)

    def live_holders(
        self, table: Table, columns: Sequence[str], deleted: str | None, keys: Sequence[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], str]:
        out: dict[tuple[Any, ...], str] = {}
        if not keys:
            return out
        cols = ", ".join(_q(c) for c in columns)
        live = f" AND {_q(deleted)} IS NULL" if deleted else ""
        wanted = set(keys)
        # The lookup is answered from the unique index and stays proportional to the batch, never to
        # the table; whole tuples are matched here.
        for part in chunks(sorted(wanted), 400):
            where, params = self._key_filter(columns, part)
            sql = f"SELECT id, {cols} FROM {_q(table.name)} WHERE {where}{live}"
            for row in self.conn.exec_driver_sql(sql, tuple(params)).fetchall():
                key = tuple(row[1:])
                if key in wanted:
                    out[key] = row[0]
        return out

    def _key_filter(self, columns: Sequence[str], keys: Sequence[tuple[Any, ...]]) -> tuple[str, list[Any]]:
        """An IN list and IS NOT NULL per key column (it then probes a partial unique index
        such as `... WHERE provider_ref IS NOT NULL` with both columns)."""
        conds, params = [], []
        for i, col in enumerate(columns):
            values = sorted({k[i] for k in keys})
            conds.append(f"{_q(col)} {self._in(len(values))} AND {_q(col)} IS NOT NULL")
            params.extend(values)
        return " AND ".join(conds), params

    def upsert(self, table: Table, rows: list[dict[str, Any]], version: str | None) -> None:
        if not rows:
            return
        codec = self.codec(table)
        values = "VALUES (" + ", ".join(["?"] * len(codec.names)) + ")"
        sql = self._upsert_sql(table, codec, values, version)
        self.conn.exec_driver_sql(sql, [codec.bind(r) for r in rows])

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        codec = self.codec(table)
        cols = ", ".join(_q(n) for n in codec.names)
        sql = f"INSERT INTO {_q(table.name)} ({cols}) VALUES ({', '.join(['?'] * len(codec.names))})"
        self.conn.exec_driver_sql(sql, [codec.bind(r) for r in rows])


class PostgresWriter(Writer):
    """COPY (binary where the types allow) into a temporary staging table, then one INSERT ... ON
    CONFLICT per batch; rows known to be new are copied straight into the table."""

    dialect_name = "postgresql"
    ph = "%s"

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        # psycopg prepares a statement run 5 times; a generic plan for the key lookups (planned before
        # the table's statistics catch up with a bulk load) can be a sequential scan. Plan each one.
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")

    def _raw(self) -> Any:
        return self.conn.connection.driver_connection

    def _array_type(self, table: Table, column: str) -> str:
        return table.c[column].type.compile(dialect=self.dialect) + "[]"

    @staticmethod
    def _array(values: Sequence[Any]) -> Any:
        """An array parameter as PostgreSQL's text form when every element is a string or an int (the
        keys the loader looks up): built in a few string operations, where psycopg's list dumper walks
        the list in Python (3x slower on 2,000 ids). Anything else goes as a list."""
        parts = []
        for v in values:
            kind = type(v)
            if kind is str:
                parts.append('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"')
            elif kind is int:
                parts.append(str(v))
            else:
                return list(values)
        return "{" + ",".join(parts) + "}"

    def id_filters(self, table: Table, key: str, ids: Sequence[Any]) -> Iterable[tuple[str, tuple[Any, ...]]]:
        """One array parameter, whatever the batch size: a short statement to parse and plan, probed
        through the key's index (long IN lists cost more to parse and plan than to run)."""
        if ids:
            yield f"{_q(key)} = ANY(CAST(%s AS {self._array_type(table, key)}))", (self._array(ids),)

    def select_by_ids(self, table: Table, columns: Sequence[str], key: str, ids: Sequence[Any]) -> list[tuple[Any, ...]]:
        """One probe of the key's index per id (a LATERAL subquery the planner cannot flatten, `OFFSET
        0`): the cost follows the batch, never the table. `key = ANY(...)` was planned as a sequential
        scan with a hashed filter once the ids were a few percent of the table (every row read)."""
        if not ids:
            return []
        cols = ", ".join(f"t.{_q(c)}" for c in columns)
        sql = (
            f"SELECT {cols} FROM unnest(CAST(%s AS {self._array_type(table, key)})) AS k(v) "
            f"CROSS JOIN LATERAL (SELECT * FROM {_q(table.name)} WHERE {_q(key)} = k.v OFFSET 0) AS t"
        )
        return [tuple(r) for r in self.conn.exec_driver_sql(sql, (self._array(ids),)).fetchall()]

    def live_holders(
        self, table: Table, columns: Sequence[str], deleted: str | None, keys: Sequence[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], str]:
        """One statement per batch: the keys arrive as one array per column and each is looked up by a
        correlated subquery, i.e. one probe of the (partial) unique index per key, never a scan."""
        if not keys:
            return {}
        wanted = sorted(set(keys))
        arrays = ", ".join(f"CAST(%s AS {self._array_type(table, c)})" for c in columns)
        names = [f"k{i}" for i in range(len(columns))]
        match = " AND ".join(f"t.{_q(c)} = k.{n}" for c, n in zip(columns, names, strict=True))
        live = f" AND t.{_q(deleted)} IS NULL" if deleted else ""
        sql = (
            f"SELECT {', '.join('k.' + n for n in names)}, "
            f"(SELECT t.id FROM {_q(table.name)} t WHERE {match}{live} LIMIT 1) "
            f"FROM unnest({arrays}) AS k({', '.join(names)})"
        )
        params = tuple(self._array([k[i] for k in wanted]) for i in range(len(columns)))
        return {tuple(row[:-1]): row[-1] for row in self.conn.exec_driver_sql(sql, params).fetchall() if row[-1] is not None}

    def _copy(self, target: str, codec: TableCodec, rows: Iterable[tuple[Any, ...]]) -> None:
        """Binary COPY when every column type has a binary form (half the client's formatting work and
        a quarter less of the server's parsing than text), else text COPY."""
        cols = ", ".join(_q(n) for n in codec.names)
        binary = codec.copy_types is not None
        sql = f"COPY {target} ({cols}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")
        with self._raw().cursor() as cur, cur.copy(sql) as copy:
            if binary:
                copy.set_types(codec.copy_types)
            for row in rows:
                copy.write_row(row)

    def upsert(self, table: Table, rows: list[dict[str, Any]], version: str | None) -> None:
        if not rows:
            return
        codec = self.codec(table)
        stage = _q(f"_etl_stage_{table.name}")
        # ON COMMIT DELETE ROWS empties it at every commit; IF NOT EXISTS survives a rolled-back batch.
        self.conn.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {_q(table.name)} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        self._copy(stage, codec, (codec.bind(r) for r in rows))
        cols = ", ".join(_q(n) for n in codec.names)
        self.conn.exec_driver_sql(self._upsert_sql(table, codec, f"SELECT {cols} FROM {stage}", version))
        self.conn.exec_driver_sql(f"TRUNCATE {stage}")

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        codec = self.codec(table)
        self._copy(_q(table.name), codec, (codec.bind(r) for r in rows))


def writer_for(conn: Connection) -> Writer:
    if conn.dialect.name == "sqlite":
        return SQLiteWriter(conn)
    if conn.dialect.name == "postgresql":
        return PostgresWriter(conn)
    raise ValueError(f"unsupported target database {conn.dialect.name!r} (PostgreSQL or SQLite)")
