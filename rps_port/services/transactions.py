"""Transactions: list, detail, refunds (never above what remains refundable), charge outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from rps_port.domain import Transaction
from rps_port.domain.schemas import RefundCreate
from rps_port.money import minor_units, quantize
from rps_port.services.errors import Conflict, InvalidInput, NotFound
from rps_port.services.events import transaction_event
from rps_port.services.pagination import PageResult, page_of, paginate
from rps_port.services.tenancy import TenantScope
from rps_port.timeutil import utcnow


@dataclass
class TransactionFilter:
    kind: str | None = None
    status: str | None = None
    order_id: str | None = None
    customer_id: str | None = None
    client_id: str | None = None
    project_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


async def list_transactions(
    session: AsyncSession, scope: TenantScope, flt: TransactionFilter, *, cursor: str | None, limit: int,
    descending: bool = True,
) -> PageResult:
    scope.check_filter(flt.client_id, flt.project_id)
    stmt = scope.apply(select(Transaction), Transaction)
    for column, value in (
        (Transaction.kind, flt.kind),
        (Transaction.status, flt.status),
        (Transaction.order_id, flt.order_id),
        (Transaction.customer_id, flt.customer_id),
        (Transaction.client_id, flt.client_id),
        (Transaction.project_id, flt.project_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if flt.created_after:
        stmt = stmt.where(Transaction.created_at >= flt.created_after)
    if flt.created_before:
        stmt = stmt.where(Transaction.created_at < flt.created_before)
    rows = (await session.scalars(paginate(stmt, Transaction, cursor, limit, descending=descending))).all()
    return page_of(rows, limit, descending=descending)


async def get_transaction(
    session: AsyncSession, scope: TenantScope, transaction_id: str, *, lock: bool = False
) -> Transaction:
    stmt = scope.apply(select(Transaction), Transaction).where(Transaction.id == transaction_id)
    tx = await session.scalar(stmt.with_for_update() if lock else stmt)
    if tx is None:
        raise NotFound(f"transaction {transaction_id} not found", field="id")
    return tx


async def refunded_amount(session: AsyncSession, scope: TenantScope, charge: Transaction) -> Decimal:
    """Succeeded refunds of this charge: those naming it as parent, plus legacy refunds (no parent)
    of the same order, which the legacy app could only tie to the order. Counting the latter
    against every charge of the order errs towards refusing, never towards over-refunding."""
    belongs = Transaction.parent_id == charge.id
    if charge.order_id is not None:
        belongs = or_(belongs, and_(Transaction.parent_id.is_(None), Transaction.order_id == charge.order_id))
    org_wide = TenantScope(scope.org_id)  # refunds by any client of the org reduce what remains
    stmt = org_wide.apply(select(Transaction.amount), Transaction).where(
        Transaction.kind == "refund", Transaction.status == "succeeded", belongs
    )
    amounts = (await session.scalars(stmt)).all()  # summed in Python: Money is TEXT on SQLite
    return sum(amounts, Decimal(0))


async def refund(session: AsyncSession, scope: TenantScope, charge_id: str, data: RefundCreate) -> Transaction:
    """Create a succeeded refund of a succeeded charge and emit `transaction.refunded`."""
    charge = await get_transaction(session, scope, charge_id, lock=True)
    if charge.kind != "charge" or charge.status != "succeeded":
        raise Conflict(
            f"transaction {charge.id} is a {charge.status} {charge.kind}; only succeeded charges can be refunded",
            field="id",
        )
    remaining = quantize(charge.amount - await refunded_amount(session, scope, charge), charge.currency)
    if remaining <= 0:
        raise Conflict(f"transaction {charge.id} is already fully refunded", field="id", remaining="0")
    amount = data.amount if data.amount is not None else remaining
    places = minor_units(charge.currency)
    if amount != quantize(amount, charge.currency):
        raise InvalidInput(f"amount has more decimals than {charge.currency} allows ({places})", field="amount")
    if amount > remaining:
        raise InvalidInput(
            f"amount {amount} exceeds the remaining refundable amount {format(remaining, 'f')}",
            field="amount",
            remaining=format(remaining, "f"),
        )
    now = utcnow()
    refund_tx = Transaction(
        org_id=charge.org_id,
        client_id=charge.client_id,
        project_id=charge.project_id,
        order_id=charge.order_id,
        customer_id=charge.customer_id,
        parent_id=charge.id,
        kind="refund",
        status="succeeded",
        amount=amount,
        currency=charge.currency,
        provider=charge.provider,
        processed_at=now,
        created_at=now,
        updated_at=now,
        extra={"reason": data.reason} if data.reason else None,
    )
    session.add(refund_tx)
    await session.flush()
    transaction_event(session, refund_tx, "transaction.refunded", remaining=format(remaining - amount, "f"))
    return refund_tx


async def record_outcome(
    session: AsyncSession,
    scope: TenantScope,
    transaction_id: str,
    status: str,
    *,
    failure_code: str | None = None,
) -> Transaction:
    """A pending transaction's provider outcome (succeeded/failed), as a payment webhook reports it.
    Not an HTTP endpoint of the legacy API; a failed charge emits `transaction.failed`."""
    if status not in ("succeeded", "failed"):
        raise InvalidInput("status must be succeeded or failed", field="status")
    tx = await get_transaction(session, scope, transaction_id, lock=True)
    if tx.status != "pending":
        raise Conflict(f"transaction {tx.id} is {tx.status}, not pending", field="status")
    now = utcnow()
    tx.status, tx.failure_code, tx.processed_at, tx.updated_at = status, failure_code, now, now
    await session.flush()
    if status == "failed":
        transaction_event(session, tx, "transaction.failed")
    return tx
