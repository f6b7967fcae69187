from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from rps_port.db import make_engine, session_scope
from rps_port.domain import Order, OrderItem


def test_fixture_databases_are_migrated_and_keep_money_exact(db_url: str) -> None:
    engine = make_engine(db_url)
    with session_scope(engine) as s:
        order = Order(
            org_id="a" * 24, number="RPS-2024-000001", status="placed", currency="EUR",
            subtotal=Decimal("0.10"), tax=Decimal("0.20"), total=Decimal("0.30"),
        )
        order.items.append(OrderItem(org_id="a" * 24, position=0, sku="S", name="n", quantity=1, unit_price=Decimal("0.10")))
        s.add(order)
    with session_scope(engine) as s:
        got = s.scalars(select(Order)).one()
        assert got.subtotal + got.tax == got.total == Decimal("0.30")
        assert got.created_at.tzinfo is not None
        assert got.items[0].unit_price == Decimal("0.10")
    engine.dispose()
