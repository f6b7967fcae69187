"""`record_usage()`: the public way to put a billable event in the ledger (idempotent by id)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from rps_port.timeutil import ensure_utc, utcnow
from rps_port.usage.models import UsageEvent
from rps_port.usage.pricing import Catalog, load_catalog


def _catalog(catalog: Catalog | None) -> Catalog:
    if catalog is not None:
        return catalog
    from rps_port.config import get_settings

    path = get_settings().pricing_catalog
    return load_catalog(str(path) if path else None)


def record_usage(
    session: Session,
    *,
    idempotency_id: str,
    type: str,
    quantity: Decimal | int | str,
    unit: str,
    org_id: str,
    client_id: str | None = None,
    project_id: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    country: str | None = None,
    occurred_at: datetime | None = None,
    meta: dict[str, Any] | None = None,
    catalog: Catalog | None = None,
) -> UsageEvent:
    """Record usage in the caller's transaction, priced from the catalog in force at `occurred_at`.

    The same `idempotency_id` recorded twice yields the first row, unchanged. An event the catalog
    has no price for is recorded with `cost` None (reports show it as unpriced, never as zero).
    """
    if isinstance(quantity, float):
        raise TypeError(f"usage {idempotency_id}: quantity must be Decimal or int, not float")
    qty = Decimal(quantity)
    if qty < 0:
        raise ValueError(f"usage {idempotency_id}: quantity must not be negative")
    existing = session.get(UsageEvent, idempotency_id)
    if existing is not None:
        return existing
    when = ensure_utc(occurred_at) if occurred_at else utcnow()
    cat = _catalog(catalog)
    quote = cat.quote(type, unit, qty, when, provider=provider, model=model, country=country)
    row = UsageEvent(
        id=idempotency_id,
        type=type,
        quantity=qty,
        unit=unit,
        provider=provider,
        model=model,
        country=country,
        org_id=org_id,
        client_id=client_id,
        project_id=project_id,
        occurred_at=when,
        recorded_at=utcnow(),
        unit_price=quote.unit_price if quote else None,
        cost=quote.cost if quote else None,
        currency=quote.currency if quote else None,
        pricing_version=quote.version if quote else cat.version,
        meta=meta,
    )
    session.add(row)
    session.flush()
    return row
