"""Database wiring: a savepoint inside a transaction stays inside it, on SQLite too."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from rps_port.db import make_engine
from rps_port.domain import Order


def _order(number: str) -> dict:
    return {"id": f"{int(number):024x}", "org_id": "a" * 24, "number": number, "status": "placed", "currency": "EUR",
            "subtotal": Decimal(1), "tax": Decimal(0), "total": Decimal(1)}


def test_rows_written_in_a_savepoint_roll_back_with_their_transaction(db_url: str) -> None:
    # The ETL writes a batch in a SAVEPOINT and its checkpoint after it, in one transaction: a failure
    # before the commit must leave neither (pysqlite's legacy mode would have committed the batch).
    engine = make_engine(db_url)
    table = Order.__table__
    try:
        with engine.connect() as conn, conn.begin() as outer:
            with conn.begin_nested():
                conn.execute(table.insert(), [_order("1"), _order("2")])
            outer.rollback()
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0
        with engine.connect() as conn, conn.begin(), conn.begin_nested():
            conn.execute(table.insert(), [_order("3")])
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 1
    finally:
        engine.dispose()
