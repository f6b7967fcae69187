"""examples/portal_app.py mounts the routers under /rps with the portal's own auth."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx

from rps_port.config import load_settings

from .conftest import seed_tenant

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "portal_app.py"


def load_example():
    spec = importlib.util.spec_from_file_location("portal_app", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_portal_mounts_rps_with_its_own_auth(sqlite_db_url):
    portal = load_example()
    t = seed_tenant(sqlite_db_url)
    # point the portal's users at the seeded org and clients
    alice = portal.USERS["key-alice"]
    portal.USERS["key-alice"] = type(alice)(sub="alice", org_id=t.org, roles=alice.roles)
    portal.USERS["key-bob"] = type(alice)(sub="bob", org_id=t.org, roles=frozenset({"viewer"}), clients=frozenset({t.client}))
    # no JWT settings at all: the portal's resolver replaces JWT verification
    app = portal.build_app(load_settings(database_url=sqlite_db_url, jwt_secret=None, jwt_jwks_url=None))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as c:
        assert (await c.get("/health")).json() == {"status": "ok"}
        r = await c.get("/rps/orders", headers={"X-Portal-Key": "key-alice"})
        assert r.status_code == 200 and {o["id"] for o in r.json()["items"]} == set(t.orders)
        r = await c.get("/rps/orders", headers={"X-Portal-Key": "key-bob"})
        assert {o["client_id"] for o in r.json()["items"]} == {t.client}
        r = await c.get("/rps/transactions", headers={"X-Portal-Key": "key-bob"})
        assert r.status_code == 403 and r.json()["missing_permission"] == "transactions:read"
        r = await c.get("/rps/orders")
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        r = await c.post(f"/rps/transactions/{t.charges[0]}/refund", json={"amount": "1.00"},
                         headers={"X-Portal-Key": "key-alice", "Idempotency-Key": "r1"})
        assert r.status_code == 201 and r.headers["location"] == f"../{r.json()['id']}"
        paths = app.openapi()["paths"]
        assert "/rps/orders" in paths and "/rps/transactions/{transaction_id}/refund" in paths


async def test_factory_parameters_and_session_override(sqlite_db_url):
    from fastapi import FastAPI
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from rps_port.api import build_router, get_session
    from rps_port.api.context import make_api_engine
    from rps_port.auth.principal import Principal

    t = seed_tenant(sqlite_db_url)
    engine = make_api_engine(sqlite_db_url)
    opened = []

    async def resolver(request):
        return Principal(sub="p", org_id=t.org, roles=frozenset({"viewer"}))

    async def portal_session():
        async with async_sessionmaker(engine, expire_on_commit=False)() as s:
            opened.append(s)
            yield s

    app = FastAPI()
    factory = async_sessionmaker(engine, expire_on_commit=False)
    app.include_router(build_router(load_settings(database_url="sqlite:///unused.db"), session_factory=factory,
                                    principal_resolver=resolver), prefix="/rps")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as c:
        r = await c.get("/rps/customers")
        assert r.status_code == 200 and len(r.json()["items"]) == 3
        app.dependency_overrides[get_session] = portal_session
        assert (await c.get(f"/rps/orders/{t.orders[0]}")).status_code == 200
        assert len(opened) == 1
        # without the app-level problem handlers, the routers still answer problem+json themselves
        r = await c.get("/rps/orders/ffffffffffffffffffffffff")
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    await engine.dispose()
