"""The PostgreSQL writer COPYs in binary when every column type has a binary form; what it stores must
be what text COPY (and the ORM) stores, and the server must still enforce the column modifiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from psycopg import DataError as PgDataError
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DataError

from rps_port.db import make_engine
from rps_port.domain.types import Money, UTCDateTime
from rps_port.etl import load_mapping
from rps_port.etl.loader import PostgresWriter, TableCodec
from rps_port.etl.tables import mapping_tables


def _table(meta: MetaData, name: str, *extra: Column) -> Table:
    return Table(
        name, meta,
        Column("id", String(24), primary_key=True),
        Column("label", String(8)),
        Column("body", Text),
        Column("amount", Money),
        Column("ratio", Numeric(10, 3)),
        Column("n", Integer),
        Column("big", BigInteger),
        Column("small", SmallInteger),
        Column("flag", Boolean),
        Column("doc", JSONB),
        Column("plain_json", JSON),
        Column("at", UTCDateTime),
        *extra,
    )


ROWS = [
    {"id": "a" * 24, "label": "ünïcødé", "body": 'tab\there\nnewline \\ back "quote"', "amount": Decimal("12.3456"),
     "ratio": Decimal("-0.5"), "n": -2_147_483_648, "big": 9_007_199_254_740_993, "small": 32767, "flag": True,
     "doc": {"a": [1, "x", None], "nested": {"é": 1.5}}, "plain_json": ["k", {"v": 2}],
     "at": datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC)},
    {"id": "b" * 24, "label": "", "body": "", "amount": Decimal(0), "ratio": Decimal("1E+2"), "n": 0, "big": -1,
     "small": -32768, "flag": False, "doc": {}, "plain_json": "just a string",
     "at": datetime(1970, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))},
    {"id": "c" * 24},  # every other column NULL
]


def _load(url: str, table: Table, rows: list[dict]) -> list[tuple]:
    engine = make_engine(url)
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        PostgresWriter(conn).insert(table, rows)
    with engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(select(table).order_by(table.c.id))]
    engine.dispose()
    return got


def test_binary_copy_stores_what_text_copy_stores(pg_url: str) -> None:
    meta = MetaData()
    binary = _table(meta, "copy_binary")
    text = _table(meta, "copy_text", Column("day", Date))  # DATE has no binary form here: text COPY
    assert TableCodec(binary, make_engine(pg_url).dialect).copy_types is not None
    assert TableCodec(text, make_engine(pg_url).dialect).copy_types is None
    via_binary = _load(pg_url, binary, ROWS)
    via_text = [r[:-1] for r in _load(pg_url, text, ROWS)]
    assert via_binary == via_text
    first = dict(zip(binary.c.keys(), via_binary[0], strict=True))
    assert first["amount"] == Decimal("12.3456") and first["big"] == 9_007_199_254_740_993
    assert first["at"] == ROWS[0]["at"] and first["doc"] == ROWS[0]["doc"] and first["body"] == ROWS[0]["body"]
    second = dict(zip(binary.c.keys(), via_binary[1], strict=True))
    assert second["at"] == datetime(1970, 1, 1, tzinfo=UTC) and second["ratio"] == Decimal(100)


@pytest.mark.parametrize(("column", "value"), [("label", "nine char"), ("ratio", Decimal("12345678.5")),
                                               ("amount", Decimal("1E+17"))])
def test_the_server_still_enforces_length_and_precision(pg_url: str, column: str, value: object) -> None:
    table = _table(MetaData(), "copy_limits")
    with pytest.raises((DataError, PgDataError)):
        _load(pg_url, table, [{"id": "d" * 24, column: value}])


def test_every_table_of_the_default_mapping_copies_in_binary(pg_url: str) -> None:
    dialect = make_engine(pg_url).dialect
    for name, table in mapping_tables(load_mapping()).items():
        assert TableCodec(table, dialect).copy_types is not None, name
