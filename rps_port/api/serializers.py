"""Rows to API resources. `apply_field_policy` is the single place where fields are shaped per
caller: PII (customer `tax_id`, `phone`; card `last4`) will be masked there by role (issue 6)."""

from __future__ import annotations

from decimal import Decimal
from typing import TypeVar

from pydantic import BaseModel

from rps_port.auth.principal import Principal
from rps_port.domain import Customer, Order, Transaction
from rps_port.domain.schemas import CardOut, CustomerOut, OrderOut, TransactionOut
from rps_port.money import quantize

M = TypeVar("M", bound=BaseModel)

# Resource -> PII fields (dotted for nested ones).
PII_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {
    CustomerOut: ("tax_id", "phone"),
    TransactionOut: ("card.last4",),
}


def apply_field_policy(resource: M, principal: Principal | None) -> M:
    """Shape a resource for this caller: PII masked unless the policy grants `pii:read` (issue 6)."""
    paths = PII_FIELDS.get(type(resource))
    if not paths or principal is None:
        return resource
    from rps_port.crypto.masking import mask_model, principal_permissions

    return mask_model(resource, paths, principal_permissions(principal))


def customer_out(customer: Customer, principal: Principal | None) -> CustomerOut:
    return apply_field_policy(CustomerOut.model_validate(customer), principal)


def money(value: Decimal, currency: str) -> Decimal:
    """The same digits from every backend (NUMERIC(20,4) pads, TEXT does not): the currency's minor
    unit, or more places only where the stored value really has them."""
    rounded = quantize(value, currency)
    return rounded if rounded == value else value.normalize()


def rate(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.normalize()


def order_out(order: Order, principal: Principal | None) -> OrderOut:
    out = OrderOut.model_validate(order)
    cur = order.currency
    out.subtotal, out.tax, out.total = money(out.subtotal, cur), money(out.tax, cur), money(out.total, cur)
    for item in out.items:
        item.unit_price = money(item.unit_price, cur)
        item.discount = None if item.discount is None else money(item.discount, cur)
        item.tax_rate = rate(item.tax_rate)
    return apply_field_policy(out, principal)


def transaction_out(tx: Transaction, principal: Principal | None) -> TransactionOut:
    card = None
    if any(v is not None for v in (tx.card_brand, tx.card_last4, tx.card_exp_month, tx.card_exp_year)):
        card = CardOut(brand=tx.card_brand, last4=tx.card_last4, exp_month=tx.card_exp_month, exp_year=tx.card_exp_year)
    out = TransactionOut(
        id=tx.id,
        org_id=tx.org_id,
        client_id=tx.client_id,
        project_id=tx.project_id,
        created_at=tx.created_at,
        updated_at=tx.updated_at,
        deleted_at=tx.deleted_at,
        order_id=tx.order_id,
        customer_id=tx.customer_id,
        parent_id=tx.parent_id,
        kind=tx.kind,
        status=tx.status,
        amount=money(tx.amount, tx.currency),
        currency=tx.currency,
        provider=tx.provider,
        provider_ref=tx.provider_ref,
        card=card,
        failure_code=tx.failure_code,
        processed_at=tx.processed_at,
    )
    return apply_field_policy(out, principal)
