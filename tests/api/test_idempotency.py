"""Idempotency-Key semantics (draft-ietf-httpapi-idempotency-key-header) and concurrency."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rps_port.api.idempotency import fingerprint
from rps_port.api.idempotency_models import IdempotencyKey
from rps_port.domain import Order
from rps_port.outbox.models import OutboxEvent
from rps_port.timeutil import utcnow

from .conftest import auth, make_token
from .test_mutations import ORDER


def count(engine, model, *where) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


async def test_replay_conflict_and_mismatch(client, tenants, sync_engine):
    a, _ = tenants
    body = {**ORDER, "customer_id": a.customers[0]}
    headers = auth(make_token(a.org), **{"Idempotency-Key": "order-1"})
    first = await client.post("/orders", json=body, headers=headers)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    again = await client.post("/orders", json=body, headers=headers)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() and again.headers["location"] == first.headers["location"]
    assert count(sync_engine, Order, Order.org_id == a.org) == len(a.orders) + 1
    assert count(sync_engine, OutboxEvent, OutboxEvent.type == "order.placed") == 1
    # same key, other payload
    other = await client.post("/orders", json={**body, "notes": "different"}, headers=headers)
    assert other.status_code == 422 and other.headers["content-type"] == "application/problem+json"
    # keys are per principal: another user's identical key is another operation
    headers2 = auth(make_token(a.org, sub="user-2"), **{"Idempotency-Key": "order-1"})
    assert "idempotent-replayed" not in (await client.post("/orders", json=body, headers=headers2)).headers
    assert count(sync_engine, Order, Order.org_id == a.org) == len(a.orders) + 2


async def test_in_flight_key_is_409_and_expired_key_runs_again(client, tenants, sync_engine):
    a, _ = tenants
    body = {**ORDER, "customer_id": a.customers[0]}
    raw = json.dumps(body).encode()
    now = utcnow()
    with Session(sync_engine) as s, s.begin():
        s.add(IdempotencyKey(org_id=a.org, principal="user-1", key="busy", fingerprint=fingerprint("POST", "/orders", raw),
                             state="in_progress", created_at=now, expires_at=now + timedelta(hours=24)))
        s.add(IdempotencyKey(org_id=a.org, principal="user-1", key="old", fingerprint="x" * 64, state="completed",
                             response_status=201, response_body={"stale": True}, created_at=now - timedelta(hours=25),
                             expires_at=now - timedelta(hours=1)))
    headers = auth(make_token(a.org), **{"content-type": "application/json"})
    r = await client.post("/orders", content=raw, headers={**headers, "Idempotency-Key": "busy"})
    assert r.status_code == 409 and r.headers["retry-after"] == "1"
    r = await client.post("/orders", content=raw, headers={**headers, "Idempotency-Key": "old"})
    assert r.status_code == 201 and "stale" not in r.json()
    r = await client.post("/orders", content=raw, headers={**headers, "Idempotency-Key": "bad key with spaces"})
    assert r.status_code == 400


async def test_failed_request_releases_its_key(client, tenants, sync_engine):
    a, _ = tenants
    headers = auth(make_token(a.org, ["finance"]), **{"Idempotency-Key": "refund-1"})
    r = await client.post(f"/transactions/{a.charges[0]}/refund", json={"amount": "99.00"}, headers=headers)
    assert r.status_code == 422
    assert count(sync_engine, IdempotencyKey) == 0
    r = await client.post(f"/transactions/{a.charges[0]}/refund", json={"amount": "9.00"}, headers=headers)
    assert r.status_code == 201


async def test_twenty_concurrent_identical_posts_make_one_order(client, tenants, sync_engine):
    a, _ = tenants
    body = {**ORDER, "customer_id": a.customers[0]}
    headers = auth(make_token(a.org), **{"Idempotency-Key": "burst"})
    responses = await asyncio.gather(*(client.post("/orders", json=body, headers=headers) for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    assert count(sync_engine, Order, Order.org_id == a.org) == len(a.orders) + 1
    assert count(sync_engine, OutboxEvent, OutboxEvent.type == "order.placed") == 1
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    # after the burst every retry replays the one order
    r = await client.post("/orders", json=body, headers=headers)
    assert r.headers["idempotent-replayed"] == "true" and r.json()["id"] in created


async def test_concurrent_distinct_orders_get_distinct_numbers(client, tenants, sync_engine):
    a, _ = tenants
    body = {**ORDER, "customer_id": a.customers[0]}
    token = make_token(a.org)
    responses = await asyncio.gather(
        *(client.post("/orders", json=body, headers=auth(token, **{"Idempotency-Key": f"k{i}"})) for i in range(8))
    )
    assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses if r.status_code != 201]
    assert len({r.json()["number"] for r in responses}) == 8


async def test_purge_expired_keys(client, tenants, sync_engine, db_url):
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from rps_port.api.context import make_api_engine
    from rps_port.api.idempotency import purge_expired

    a, _ = tenants
    now = utcnow()
    with Session(sync_engine) as s, s.begin():
        for key, expires in (("old", now - timedelta(minutes=1)), ("fresh", now + timedelta(hours=1))):
            s.add(IdempotencyKey(org_id=a.org, principal="u", key=key, fingerprint="f" * 64, state="completed",
                                 response_status=201, created_at=now, expires_at=expires))
    engine = make_api_engine(db_url)
    try:
        async with async_sessionmaker(engine)() as session:
            assert await purge_expired(session) == 1
    finally:
        await engine.dispose()
    assert count(sync_engine, IdempotencyKey) == 1
