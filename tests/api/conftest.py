"""API fixtures: an app on the per-test database, tokens, and a two-org data set."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import jwt
import pytest

from rps_port.api.app import create_app
from rps_port.config import Settings, load_settings
from rps_port.db import make_engine, session_scope
from rps_port.domain import Customer, CustomerAddress, Order, OrderItem, Transaction
from rps_port.ids import new_object_id
from rps_port.timeutil import utcnow

SECRET = "test-secret-0123456789abcdef0123456789"
ISSUER, AUDIENCE = "portal", "rps"


def make_token(
    org: str,
    roles: list[str] | None = None,
    *,
    sub: str = "user-1",
    clients: list[str] | None = None,
    projects: list[str] | None = None,
    scope: str | None = None,
    secret: str = SECRET,
    **overrides: Any,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "org": org,
        "roles": roles if roles is not None else ["admin"],
        "clients": clients if clients is not None else ["*"],
        "projects": projects if projects is not None else ["*"],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }
    if scope is not None:
        claims["scope"] = scope
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, secret, algorithm="HS256")


def auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


@dataclass
class Tenant:
    org: str
    client: str
    other_client: str
    project: str
    customers: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    charges: list[str] = field(default_factory=list)
    transactions: list[str] = field(default_factory=list)


def seed_tenant(url: str, *, customers: int = 3, orders_per_customer: int = 2, start=None) -> Tenant:
    """One org with two clients: customers, placed/paid orders, a succeeded charge per paid order."""
    t = Tenant(org=new_object_id(), client=new_object_id(), other_client=new_object_id(), project=new_object_id())
    base = start or utcnow() - timedelta(days=1)
    tick = 0
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            for ci in range(customers):
                client = t.client if ci % 2 == 0 else t.other_client
                attribution = {"org_id": t.org, "client_id": client, "project_id": t.project}
                c = Customer(
                    id=new_object_id(), name=f"Customer {ci}", email=f"c{ci}@example.com", phone="+15551234567",
                    status="active", marketing_opt_in=False, tax_id="DE123", tags=["a"],
                    created_at=base + timedelta(seconds=tick), updated_at=base, **attribution,
                )
                c.addresses = [CustomerAddress(position=0, kind="billing", line1="1 Main St", city="Berlin",
                                               postal_code="10115", country="DE", **attribution)]
                s.add(c)
                t.customers.append(c.id)
                tick += 1
                for oi in range(orders_per_customer):
                    status = "paid" if oi % 2 == 0 else "placed"
                    o = Order(
                        id=new_object_id(), number=f"RPS-2025-{len(t.orders) + 1:06d}", customer_id=c.id,
                        status=status, currency="EUR", subtotal=Decimal("20.00"), tax=Decimal("3.80"),
                        total=Decimal("23.80"), placed_at=base, created_at=base + timedelta(seconds=tick),
                        updated_at=base, **attribution,
                    )
                    o.items = [
                        OrderItem(position=0, sku="SKU-1", name="Thing", quantity=2, unit_price=Decimal("10.00"),
                                  tax_rate=Decimal("0.19"), **attribution)
                    ]
                    s.add(o)
                    t.orders.append(o.id)
                    tick += 1
                    if status == "paid":
                        tx = Transaction(
                            id=new_object_id(), order_id=o.id, customer_id=c.id, kind="charge", status="succeeded",
                            amount=Decimal("23.80"), currency="EUR", provider="stripe",
                            provider_ref=f"ch_{o.id}", card_brand="visa", card_last4="4242", card_exp_month=12,
                            card_exp_year=2030, processed_at=base, created_at=base + timedelta(seconds=tick),
                            updated_at=base, **attribution,
                        )
                        s.add(tx)
                        t.charges.append(tx.id)
                        t.transactions.append(tx.id)
                        tick += 1
    finally:
        engine.dispose()
    return t


@pytest.fixture
def api_settings(db_url: str) -> Settings:
    # Functional tests, not limiter tests: the rate limit (issue 9's seam) stays out of the way.
    return load_settings(
        database_url=db_url,
        jwt_secret=SECRET,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        rate_limit="1000000/minute",
        rate_limit_org="10000000/minute",
    )


@pytest.fixture
def tenants(db_url: str) -> tuple[Tenant, Tenant]:
    return seed_tenant(db_url), seed_tenant(db_url)


@pytest.fixture
async def client(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(api_settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c
    await app.state.rps_context.aclose()


@pytest.fixture
def token_for() -> Callable[..., str]:
    return make_token


@pytest.fixture
def sync_engine(db_url: str) -> Iterator[Any]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()
