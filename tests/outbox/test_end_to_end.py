"""Done when: placing and paying an order through the API leads, via outbox, relay and worker, to
one email and one SMS per event that the provider specs accept, and usage rows with the right cost."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest
from api.conftest import AUDIENCE, ISSUER, SECRET, auth, make_token, seed_tenant
from sqlalchemy import select
from sqlalchemy.orm import Session

from outbox.conftest import make_worker
from rps_port.api.app import create_app
from rps_port.config import load_settings
from rps_port.db import make_engine
from rps_port.outbox.brokers.inprocess import InProcessBroker
from rps_port.outbox.brokers.redis_streams import RedisStreamsBroker
from rps_port.outbox.models import OutboxEvent
from rps_port.outbox.relay import Relay
from rps_port.usage.models import UsageEvent


@pytest.fixture(params=["inprocess", "redis"])
def broker(request):
    if request.param == "inprocess":
        return InProcessBroker()
    return RedisStreamsBroker(request.getfixturevalue("redis_url"), stream=f"e2e-{uuid.uuid4().hex[:6]}")


async def test_place_and_pay_through_the_api(db_url, broker, fake_sendgrid, fake_twilio):
    tenant = seed_tenant(db_url, customers=1, orders_per_customer=0)
    settings = load_settings(database_url=db_url, jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    app = create_app(settings)
    def headers():
        return auth(make_token(tenant.org), **{"Idempotency-Key": str(uuid.uuid4())})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        placed = await client.post("/orders", headers=headers(), json={
            "customer_id": tenant.customers[0], "currency": "USD",
            "items": [{"sku": "A", "name": "Widget", "quantity": 2, "unit_price": "9.99"}]})
        assert placed.status_code == 201, placed.text
        order = placed.json()
        paid = await client.patch(f"/orders/{order['id']}", json={"status": "paid"}, headers=headers())
        assert paid.status_code == 200, paid.text
    await app.state.rps_context.aclose()

    engine = make_engine(db_url)
    relay, worker = Relay(engine, broker), make_worker(engine, broker, fake_sendgrid, fake_twilio)
    relay.drain()
    while worker.run_once(wait_seconds=0.2):
        pass
    relay.drain()  # nothing left, and a second pass sends nothing more
    while worker.run_once(wait_seconds=0.2):
        pass

    with Session(engine) as s:
        events = {e.type: e.id for e in s.scalars(select(OutboxEvent).where(
            OutboxEvent.aggregateid == order["id"], OutboxEvent.type.in_(["order.placed", "order.paid"])))}
        usage = list(s.scalars(select(UsageEvent).order_by(UsageEvent.id)))
        unpublished = s.scalars(select(OutboxEvent.type).where(OutboxEvent.published_at.is_(None))).all()
    engine.dispose()
    assert set(events) == {"order.placed", "order.paid"} and unpublished == []
    # Exactly one email and one SMS per event, each accepted by the provider's own spec.
    assert fake_sendgrid.contract_violations == [] and fake_twilio.contract_violations == []
    assert sorted(r.json()["personalizations"][0]["custom_args"]["idempotency_key"] for r in fake_sendgrid.requests) == \
        sorted(f"rps-order-email-{eid}" for eid in events.values())
    assert sorted(r.headers["i-twilio-idempotency-token"] for r in fake_twilio.requests) == \
        sorted(f"rps-order-sms-{eid}" for eid in events.values())
    subjects = sorted(r.json()["subject"] for r in fake_sendgrid.requests)
    assert subjects == [f"Your order {order['number']} is paid", f"Your order {order['number']} is placed"]
    assert all(r.json()["personalizations"][0]["to"][0]["email"] == "c0@example.com" for r in fake_sendgrid.requests)
    assert all(r.form()["To"] == "+15551234567" and "19.98 USD" in r.form()["Body"] for r in fake_twilio.requests)
    # Usage: 2 emails at 0.00035 and 2 one-segment US SMS at 0.0083, attributed to the order's org/client/project.
    assert [(u.type, u.quantity, u.cost) for u in usage] == [
        ("email.sent", 1, Decimal("0.00035")), ("email.sent", 1, Decimal("0.00035")),
        ("sms.sent", 1, Decimal("0.0083")), ("sms.sent", 1, Decimal("0.0083"))]
    assert {(u.org_id, u.client_id, u.project_id) for u in usage} == {(tenant.org, tenant.client, tenant.project)}
    assert sum(u.cost for u in usage) == Decimal("0.0173")
