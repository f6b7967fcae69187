"""The limiter and the observability installer wired into the real `create_app`."""

from __future__ import annotations

import httpx
import pytest
from faults.data import SECRET, bearer, seed

from rps_port.api import app as api_app
from rps_port.config import load_settings
from rps_port.observability import metrics
from rps_port.observability.install import install, rate_limit_route_dependency
from rps_port.observability.testing import capture_logs, capture_spans
from rps_port.ratelimit.headers import parse_list


@pytest.fixture
def wired(monkeypatch):
    monkeypatch.setattr(api_app, "ROUTE_DEPENDENCIES", [rate_limit_route_dependency])
    monkeypatch.setattr(api_app, "INSTALLERS", [install])


async def _client(settings):
    app = api_app.create_app(settings)
    return app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.redis
async def test_burst_through_the_real_app_against_redis(wired, sqlite_db_url, redis_url):
    (org,) = seed(sqlite_db_url)
    settings = load_settings(database_url=sqlite_db_url, jwt_secret=SECRET, rate_limit="4/minute",
                             rate_limit_org="100/minute", rate_limit_storage_url=redis_url)
    app, client = await _client(settings)
    async with client:
        statuses, last = [], None
        for _ in range(6):
            last = await client.get("/orders", headers=bearer(org.org, "burst-user"))
            statuses.append(last.status_code)
        assert statuses == [200] * 4 + [429] * 2
        assert last.headers["content-type"] == "application/problem+json"
        assert last.json()["status"] == 429 and int(last.headers["Retry-After"]) >= 1
        assert parse_list(last.headers["RateLimit-Policy"])["principal"] == {"q": 4, "w": 60}
        assert parse_list(last.headers["RateLimit"])["principal"]["r"] == 0
        # a bad token is a 401 and costs nobody's quota
        bad = await client.get("/orders", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and "RateLimit" not in bad.headers
    await app.state.rps_context.aclose()


async def test_request_through_the_real_app_has_log_metric_and_span(wired, sqlite_db_url):
    (org,) = seed(sqlite_db_url)
    settings = load_settings(database_url=sqlite_db_url, jwt_secret=SECRET)
    app, client = await _client(settings)
    labels = {"http_request_method": "GET", "http_route": "/orders/{order_id}", "http_response_status_code": "200"}
    before = metrics.sample_value("http_server_request_duration_seconds_count", labels)
    async with client:
        with capture_logs() as logs, capture_spans() as spans:
            r = await client.get(f"/orders/{org.orders[0]}", headers=bearer(org.org, "reader-1"))
        assert r.status_code == 200
        assert "RateLimit" in r.headers and "RateLimit-Policy" in r.headers
        exposition = (await client.get("/metrics")).text
    assert metrics.sample_value("http_server_request_duration_seconds_count", labels) == before + 1
    assert org.orders[0] not in exposition
    (line,) = logs.find(logger="rps_port.access")
    assert line["http_route"] == "/orders/{order_id}" and line["status"] == 200
    assert line["org"] == org.org and line["sub"] == "reader-1" and line["request_id"] == r.headers["x-request-id"]
    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind.name == "SERVER"]
    assert server and format(server[0].context.trace_id, "032x") == line["trace_id"]
    # SQL spans of the request belong to the same trace
    sql = [s for s in finished if s.kind.name == "CLIENT" and s.context.trace_id == server[0].context.trace_id]
    assert sql, "no SQLAlchemy span in the request's trace"
    await app.state.rps_context.aclose()
