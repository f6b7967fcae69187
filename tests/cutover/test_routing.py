"""The routing dependency, through the app: serve new or proxy to the legacy emulator by stage and cohort."""

from __future__ import annotations

import time
from pathlib import Path
from collections import Counter

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient

from rps_port.api.app import create_app
from rps_port.config import load_settings
from rps_port.cutover.cohorts import Overrides
from rps_port.cutover.controller import Controller
from rps_port.cutover.routing import Snapshot, decide, legacy_path
from rps_port.cutover.serving import free_port, serve_in_thread
from rps_port.ids import normalize_object_id
from rps_port.legacy.emulator import create_legacy_app
from rps_port.legacy.emulator_store import iter_documents
from rps_port.legacy.generate import generate

from .conftest import good_evidence

SECRET = "routing-test-secret-0123456789abcdef"


def token(org: str, **extra) -> str:
    now = int(time.time())
    claims = {"sub": "u1", "org": org, "roles": ["admin"], "clients": ["*"], "projects": ["*"],
              "iss": "portal", "aud": "rps", "iat": now, "exp": now + 600, **extra}
    return jwt.encode(claims, SECRET, algorithm="HS256")


legacy_data_dir: list[Path] = []


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    data = tmp_path_factory.mktemp("legacy")
    legacy_data_dir[:] = [data]
    generate(data, customers=12, seed=5)
    orgs = Counter(normalize_object_id(str(d["org"])) for d in iter_documents(data, "orders"))
    org = orgs.most_common(1)[0][0]
    with serve_in_thread(create_legacy_app(data, jwt_secret=SECRET)) as url:
        yield url, org


@pytest.fixture
def world(sqlite_db_url, legacy, tmp_path, monkeypatch):
    url, org = legacy

    def make(routing_on: bool = True, legacy_url: str = url):
        settings = load_settings(database_url=sqlite_db_url, jwt_secret=SECRET, legacy_url=legacy_url,
                                 cutover_routing=routing_on, cutover_state_cache_seconds=0, cutover_audit_log=tmp_path / "audit.jsonl")
        ctl = Controller(settings, evidence=good_evidence(), actor="test")
        return TestClient(create_app(settings)), ctl

    return make, org


def test_decide_by_stage_and_cohort():
    org = "5f0c2b9e8a1d4e3f2a1b0c9d"
    none = Overrides()
    assert decide(Snapshot("legacy", 0, none), "GET", org, None).serve == "legacy"
    assert decide(Snapshot("shadow", 0, none), "GET", org, None).serve == "legacy"
    assert decide(Snapshot("canary", 100, none), "GET", org, None).serve == "new"
    assert decide(Snapshot("canary", 100, none), "POST", org, None).serve == "legacy"
    assert decide(Snapshot("canary", 0, Overrides(allow_orgs=frozenset({org}))), "GET", org, None).serve == "new"
    assert decide(Snapshot("live", 100, none), "POST", org, None).serve == "new"
    assert decide(Snapshot("legacy", 0, none), "GET", org, None, force_new=True).serve == "new"
    assert decide(Snapshot("legacy", 0, none), "POST", org, None, force_new=True).serve == "legacy"


def test_legacy_paths_follow_the_contract():
    assert legacy_path("/rps/orders/abc") == "/api/orders/abc"
    assert legacy_path("/transactions/x/refund") == "/api/transactions/x/refund"


def test_routing_off_serves_new(world):
    make, org = world
    client, _ = make(routing_on=False)
    r = client.get("/orders", headers={"Authorization": f"Bearer {token(org)}"})
    assert r.status_code == 200 and "items" in r.json() and "x-rps-served-by" not in r.headers


