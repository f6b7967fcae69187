"""Per-principal and per-org moving-window limits with IETF RateLimit fields, against real Redis."""

from __future__ import annotations

import socket

import pytest
from fastapi.testclient import TestClient

from rps_port.config import load_settings
from rps_port.observability import metrics
from rps_port.observability.testing import capture_logs
from rps_port.ratelimit import RateLimitConfigError, RateLimiter
from rps_port.ratelimit.headers import parse_list, policy_header, ratelimit_header

from .conftest import ORG_A, ORG_B, auth


def _decisions(scope: str, decision: str) -> float:
    return metrics.sample_value("rps_ratelimit_decisions_total", {"scope": scope, "decision": decision})


def test_header_syntax_follows_the_current_draft():
    assert policy_header([("principal", 100, 60), ("org", 1000, 3600)]) == (
        '"principal";q=100;w=60, "org";q=1000;w=3600'
    )
    assert ratelimit_header([("principal", 7, 12.2), ("org", -1, -3)]) == '"principal";r=7;t=13, "org";r=0;t=0'
    assert parse_list('"principal";r=7;t=13, "org";r=0;t=0') == {
        "principal": {"r": 7, "t": 13},
        "org": {"r": 0, "t": 0},
    }


@pytest.mark.redis
def test_burst_against_redis_gets_429_problem_with_ietf_fields(redis_url, app_factory):
    limiter = RateLimiter("5/minute", "100/minute", redis_url, fail_open=False)
    client = TestClient(app_factory(limiter))
    limited_before = _decisions("principal", "limited")

    responses = [client.get("/v1/orders", headers=auth("alice")) for _ in range(8)]
    assert [r.status_code for r in responses] == [200] * 5 + [429] * 3

    first = responses[0]
    assert parse_list(first.headers["RateLimit-Policy"]) == {
        "principal": {"q": 5, "w": 60},
        "org": {"q": 100, "w": 60},
    }
    assert parse_list(first.headers["RateLimit"])["principal"]["r"] == 4
    assert [parse_list(r.headers["RateLimit"])["principal"]["r"] for r in responses[:5]] == [4, 3, 2, 1, 0]

    refused = responses[5]
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert body["status"] == 429 and body["title"] == "Too Many Requests" and body["policy"] == "principal"
    retry = int(refused.headers["Retry-After"])
    assert 1 <= retry <= 60
    assert parse_list(refused.headers["RateLimit"])["principal"] == {"r": 0, "t": retry}
    assert _decisions("principal", "limited") == limited_before + 3

    # another principal of the same org is unaffected by alice's quota
    assert client.get("/v1/orders", headers=auth("bob")).status_code == 200
    # the counters live in Redis, so a second app instance (another worker) sees them
    other = TestClient(app_factory(RateLimiter("5/minute", "100/minute", redis_url)))
    assert other.get("/v1/orders", headers=auth("alice")).status_code == 429


@pytest.mark.redis
def test_org_limit_is_shared_by_its_principals_and_isolated_between_orgs(redis_url, app_factory):
    client = TestClient(app_factory(RateLimiter("100/minute", "4/minute", redis_url)))
    statuses = [client.get("/v1/orders", headers=auth(f"user{i}", ORG_A)).status_code for i in range(6)]
    assert statuses == [200] * 4 + [429] * 2
    refused = client.get("/v1/orders", headers=auth("user9", ORG_A))
    assert refused.json()["policy"] == "org"
    assert client.get("/v1/orders", headers=auth("user0", ORG_B)).status_code == 200


@pytest.mark.redis
def test_key_comes_from_the_verified_token_not_forwarded_headers(redis_url, app_factory):
    client = TestClient(app_factory(RateLimiter("2/minute", None, redis_url)))
    for i in range(3):
        r = client.get("/v1/orders", headers={**auth("mallory"), "X-Forwarded-For": f"10.0.0.{i}",
                                              "X-Real-IP": f"10.1.0.{i}"})
    assert r.status_code == 429
    # an unverifiable token is rejected by auth before it can consume or dodge anyone's quota
    forged = {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0."}
    assert client.get("/v1/orders", headers=forged).status_code == 401


def test_ratelimit_fields_ride_on_error_responses_too(app_factory):
    client = TestClient(app_factory(RateLimiter("10/minute", None, "memory://")))
    r = client.get("/v1/fails", headers=auth("carol"))
    assert r.status_code == 409
    assert parse_list(r.headers["RateLimit"])["principal"]["r"] == 9


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("fail_open", [True, False])
def test_redis_unreachable_follows_the_configured_policy(fail_open, app_factory):
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    limiter = RateLimiter("1/minute", "1/minute", url, fail_open=fail_open, cooldown=0)
    client = TestClient(app_factory(limiter))
    failures_before = metrics.sample_value("rps_ratelimit_backend_failures_total")
    decision = "failed_open" if fail_open else "failed_closed"
    decided_before = _decisions("principal", decision)
    with capture_logs() as logs:
        responses = [client.get("/v1/orders", headers=auth("dave")) for _ in range(3)]
    if fail_open:
        assert [r.status_code for r in responses] == [200, 200, 200]
        assert "RateLimit" not in responses[0].headers  # no counts to report
    else:
        assert [r.status_code for r in responses] == [503, 503, 503]
        assert responses[0].headers["content-type"] == "application/problem+json"
        assert int(responses[0].headers["Retry-After"]) >= 1
    assert "RateLimit-Policy" in responses[0].headers
    assert metrics.sample_value("rps_ratelimit_backend_failures_total") == failures_before + 3
    assert _decisions("principal", decision) == decided_before + 3
    warnings = logs.find(logger="rps_port.ratelimit", level="WARNING")
    assert len(warnings) == 3
    assert ("failing open" if fail_open else "failing closed") in warnings[0]["msg"]


def test_bad_settings_name_the_setting():
    with pytest.raises(RateLimitConfigError, match="RPS_RATE_LIMIT_ORG"):
        RateLimiter("10/minute", "lots", "memory://")
    with pytest.raises(RateLimitConfigError, match="RPS_RATE_LIMIT_STORAGE_URL"):
        RateLimiter("10/minute", None, "nosuch://x")
    limiter = RateLimiter.from_settings(load_settings(rate_limit="3/second", rate_limit_org="50/hour"))
    assert limiter.policies == [("principal", 3, 1), ("org", 50, 3600)]
