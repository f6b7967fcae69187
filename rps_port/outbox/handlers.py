"""The legacy side effects (CONTRACT.md): order placed/paid -> email + SMS, failed charge -> SMS.

A handler reads what it needs from SQL (contact details never travel in events), calls one
provider with an idempotency key stable per (handler, event), and returns the usage to record;
the worker commits that usage with the processed-message row in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from rps_port.domain.customers import Customer
from rps_port.domain.orders import Order
from rps_port.domain.transactions import Transaction
from rps_port.integrations.sendgrid import Email, SendGridClient
from rps_port.integrations.twilio import SMS, TwilioClient
from rps_port.money import quantize
from rps_port.usage.pricing import Catalog
from rps_port.usage.segments import sms_segments


class Unprocessable(Exception):
    """The event cannot be handled as is (e.g. its order is gone): dead-lettered with this reason."""


@dataclass
class UsageItem:
    type: str
    quantity: Decimal
    unit: str
    provider: str
    country: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    outcome: str  # "sent" or "skipped: <why>"
    provider_ref: str | None = None
    usage: list[UsageItem] = field(default_factory=list)


@dataclass
class Context:
    engine: Engine
    sendgrid: SendGridClient | None
    twilio: TwilioClient | None
    catalog: Catalog


class Handler(Protocol):
    name: str
    event_types: frozenset[str]

    def __call__(self, message: dict[str, Any], ctx: Context) -> Outcome: ...


def idempotency_key(handler: str, event_id: str) -> str:
    return f"rps-{handler}-{event_id}"


@dataclass
class _Facts:
    customer: Customer
    subject: str
    text: str
    sms: str


def _order_facts(session: Session, message: dict[str, Any]) -> _Facts:
    payload = message.get("payload") or {}
    order_id = payload.get("order_id") or message["aggregateid"]
    order = session.get(Order, order_id)
    if order is None:
        raise Unprocessable(f"order {order_id} not found")
    customer = session.get(Customer, order.customer_id) if order.customer_id else None
    if customer is None:
        raise Unprocessable(f"customer {order.customer_id} of order {order_id} not found")
    state = "placed" if message["type"] == "order.placed" else "paid"
    total = f"{quantize(order.total, order.currency)} {order.currency}"
    subject = f"Your order {order.number} is {state}"
    text = f"Hello {customer.name},\n\nyour order {order.number} ({total}) is {state}.\n\nThank you."
    sms = f"Order {order.number} {state}: {total}."
    return _Facts(customer, subject, text, sms)


def _failed_charge_facts(session: Session, message: dict[str, Any]) -> _Facts:
    payload = message.get("payload") or {}
    tx_id = payload.get("transaction_id") or message["aggregateid"]
    tx = session.get(Transaction, tx_id)
    if tx is None:
        raise Unprocessable(f"transaction {tx_id} not found")
    customer = session.get(Customer, tx.customer_id) if tx.customer_id else None
    if customer is None:
        raise Unprocessable(f"customer {tx.customer_id} of transaction {tx_id} not found")
    sms = f"Your payment of {quantize(tx.amount, tx.currency)} {tx.currency} failed. Please update your payment details."
    return _Facts(customer, "", "", sms)


def _facts(ctx: Context, message: dict[str, Any]) -> _Facts:
    with Session(ctx.engine) as session:
        if message["type"] == "transaction.failed":
            return _failed_charge_facts(session, message)
        return _order_facts(session, message)


class OrderEmail:
    name = "order-email"
    event_types = frozenset({"order.placed", "order.paid"})

    def __call__(self, message: dict[str, Any], ctx: Context) -> Outcome:
        facts = _facts(ctx, message)
        email = (facts.customer.email or "").strip()
        if not email:
            return Outcome("skipped: customer has no email")
        if ctx.sendgrid is None:
            return Outcome("skipped: SendGrid is not configured")
        ref = ctx.sendgrid.send(
            Email(
                to=email,
                to_name=facts.customer.name,
                subject=facts.subject,
                text=facts.text,
                idempotency_key=idempotency_key(self.name, message["id"]),
                categories=[message["type"]],
            )
        )
        return Outcome("sent", ref, [UsageItem("email.sent", Decimal(1), "email", "sendgrid")])


class _SMSHandler:
    name = ""
    event_types: frozenset[str] = frozenset()

    def __call__(self, message: dict[str, Any], ctx: Context) -> Outcome:
        facts = _facts(ctx, message)
        phone = "".join((facts.customer.phone or "").split())
        if not phone:
            return Outcome("skipped: customer has no phone")
        if ctx.twilio is None:
            return Outcome("skipped: Twilio is not configured")
        sent = ctx.twilio.send(SMS(to=phone, body=facts.sms, idempotency_key=idempotency_key(self.name, message["id"])))
        segments = sms_segments(facts.sms)
        usage = UsageItem(
            "sms.sent",
            Decimal(segments),
            "segment",
            "twilio",
            country=ctx.catalog.country_of(phone),
            meta={"provider_segments": sent.num_segments} if sent.num_segments is not None else {},
        )
        return Outcome("sent", sent.sid, [usage])


class OrderSMS(_SMSHandler):
    name = "order-sms"
    event_types = frozenset({"order.placed", "order.paid"})


class FailedChargeSMS(_SMSHandler):
    name = "failed-charge-sms"
    event_types = frozenset({"transaction.failed"})


def default_handlers() -> list[Handler]:
    return [OrderEmail(), OrderSMS(), FailedChargeSMS()]
