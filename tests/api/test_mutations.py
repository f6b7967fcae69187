"""Mutations: orders (state machine), refunds (never above what remains), customers CRUD; outbox events."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import select

from rps_port.domain import Customer, Order, Transaction
from rps_port.outbox.models import OutboxEvent

from .conftest import auth, make_token


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def events(engine, event_type=None):
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        stmt = select(OutboxEvent).order_by(OutboxEvent.seq)
        if event_type:
            stmt = stmt.where(OutboxEvent.type == event_type)
        return list(s.scalars(stmt))


ORDER = {
    "currency": "EUR",
    "items": [
        {"sku": "A", "name": "Widget", "quantity": 3, "unit_price": "19.99", "tax_rate": "0.19"},
        {"sku": "B", "name": "Gadget", "quantity": 1, "unit_price": "5.00", "discount": "0.50"},
    ],
    "notes": "leave at the door ✓",
}


async def test_place_order_computes_totals_and_emits_order_placed(client, tenants, sync_engine):
    a, _ = tenants
    headers = auth(make_token(a.org), **key())
    r = await client.post("/orders", json={**ORDER, "customer_id": a.customers[0]}, headers=headers)
    assert r.status_code == 201, r.text
    o = r.json()
    # 3 x 19.99 = 59.97, tax 11.3943 -> 11.39; 5.00 - 0.50 = 4.50
    assert (o["subtotal"], o["tax"], o["total"]) == ("64.47", "11.39", "75.86")
    assert o["status"] == "placed" and o["placed_at"] and o["number"].startswith("RPS-")
    assert (o["org_id"], o["client_id"], o["project_id"]) == (a.org, a.client, a.project)  # the customer's
    assert r.headers["location"] == f"orders/{o['id']}"
    [ev] = events(sync_engine, "order.placed")
    assert ev.aggregateid == o["id"] and ev.org_id == a.org and ev.client_id == a.client
    assert ev.payload["total"] == "75.86" and ev.payload["customer_id"] == a.customers[0]
    assert "email" not in ev.payload and "phone" not in ev.payload
    # stored exactly
    from sqlalchemy.orm import Session

    with Session(sync_engine) as s:
        assert s.get(Order, o["id"]).total == Decimal("75.86")


async def test_order_validation_names_fields(client, tenants):
    a, _ = tenants
    headers = auth(make_token(a.org), **key())
    bad = {**ORDER, "customer_id": a.customers[0], "items": [{**ORDER["items"][0], "quantity": 0}]}
    r = await client.post("/orders", json=bad, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.items.0.quantity"
    r = await client.post("/orders", json={**ORDER, "customer_id": "f" * 24}, headers=auth(make_token(a.org), **key()))
    assert r.status_code == 422 and r.json()["field"] == "customer_id"
    cents = {**ORDER, "customer_id": a.customers[0], "items": [{**ORDER["items"][0], "unit_price": "1.001"}]}
    r = await client.post("/orders", json=cents, headers=auth(make_token(a.org), **key()))
    assert r.status_code == 422 and r.json()["field"] == "items.0.unit_price"
    r = await client.post("/orders", content=b"{not json", headers={**headers, "content-type": "application/json"})
    assert r.status_code == 422
    r = await client.post("/orders", json={**ORDER, "customer_id": a.customers[0]}, headers=auth(make_token(a.org)))
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["detail"]


async def test_order_state_machine(client, tenants, sync_engine):
    a, _ = tenants
    headers = auth(make_token(a.org))
    placed = a.orders[1]  # seeded placed
    r = await client.patch(f"/orders/{placed}", json={"status": "fulfilled"}, headers=headers)
    assert r.status_code == 409 and r.json()["current_status"] == "placed"
    r = await client.patch(f"/orders/{placed}", json={"status": "paid"}, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "paid"
    assert [e.type for e in events(sync_engine)] == ["order.status_changed", "order.paid"]
    assert events(sync_engine)[0].payload["previous_status"] == "placed"
    r = await client.patch(f"/orders/{placed}", json={"status": "fulfilled"}, headers=headers)
    assert r.status_code == 200
    r = await client.patch(f"/orders/{placed}", json={"status": "draft"}, headers=headers)
    assert r.status_code == 409
    r = await client.patch(f"/orders/{placed}", json={"status": "shipped"}, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.status"


async def test_refunds_never_exceed_remaining(client, tenants, sync_engine):
    a, _ = tenants
    finance = make_token(a.org, ["finance"])
    charge = a.charges[0]  # 23.80 EUR
    r = await client.post(f"/transactions/{charge}/refund", json={"amount": "10.00"}, headers=auth(finance, **key()))
    assert r.status_code == 201, r.text
    refund = r.json()
    assert (refund["kind"], refund["status"], refund["amount"], refund["parent_id"]) == ("refund", "succeeded", "10.00", charge)
    r = await client.post(f"/transactions/{charge}/refund", json={"amount": "13.81"}, headers=auth(finance, **key()))
    assert r.status_code == 422 and r.json()["remaining"] == "13.80" and r.json()["field"] == "amount"
    r = await client.post(f"/transactions/{charge}/refund", json={}, headers=auth(finance, **key()))
    assert r.status_code == 201 and r.json()["amount"] == "13.80"
    r = await client.post(f"/transactions/{charge}/refund", json={"amount": "0.01"}, headers=auth(finance, **key()))
    assert r.status_code == 409
    r = await client.post(f"/transactions/{refund['id']}/refund", json={}, headers=auth(finance, **key()))
    assert r.status_code == 409  # a refund is not refundable
    evs = events(sync_engine, "transaction.refunded")
    assert [e.payload["amount"] for e in evs] == ["10.00", "13.80"]
    assert evs[-1].payload["remaining"] == "0.00"
    viewer = make_token(a.org, ["support"])
    r = await client.post(f"/transactions/{charge}/refund", json={}, headers=auth(viewer, **key()))
    assert r.status_code == 403 and r.json()["missing_permission"] == "transactions:refund"


async def test_legacy_refunds_of_the_order_count(client, tenants, sync_engine):
    a, _ = tenants
    from sqlalchemy.orm import Session

    with Session(sync_engine) as s, s.begin():
        charge = s.get(Transaction, a.charges[0])
        s.add(Transaction(org_id=a.org, client_id=charge.client_id, order_id=charge.order_id, kind="refund",
                          status="succeeded", amount=Decimal("20.00"), currency="EUR", provider="stripe"))
    r = await client.post(f"/transactions/{a.charges[0]}/refund", json={"amount": "4.00"},
                          headers=auth(make_token(a.org, ["finance"]), **key()))
    assert r.status_code == 422 and r.json()["remaining"] == "3.80"


async def test_customers_crud_with_soft_delete(client, tenants, sync_engine):
    a, _ = tenants
    headers = auth(make_token(a.org, clients=[a.client]))
    body = {"name": "Ada", "email": "ada@example.com", "phone": "+44 20 7946 0000", "tax_id": "GB1",
            "addresses": [{"kind": "shipping", "line1": "1 Way", "city": "London", "country": "GB"}]}
    r = await client.post("/customers", json=body, headers=headers)
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["client_id"] == a.client and c["org_id"] == a.org and c["addresses"][0]["city"] == "London"
    r = await client.patch(f"/customers/{c['id']}", json={"status": "blocked", "tags": ["vip"]}, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "blocked" and r.json()["tags"] == ["vip"]
    # a blocked customer cannot order
    r = await client.post("/orders", json={**ORDER, "customer_id": c["id"]}, headers={**headers, **key()})
    assert r.status_code == 409
    r = await client.delete(f"/customers/{c['id']}", headers=headers)
    assert r.status_code == 204 and r.content == b""
    assert (await client.get(f"/customers/{c['id']}", headers=headers)).status_code == 404
    assert (await client.delete(f"/customers/{c['id']}", headers=headers)).status_code == 404
    from sqlalchemy.orm import Session

    with Session(sync_engine) as s:
        assert s.get(Customer, c["id"]).deleted_at is not None  # soft
    assert [e.type for e in events(sync_engine)] == ["customer.created", "customer.updated", "customer.deleted"]
    assert events(sync_engine)[1].payload["changed_fields"] == ["status", "tags"]
    support = make_token(a.org, ["support"])
    r = await client.post("/customers", json=body, headers=auth(support))
    assert r.status_code == 403 and r.json()["missing_permission"] == "customers:write"


async def test_customer_patch_null_clears_nullable_fields_only(client, tenants):
    a, _ = tenants
    headers = auth(make_token(a.org))
    r = await client.patch(f"/customers/{a.customers[0]}", json={"phone": None, "email": None}, headers=headers)
    assert r.status_code == 200 and r.json()["phone"] is None and r.json()["email"] is None
    assert r.json()["name"] == "Customer 0"
    r = await client.patch(f"/customers/{a.customers[0]}", json={"name": None}, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.name"
