"""Rows are bound by one generated function per table; it must store exactly what the types' own
bind processing stores, including where a type lets it skip the call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from rps_port.domain.orders import Order
from rps_port.etl.loader import TableCodec

TABLE = Order.__table__
ROWS = [
    {"id": "a" * 24, "subtotal": Decimal("12.30"), "created_at": datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)},
    # not the common case: an int amount, a naive time, a time in another zone
    {"id": "b" * 24, "subtotal": 12, "created_at": datetime(2024, 1, 2, 3, 4, 5)},
    {"id": "c" * 24, "subtotal": None, "created_at": datetime(2024, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))},
]


@pytest.mark.parametrize("dialect", [postgresql.psycopg.dialect(), sqlite.pysqlite.dialect()], ids=["postgresql", "sqlite"])
def test_generated_bind_equals_the_types_own_processing(dialect) -> None:
    codec = TableCodec(TABLE, dialect)
    for row in ROWS:
        bound = dict(zip(codec.names, codec.bind(row), strict=True))
        for name in ("subtotal", "created_at"):
            proc = TABLE.c[name].type._cached_bind_processor(dialect)
            want = None if row[name] is None else proc(row[name])
            assert bound[name] == want and type(bound[name]) is type(want), (name, row[name])


def test_on_postgresql_the_common_case_binds_as_itself() -> None:
    codec = TableCodec(TABLE, postgresql.psycopg.dialect())
    row = ROWS[0]
    bound = dict(zip(codec.names, codec.bind(row), strict=True))
    assert bound["subtotal"] is row["subtotal"] and bound["created_at"] is row["created_at"]


@pytest.mark.parametrize("dialect", [postgresql.psycopg.dialect(), sqlite.pysqlite.dialect()], ids=["postgresql", "sqlite"])
def test_key_of_binds_like_bind_value_without_defaults(dialect) -> None:
    codec = TableCodec(TABLE, dialect)
    names = ["subtotal", "created_at", "number"]
    for row in ROWS:
        assert codec.key_of(names)(row) == tuple(codec.bind_value(n, row.get(n)) for n in names)
    assert codec.key_of(names) is codec.key_of(tuple(names))  # compiled once per column list
    assert codec.key_of(["created_at"])({}) == (None,)  # a missing column is None, not its default
    assert dict(zip(codec.names, codec.bind({}), strict=True))["created_at"] is not None  # bind applies it


def test_writers_of_one_engine_share_codecs_and_release_them_with_it(tmp_path) -> None:
    import gc
    import weakref

    from sqlalchemy import create_engine

    from rps_port.etl import loader

    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        codec = loader.writer_for(conn).codec(TABLE)
        assert loader.writer_for(conn).codec(TABLE) is codec  # a writer per batch, one codec per engine
    with create_engine(f"sqlite:///{tmp_path / 'y.db'}").connect() as conn:
        assert loader.writer_for(conn).codec(TABLE) is not codec
    engine.dispose()
    alive = weakref.ref(engine)
    del engine, conn, codec
    gc.collect()
    assert alive() is None  # the cache did not keep the engine (and its codecs) alive
