"""In-app dual read: the client always gets the primary's answer, never later than without it."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select, update

from rps_port.legacy.emulator import create_legacy_app
from rps_port.shadow.dualread import DualRead, DualReadConfig, DualReadMiddleware

from .conftest import SECRET, load_sql, make_api


def bearer(org: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": "u", "org": org, "clients": ["*"], "projects": ["*"], "roles": ["admin"], "iss": "portal",
              "aud": "rps", "iat": now, "exp": now + 600}
    return {"Authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}


def transactions(db_url: str, n: int) -> list[tuple[str, str]]:
    from rps_port.db import make_engine
    from rps_port.domain import Transaction

    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(Transaction.id, Transaction.org_id).where(Transaction.deleted_at.is_(None))
                            .order_by(Transaction.id).limit(n)).all()
    engine.dispose()
    return [(r.id, r.org_id) for r in rows]


@pytest.fixture
def loaded(dataset: Path, sqlite_db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RPS_JWT_SECRET", SECRET)
    load_sql(dataset, sqlite_db_url)
    return sqlite_db_url


def dual_app(dataset: Path, db_url: str, rates: dict[str, float], budget: float = 2.0,
             **legacy_kwargs: Any) -> tuple[Any, Any, DualRead]:
    legacy = create_legacy_app(dataset, jwt_secret=SECRET, **legacy_kwargs)
    dual = DualRead(DualReadConfig(legacy_url="http://legacy", routes=rates, budget_seconds=budget, seed=1,
                                   min_samples=3, legacy_transport=httpx.ASGITransport(app=legacy)))
    plain = make_api(db_url)
    api = make_api(db_url)
    api.add_middleware(DualReadMiddleware, dual=dual)
    return plain, api, dual


async def test_sampled_requests_are_compared_and_answers_unchanged(dataset: Path, loaded: str) -> None:
    plain, api, dual = dual_app(dataset, loaded, {"/transactions/{id}": 1.0, "/transactions": 1.0})
    txs = transactions(loaded, 6)
    async with (httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://new") as client,
                httpx.AsyncClient(transport=httpx.ASGITransport(app=plain), base_url="http://new") as direct):
        for tx_id, org in txs:
            r = await client.get(f"/transactions/{tx_id}", headers=bearer(org))
            d = await direct.get(f"/transactions/{tx_id}", headers=bearer(org))
            assert r.status_code == d.status_code == 200 and r.json() == d.json()
        first = d.json()
        r = await client.get("/transactions", params={"limit": 100, "customer_id": first["customer_id"]},
                             headers=bearer(first["org_id"]))
        assert r.status_code == 200 and r.json()["items"]
        # a cursor page has no legacy equivalent: served, not sampled
        await client.get("/transactions", params={"cursor": "x"}, headers=bearer(txs[0][1]))
        await dual.drain()
    report = dual.report()
    assert report.source == "in-app"
    by = {e.endpoint: e for e in report.endpoints}
    assert by["GET /api/transactions/:id"].compared == 6
    assert by["GET /api/transactions"].compared == 1
    assert report.totals.mismatches == 0, report.fingerprints
    await dual.aclose()


async def test_primary_answer_wins_and_mismatch_is_recorded(dataset: Path, loaded: str) -> None:
    from rps_port.db import make_engine
    from rps_port.domain import Transaction

    (tx_id, org), *_ = transactions(loaded, 1)
    engine = make_engine(loaded)
    with engine.begin() as conn:
        amount = conn.execute(select(Transaction.amount).where(Transaction.id == tx_id)).scalar_one()
        conn.execute(update(Transaction).where(Transaction.id == tx_id)
                     .values(amount=amount + Decimal("0.01"), updated_at=Transaction.updated_at))
    engine.dispose()
    _, api, dual = dual_app(dataset, loaded, {"/transactions/{id}": 1.0})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://new") as client:
        r = await client.get(f"/transactions/{tx_id}", headers=bearer(org))
        await dual.drain()
    assert Decimal(r.json()["amount"]) == amount + Decimal("0.01")  # the primary's answer
    [fp] = dual.report().fingerprints
    assert (fp.endpoint, fp.path, fp.kind, fp.count) == ("GET /api/transactions/:id", "amount", "value_changed", 1)
    await dual.aclose()


async def test_slow_or_failing_secondary_never_delays_or_breaks_the_primary(dataset: Path, loaded: str) -> None:
    txs = transactions(loaded, 3)
    _, api, dual = dual_app(dataset, loaded, {"/transactions/{id}": 1.0}, budget=0.3, latency_ms=1500)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://new") as client:
        await client.get(f"/transactions/{txs[0][0]}", headers=bearer(txs[0][1]))  # warm up
        started = time.perf_counter()
        r = await client.get(f"/transactions/{txs[1][0]}", headers=bearer(txs[1][1]))
        elapsed = time.perf_counter() - started
        await dual.drain()
    assert r.status_code == 200 and elapsed < 1.0  # the legacy takes 1.5 s; the client did not wait for it
    report = dual.report()
    assert report.totals.errors == 2 and report.totals.mismatches == 0
    assert {e.message for e in report.errors} == {"timeout"}
    await dual.aclose()

    _, api, dual = dual_app(dataset, loaded, {"/transactions/{id}": 1.0}, error_rate=1.0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://new") as client:
        r = await client.get(f"/transactions/{txs[2][0]}", headers=bearer(txs[2][1]))
        await dual.drain()
    assert r.status_code == 200
    assert dual.secondary_errors == 1 and dual.report().totals.errors == 1
    await dual.aclose()


def test_sample_rate_and_routes() -> None:
    dual = DualRead(DualReadConfig(legacy_url="http://x", routes={"/orders/{id}": 0.25}, seed=7),
                    legacy_side=object())  # type: ignore[arg-type]
    assert dual.legacy_request("/orders", b"customer_id=abc&limit=10")[1].query == {
        "page": "1", "customer": "abc", "limit": "10"}
    assert dual.legacy_request("/orders", b"client_id=abc") is None
    assert dual.legacy_request("/usage", b"") is None
    hits = sum(dual.sample("/orders/{id}") for _ in range(4000))
    assert 800 < hits < 1200 and not any(dual.sample("/orders") for _ in range(100))
    with pytest.raises(ValueError, match="between 0 and 1"):
        DualRead(DualReadConfig(legacy_url="http://x", routes={"/orders": 2.0}), legacy_side=object())  # type: ignore[arg-type]


async def test_dual_read_outcomes_reach_the_apps_metrics(dataset: Path, loaded: str) -> None:
    from rps_port.observability.metrics import render_latest

    def count(outcome: str) -> float:
        text = render_latest()[0].decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith("rps_shadow_comparisons_total{") and 'endpoint="GET /api/customers/:id"' in line \
                    and f'outcome="{outcome}"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    before = count("match")
    _, api, dual = dual_app(dataset, loaded, {"/customers/{id}": 1.0})
    from rps_port.legacy.emulator_store import iter_documents, ref

    doc = next(d for d in iter_documents(dataset, "customers") if ref(d.get("org")) and not d.get("deletedAt"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://new") as client:
        r = await client.get(f"/customers/{ref(doc['_id'])}", headers=bearer(ref(doc["org"])))
        await dual.drain()
    assert r.status_code == 200
    assert dual.report().totals.matches == 1
    assert count("match") == before + 1
    await dual.aclose()
