"""Orders: list, detail, place (POST creates a `placed` order), status transitions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rps_port.domain import ORDER_TRANSITIONS, Customer, Order, OrderItem
from rps_port.domain.schemas import OrderCreate, OrderItemCreate
from rps_port.money import minor_units, quantize
from rps_port.services.errors import Conflict, InvalidInput, NotFound
from rps_port.services.events import order_event
from rps_port.services.pagination import PageResult, page_of, paginate
from rps_port.services.tenancy import TenantScope
from rps_port.timeutil import utcnow

NUMBER_ATTEMPTS = 5
# Money columns are NUMERIC(20,4): 16 integer digits. Orders stop well short of that.
MAX_ORDER_TOTAL = Decimal("1e15")


@dataclass
class OrderFilter:
    status: str | None = None
    customer_id: str | None = None
    client_id: str | None = None
    project_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


async def list_orders(
    session: AsyncSession, scope: TenantScope, flt: OrderFilter, *, cursor: str | None, limit: int,
    descending: bool = True,
) -> PageResult:
    scope.check_filter(flt.client_id, flt.project_id)
    stmt = scope.apply(select(Order), Order)
    for column, value in (
        (Order.status, flt.status),
        (Order.customer_id, flt.customer_id),
        (Order.client_id, flt.client_id),
        (Order.project_id, flt.project_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if flt.created_after:
        stmt = stmt.where(Order.created_at >= flt.created_after)
    if flt.created_before:
        stmt = stmt.where(Order.created_at < flt.created_before)
    rows = (await session.scalars(paginate(stmt, Order, cursor, limit, descending=descending))).all()
    return page_of(rows, limit, descending=descending)


async def get_order(session: AsyncSession, scope: TenantScope, order_id: str, *, lock: bool = False) -> Order:
    stmt = scope.apply(select(Order), Order).where(Order.id == order_id)
    order = await session.scalar(stmt.with_for_update() if lock else stmt)
    if order is None:
        raise NotFound(f"order {order_id} not found", field="id")
    return order


@dataclass(frozen=True)
class Totals:
    lines: list[Decimal]
    subtotal: Decimal
    tax: Decimal
    total: Decimal


def compute_totals(items: list[OrderItemCreate], currency: str) -> Totals:
    """Line = quantity x unit price - discount (per line); tax = line x tax rate; each rounded to the
    currency's minor unit, half-even, and the order's totals are the sums of the rounded parts."""
    lines, taxes = [], []
    places = minor_units(currency)
    for i, item in enumerate(items):
        for name in ("unit_price", "discount"):
            value = getattr(item, name)
            if value is not None and value != quantize(value, currency):
                raise InvalidInput(
                    f"items[{i}].{name} has more decimals than {currency} allows ({places})",
                    field=f"items.{i}.{name}",
                )
        gross = item.unit_price * item.quantity
        line = gross - (item.discount or Decimal(0))
        if line < 0:
            raise InvalidInput(f"items[{i}].discount exceeds the line amount {gross}", field=f"items.{i}.discount")
        line = quantize(line, currency)
        lines.append(line)
        taxes.append(quantize(line * (item.tax_rate or Decimal(0)), currency))
    subtotal, tax = sum(lines, Decimal(0)), sum(taxes, Decimal(0))
    if subtotal + tax >= MAX_ORDER_TOTAL:
        raise InvalidInput(f"the order total must be below {MAX_ORDER_TOTAL:f}", field="items")
    return Totals(lines, quantize(subtotal, currency), quantize(tax, currency), quantize(subtotal + tax, currency))


async def _lock_numbering(session: AsyncSession, org_id: str) -> None:
    """Serialise number allocation per org until commit. PostgreSQL: a transaction-scoped advisory
    lock keyed by the org; SQLite: the API's transactions are BEGIN IMMEDIATE, already serial."""
    if session.sync_session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(int(org_id[:15], 16))))


async def _next_number(session: AsyncSession, org_id: str, year: int) -> str:
    prefix = f"RPS-{year}-"
    last = await session.scalar(
        select(func.max(Order.number)).where(Order.org_id == org_id, Order.number.like(f"{prefix}%"))
    )
    seq = int(last[len(prefix):]) + 1 if last and last[len(prefix):].isdigit() else 1
    return f"{prefix}{seq:06d}"


async def place_order(session: AsyncSession, scope: TenantScope, data: OrderCreate) -> Order:
    """Create an order in status `placed` (the legacy POST's behaviour) and emit `order.placed`."""
    customer = await session.scalar(
        scope.apply(select(Customer), Customer).where(Customer.id == data.customer_id)
    )
    if customer is None:
        raise InvalidInput(f"customer {data.customer_id} not found", field="customer_id")
    if customer.status == "blocked":
        raise Conflict(f"customer {customer.id} is blocked", field="customer_id")
    attribution = scope.stamp(
        data.client_id if data.client_id is not None else customer.client_id,
        data.project_id if data.project_id is not None else customer.project_id,
    )
    totals = compute_totals(data.items, data.currency)
    now = utcnow()
    await _lock_numbering(session, scope.org_id)
    for attempt in range(NUMBER_ATTEMPTS):
        order = Order(
            **attribution,
            number=await _next_number(session, scope.org_id, now.year),
            customer_id=customer.id,
            status="placed",
            currency=data.currency,
            subtotal=totals.subtotal,
            tax=totals.tax,
            total=totals.total,
            shipping_address=data.shipping_address.model_dump() if data.shipping_address else None,
            placed_at=now,
            notes=data.notes,
            created_at=now,
            updated_at=now,
        )
        order.items = [
            OrderItem(position=i, **attribution, **item.model_dump()) for i, item in enumerate(data.items)
        ]
        try:
            async with session.begin_nested():
                session.add(order)
        except IntegrityError:
            if attempt == NUMBER_ATTEMPTS - 1:
                raise Conflict("could not allocate an order number; retry") from None
            continue
        break
    order_event(session, order, "order.placed")
    return order


async def change_status(session: AsyncSession, scope: TenantScope, order_id: str, status: str) -> Order:
    """Move an order along ORDER_TRANSITIONS; anything else is a Conflict (409)."""
    order = await get_order(session, scope, order_id, lock=True)
    previous = order.status
    if status not in ORDER_TRANSITIONS.get(previous, frozenset()):
        allowed = sorted(ORDER_TRANSITIONS.get(previous, frozenset()))
        raise Conflict(
            f"order {order.id} cannot go from {previous} to {status}",
            field="status",
            current_status=previous,
            allowed=allowed,
        )
    now = utcnow()
    order.status = status
    order.updated_at = now
    if status == "placed":
        order.placed_at = now
    await session.flush()
    order_event(session, order, "order.status_changed", previous_status=previous)
    if status in ("placed", "paid"):
        order_event(session, order, f"order.{status}")
    return order