def test_legacy_stage_proxies_with_status_headers_and_query(world, legacy):
    make, org = world
    legacy_url = legacy[0]
    client, ctl = make()
    auth = {"Authorization": f"Bearer {token(org)}"}
    r = client.get("/orders", params={"limit": 2}, headers=auth)
    assert r.status_code == 200 and r.headers["x-rps-served-by"] == "legacy"
    body = r.json()
    assert body["limit"] == 2 and len(body["data"]) == 2 and body["total"] >= 2  # the legacy envelope
    direct = httpx.get(f"{legacy_url}/api/orders", params={"limit": 2}, headers=auth)
    assert r.content == direct.content and r.headers["content-type"] == direct.headers["content-type"]
    paid = client.get("/orders", params={"status": "paid"}, headers=auth).json()
    assert paid["data"] and {d["status"] for d in paid["data"]} == {"paid"}
    oid = body["data"][0]["_id"]
    one = client.get(f"/orders/{oid}", headers=auth)
    assert one.status_code == 200 and one.json()["_id"] == oid
    missing = client.get("/orders/000000000000000000000000", headers=auth)
    assert missing.status_code == 404 and missing.json() == {"error": "not_found"}

    forced = client.get("/orders", headers={**auth, "X-RPS-Serve": "new"})
    assert forced.status_code == 200 and forced.headers["x-rps-served-by"] == "new" and "items" in forced.json()


def test_canary_cohort_reads_new_writes_legacy_then_live_serves_new(world):
    make, org = world
    client, ctl = make()
    auth = {"Authorization": f"Bearer {token(org)}"}
    ctl.advance(execute=True)
    ctl.advance(percent=1, execute=True)
    ctl.set_override("org", org, "deny", execute=True)
    assert client.get("/orders", headers=auth).headers["x-rps-served-by"] == "legacy"
    ctl.set_override("org", org, "allow", execute=True)
    r = client.get("/orders", headers=auth)
    assert r.headers["x-rps-served-by"] == "new" and "items" in r.json()
    w = client.post("/orders", json={"customer": "x", "currency": "EUR", "items": []},
                    headers={**auth, "Idempotency-Key": "k1"})
    assert w.headers["x-rps-served-by"] == "legacy"
    ctl.advance(to="live", execute=True)
    assert client.get("/orders", headers=auth).headers["x-rps-served-by"] == "new"


def test_legacy_down_is_a_502_problem(world):
    make, org = world
    client, _ = make(legacy_url=f"http://127.0.0.1:{free_port()}")
    r = client.get("/orders", headers={"Authorization": f"Bearer {token(org)}"})
    assert r.status_code == 502 and r.headers["content-type"].startswith("application/problem+json")


def test_the_routed_app_shadows_as_the_stage_says(sqlite_db_url, legacy, tmp_path):
    from rps_port.db import make_engine
    from rps_port.etl.backfill import run_backfill
    from rps_port.etl.mapping import load_mapping
    from rps_port.etl.sources import open_source

    url, org = legacy
    data = Path(url and legacy_data_dir[0])
    engine = make_engine(sqlite_db_url)
    run_backfill(engine, open_source(str(data)), load_mapping(secret="rps-legacy-test-secret"))
    customer = next(d for d in iter_documents(data, "customers")
                    if normalize_object_id(str(d["org"])) == org and d.get("deletedAt") is None)
    settings = load_settings(database_url=sqlite_db_url, jwt_secret=SECRET, legacy_url=url, cutover_routing=True,
                             cutover_state_cache_seconds=0, cutover_shadow_sample_rate=1.0,
                             cutover_audit_log=tmp_path / "audit.jsonl")
    ctl = Controller(settings, evidence=good_evidence(), actor="test")
    app = create_app(settings)
    auth = {"Authorization": f"Bearer {token(org)}"}
    path = f"/customers/{customer['_id']}"

    with TestClient(app) as client:  # one event loop, as in a server

        def compared_after(request_path: str) -> tuple[str, int]:
            dual = app.state.cutover_dual_read
            before = dual.report().totals.requests
            r = client.get(request_path, headers=auth)
            deadline = time.monotonic() + 2
            while dual.report().totals.requests == before and time.monotonic() < deadline:
                client.get("/openapi.json")  # lets the background comparison run on the app's loop
                time.sleep(0.05)
            return r.headers["x-rps-served-by"], dual.report().totals.requests - before

        assert compared_after(path) == ("legacy", 0)  # legacy stage: nothing compared
        ctl.advance(execute=True)
        assert compared_after(path) == ("legacy", 1)  # shadow: legacy answers, new compared
        ctl.advance(percent=100, execute=True)
        ctl.advance(execute=True)
        assert compared_after(path) == ("new", 1)  # live: new answers, legacy compared (reverse shadow)
    totals = app.state.cutover_dual_read.report().totals
    assert totals.compared == 2 and totals.mismatches == 0, totals
