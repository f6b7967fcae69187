"""The PostgreSQL writer passes lookup keys as one array parameter; its text form must round-trip."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text

from rps_port.db import make_engine
from rps_port.etl.loader import PostgresWriter

AWKWARD = ["plain", 'quote"inside', "back\\slash", "comma,brace}{", " spaced ", "", "NULL", "ünïcødé ✓", "a\\\"b"]


def test_array_parameter_round_trips_awkward_strings_ints_and_other_types(pg_url: str) -> None:
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        for values, sql_type in ((AWKWARD, "text[]"), ([1, -2, 30000000000], "bigint[]"),
                                 ([Decimal("1.50"), Decimal("-0.01")], "numeric[]")):
            param = PostgresWriter._array(values)
            got = conn.execute(text(f"SELECT unnest(CAST(:p AS {sql_type}))"), {"p": param}).scalars().all()
            assert got == values
    assert isinstance(PostgresWriter._array(AWKWARD), str)
    assert isinstance(PostgresWriter._array([Decimal(1)]), list)  # not a string or int: psycopg's own dumper
