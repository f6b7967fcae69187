"""Cross-tenant suite: two orgs, each given the other's ids, every endpoint and filter: nothing leaks."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rps_port.domain import Customer, Order, Transaction
from rps_port.outbox.models import OutboxEvent

from .conftest import Tenant, auth, make_token
from .test_mutations import ORDER


def snapshot(engine, org: str):
    with Session(engine) as s:
        return (
            sorted((o.id, o.status, o.updated_at) for o in s.scalars(select(Order).where(Order.org_id == org))),
            sorted((c.id, c.name, c.status, c.deleted_at) for c in s.scalars(select(Customer).where(Customer.org_id == org))),
            s.scalar(select(func.count()).select_from(Transaction).where(Transaction.org_id == org)),
            s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.org_id == org)),
        )


def foreign_reads(b: Tenant) -> list[tuple[str, dict]]:
    reads = []
    for cid in b.customers:
        reads.append((f"/customers/{cid}", {}))
        reads.append(("/orders", {"customer_id": cid}))
        reads.append(("/transactions", {"customer_id": cid}))
    for oid in b.orders:
        reads.append((f"/orders/{oid}", {}))
        reads.append(("/transactions", {"order_id": oid}))
    for tid in b.transactions:
        reads.append((f"/transactions/{tid}", {}))
    for resource in ("/customers", "/orders", "/transactions"):
        reads.append((resource, {"client_id": b.client}))
        reads.append((resource, {"client_id": b.other_client}))
        reads.append((resource, {"project_id": b.project}))
        reads.append((resource, {}))
    return reads


async def test_no_cross_org_reads_or_writes(client, tenants, sync_engine):
    a, b = tenants
    for me, other in ((a, b), (b, a)):
        token = make_token(me.org, ["owner"])
        foreign_ids = set(other.customers + other.orders + other.transactions)
        for path, params in foreign_reads(other):
            r = await client.get(path, params=params, headers=auth(token))
            assert r.status_code in (200, 404), (path, params, r.text)
            if r.status_code == 200:
                body = r.json()
                items = body.get("items", [body])
                assert all(i["org_id"] == me.org for i in items), (path, params)
                assert not {i["id"] for i in items} & foreign_ids, (path, params)
        before = snapshot(sync_engine, other.org)
        writes = [
            ("PATCH", f"/orders/{other.orders[1]}", {"status": "paid"}),
            ("PATCH", f"/orders/{other.orders[0]}", {"status": "fulfilled"}),
            ("POST", f"/transactions/{other.charges[0]}/refund", {}),
            ("PATCH", f"/customers/{other.customers[0]}", {"name": "pwned"}),
            ("DELETE", f"/customers/{other.customers[0]}", None),
            ("POST", "/orders", {**ORDER, "customer_id": other.customers[0]}),
        ]
        for method, path, body in writes:
            headers = auth(token, **{"Idempotency-Key": str(uuid.uuid4())})
            r = await client.request(method, path, json=body, headers=headers)
            assert r.status_code in (404, 422), (method, path, r.status_code, r.text)
        assert snapshot(sync_engine, other.org) == before


async def test_client_and_project_allowance_within_an_org(client, tenants, sync_engine):
    a, _ = tenants
    mine = make_token(a.org, ["owner"], clients=[a.client], projects=[a.project])
    for resource in ("/customers", "/orders", "/transactions"):
        r = await client.get(resource, headers=auth(mine))
        assert r.status_code == 200 and r.json()["items"]
        assert {i["client_id"] for i in r.json()["items"]} == {a.client}
        r = await client.get(resource, params={"client_id": a.other_client}, headers=auth(mine))
        assert r.status_code == 403 and r.json()["field"] == "client_id"
        r = await client.get(resource, params={"project_id": "f" * 24}, headers=auth(mine))
        assert r.status_code == 403
    other_customer = a.customers[1]  # belongs to other_client
    assert (await client.get(f"/customers/{other_customer}", headers=auth(mine))).status_code == 404
    other_order = next(o for o in a.orders if o not in a.orders[:2])
    assert (await client.patch(f"/orders/{other_order}", json={"status": "cancelled"}, headers=auth(mine))).status_code == 404
    # creation is stamped with the caller's allowance; naming another client is a 403
    r = await client.post("/customers", json={"name": "X"}, headers=auth(mine))
    assert r.status_code == 201 and (r.json()["client_id"], r.json()["project_id"]) == (a.client, a.project)
    r = await client.post("/customers", json={"name": "X", "client_id": a.other_client}, headers=auth(mine))
    assert r.status_code == 403
    r = await client.post("/orders", json={**ORDER, "customer_id": a.customers[0], "project_id": "f" * 24},
                          headers=auth(mine, **{"Idempotency-Key": "p"}))
    assert r.status_code == 403
    r = await client.post("/orders", json={**ORDER, "customer_id": other_customer}, headers=auth(mine, **{"Idempotency-Key": "q"}))
    assert r.status_code == 422 and r.json()["field"] == "customer_id"
    # a caller allowed no clients at all sees nothing
    none = make_token(a.org, ["owner"], clients=[])
    assert (await client.get("/orders", headers=auth(none))).json()["items"] == []
