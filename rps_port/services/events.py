"""Domain events for the outbox, written in the caller's transaction.

Payloads carry ids, attribution and amounts (as strings); never contact details or other PII:
a worker that needs the customer's email or phone looks the customer up when it runs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from rps_port.domain import Customer, Order, Transaction
from rps_port.money import quantize
from rps_port.outbox.models import emit
from rps_port.timeutil import iso_ms


def money_str(value: Decimal, currency: str) -> str:
    """The amount in the currency's minor unit whatever the backend's scale (NUMERIC(20,4) pads)."""
    rounded = quantize(value, currency)
    return format(rounded if rounded == value else value.normalize(), "f")


def _attribution(record: Any) -> dict[str, str | None]:
    return {"org_id": record.org_id, "client_id": record.client_id, "project_id": record.project_id}


def _emit(session: AsyncSession, aggregate: str, record: Any, event_type: str, payload: dict[str, Any]) -> None:
    # `emit` only calls session.add(), which AsyncSession offers unchanged.
    emit(
        session,  # type: ignore[arg-type]
        aggregate_type=aggregate,
        aggregate_id=record.id,
        event_type=event_type,
        payload={**payload, **_attribution(record)},
        **_attribution(record),
    )


def customer_event(session: AsyncSession, customer: Customer, event_type: str, changed: list[str] | None = None) -> None:
    payload: dict[str, Any] = {"customer_id": customer.id, "status": customer.status}
    if changed is not None:
        payload["changed_fields"] = sorted(changed)
    _emit(session, "customer", customer, event_type, payload)


def order_payload(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "number": order.number,
        "customer_id": order.customer_id,
        "status": order.status,
        "currency": order.currency,
        "subtotal": money_str(order.subtotal, order.currency),
        "tax": money_str(order.tax, order.currency),
        "total": money_str(order.total, order.currency),
        "placed_at": iso_ms(order.placed_at) if order.placed_at else None,
    }


def order_event(session: AsyncSession, order: Order, event_type: str, **extra: Any) -> None:
    _emit(session, "order", order, event_type, {**order_payload(order), **extra})


def transaction_event(session: AsyncSession, tx: Transaction, event_type: str, **extra: Any) -> None:
    payload = {
        "transaction_id": tx.id,
        "order_id": tx.order_id,
        "customer_id": tx.customer_id,
        "parent_id": tx.parent_id,
        "kind": tx.kind,
        "status": tx.status,
        "amount": money_str(tx.amount, tx.currency),
        "currency": tx.currency,
        "provider": tx.provider,
        "failure_code": tx.failure_code,
    }
    _emit(session, "transaction", tx, event_type, {**payload, **extra})
