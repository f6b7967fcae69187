"""Portal-shaped data and tokens for the hardening tests (direct inserts through the domain models)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import jwt

from rps_port.db import make_engine, session_scope
from rps_port.domain import Customer, Order, OrderItem, Transaction
from rps_port.ids import new_object_id
from rps_port.timeutil import utcnow

SECRET = "hardening-test-secret-0123456789abcdef"


def make_token(org: str, sub: str = "user-1", roles: tuple[str, ...] = ("admin",), secret: str = SECRET) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub, "org": org, "roles": list(roles), "clients": ["*"], "projects": ["*"],
        "iss": "portal", "aud": "rps", "iat": now, "exp": now + 3600,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer(org: str, sub: str = "user-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(org, sub)}"}


@dataclass
class OrgData:
    org: str
    client: str
    project: str
    customers: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    charges: list[str] = field(default_factory=list)


def seed(url: str, *, orgs: int = 1, customers: int = 2, orders_per_customer: int = 2) -> list[OrgData]:
    """Each paid order has a succeeded charge (refundable); amounts are exact Decimals."""
    out = []
    engine = make_engine(url)
    base = utcnow() - timedelta(days=1)
    n = 0
    try:
        with session_scope(engine) as s:
            for _ in range(orgs):
                d = OrgData(org=new_object_id(), client=new_object_id(), project=new_object_id())
                attr = {"org_id": d.org, "client_id": d.client, "project_id": d.project}
                for ci in range(customers):
                    c = Customer(id=new_object_id(), name=f"Customer {ci}", status="active",
                                 marketing_opt_in=False, tags=[], created_at=base, updated_at=base, **attr)
                    s.add(c)
                    d.customers.append(c.id)
                    for _oi in range(orders_per_customer):
                        n += 1
                        o = Order(id=new_object_id(), number=f"RPS-2025-{n:06d}", customer_id=c.id, status="paid",
                                  currency="EUR", subtotal=Decimal("20.00"), tax=Decimal("3.80"),
                                  total=Decimal("23.80"), placed_at=base, created_at=base + timedelta(seconds=n),
                                  updated_at=base, **attr)
                        o.items = [OrderItem(position=0, sku="SKU-1", name="Thing", quantity=2,
                                             unit_price=Decimal("10.00"), tax_rate=Decimal("0.19"), **attr)]
                        s.add(o)
                        d.orders.append(o.id)
                        tx = Transaction(id=new_object_id(), order_id=o.id, customer_id=c.id, kind="charge",
                                         status="succeeded", amount=Decimal("23.80"), currency="EUR",
                                         provider="stripe", provider_ref=f"ch_{o.id}", processed_at=base,
                                         created_at=base + timedelta(seconds=n), updated_at=base, **attr)
                        s.add(tx)
                        d.charges.append(tx.id)
                out.append(d)
    finally:
        engine.dispose()
    return out
