"""The services work without HTTP: an AsyncSession, a TenantScope, and the caller's commit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session

from rps_port.api.context import make_api_engine
from rps_port.domain import Transaction
from rps_port.domain.schemas import OrderCreate
from rps_port.ids import new_object_id
from rps_port.outbox.models import OutboxEvent
from rps_port.services import Conflict, TenantScope
from rps_port.services import orders as order_svc
from rps_port.services import transactions as tx_svc
from rps_port.services.orders import compute_totals

from .conftest import seed_tenant


async def test_charge_outcome_failed_emits_transaction_failed(db_url, sync_engine):
    t = seed_tenant(db_url, customers=1, orders_per_customer=1)
    with Session(sync_engine, expire_on_commit=False) as s, s.begin():
        pending = Transaction(id=new_object_id(), org_id=t.org, client_id=t.client, order_id=t.orders[0], customer_id=t.customers[0],
                              kind="charge", status="pending", amount=Decimal("23.80"), currency="EUR", provider="stripe")
        s.add(pending)
    engine = make_api_engine(db_url)
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            scope = TenantScope(t.org)
            tx = await tx_svc.record_outcome(session, scope, pending.id, "failed", failure_code="card_declined")
            await session.commit()
            assert (tx.status, tx.failure_code) == ("failed", "card_declined")
            with pytest.raises(Conflict):
                await tx_svc.record_outcome(session, scope, pending.id, "succeeded")
            await session.rollback()
            # another org's scope does not find it
            other = TenantScope("f" * 24)
            with pytest.raises(Exception, match="not found"):
                await tx_svc.record_outcome(session, other, pending.id, "failed")
    finally:
        await engine.dispose()
    with Session(sync_engine) as s:
        [event] = s.scalars(select(OutboxEvent).where(OutboxEvent.type == "transaction.failed")).all()
    assert event.payload["failure_code"] == "card_declined" and event.payload["amount"] == "23.80"
    assert event.org_id == t.org and event.aggregateid == pending.id


async def test_place_order_without_http(db_url):
    t = seed_tenant(db_url, customers=1, orders_per_customer=0)
    engine = make_api_engine(db_url)
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            data = OrderCreate(customer_id=t.customers[0], currency="JPY",
                               items=[{"sku": "A", "name": "Tea", "quantity": 3, "unit_price": "333", "tax_rate": "0.1"}])
            order = await order_svc.place_order(session, TenantScope(t.org), data)
            await session.commit()
            assert (order.subtotal, order.tax, order.total) == (Decimal(999), Decimal(100), Decimal(1099))
            assert order.number.startswith("RPS-") and order.status == "placed"
    finally:
        await engine.dispose()


def test_totals_round_half_even_per_line():
    items = OrderCreate(customer_id="a" * 24, currency="EUR", items=[
        {"sku": "A", "name": "x", "quantity": 1, "unit_price": "0.25", "tax_rate": "0.1"},  # tax 0.025 -> 0.02
        {"sku": "B", "name": "y", "quantity": 1, "unit_price": "0.35", "tax_rate": "0.1"},  # tax 0.035 -> 0.04
    ]).items
    totals = compute_totals(items, "EUR")
    assert (totals.subtotal, totals.tax, totals.total) == (Decimal("0.60"), Decimal("0.06"), Decimal("0.66"))
