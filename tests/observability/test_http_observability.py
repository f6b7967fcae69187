"""A request leaves a JSON access line, a duration sample under its route template, and a span
whose ids are the ones in the log line."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.testclient import TestClient

from rps_port.observability import metrics
from rps_port.observability.middleware import install_observability
from rps_port.observability.testing import capture_logs, capture_spans

ORG = "64f000000000000000000001"


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/orders/{order_id}")
    async def get_order(order_id: str, request: Request) -> dict:
        request.state.principal = {"org": ORG, "sub": "user-1", "clients": ["c1"], "projects": ["p1"]}
        return {"id": order_id}

    @app.get("/v1/boom")
    async def boom() -> dict:
        raise HTTPException(503, "down", headers={"Retry-After": "1"})

    install_observability(app)
    return app


def _count(route: str, status: str, method: str = "GET") -> float:
    return metrics.sample_value(
        "http_server_request_duration_seconds_count",
        {"http_request_method": method, "http_route": route, "http_response_status_code": status},
    )


def test_request_produces_log_metric_and_span_that_agree():
    client = TestClient(_app())
    before = _count("/v1/orders/{order_id}", "200")
    with capture_logs() as logs, capture_spans() as spans:
        r = client.get("/v1/orders/64f0aaaaaaaaaaaaaaaaaaaa", headers={"X-Request-ID": "req-123"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "req-123"

    (line,) = logs.find(logger="rps_port.access")
    assert line["request_id"] == "req-123"
    assert line["http_route"] == "/v1/orders/{order_id}" and line["status"] == 200
    assert line["org"] == ORG and line["client"] == "c1" and line["project"] == "p1"
    assert line["duration_ms"] > 0

    server = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert server, "FastAPI instrumentation produced no server span"
    assert format(server[0].context.trace_id, "032x") == line["trace_id"]
    assert server[0].attributes.get("http.route") == "/v1/orders/{order_id}"

    assert _count("/v1/orders/{order_id}", "200") == before + 1
    assert metrics.sample_value("http_server_active_requests", {"http_request_method": "GET"}) == 0


def test_labels_stay_bounded_unknown_paths_grouped_and_raw_ids_absent():
    client = TestClient(_app())
    before = _count(metrics.UNMATCHED_ROUTE, "404")
    for i in range(5):
        assert client.get(f"/random/{i}/path").status_code == 404
    assert _count(metrics.UNMATCHED_ROUTE, "404") == before + 5
    exposition = client.get("/metrics").text
    assert "/random/" not in exposition
    assert "64f0aaaaaaaaaaaaaaaaaaaa" not in exposition
    assert 'http_route="/v1/orders/{order_id}"' in exposition or _count("/v1/orders/{order_id}", "200") == 0


def test_generated_request_id_when_absent_or_malformed_and_errors_logged():
    client = TestClient(_app())
    with capture_logs() as logs:
        r = client.get("/v1/boom", headers={"X-Request-ID": "bad id with spaces"})
    assert r.status_code == 503
    rid = r.headers["x-request-id"]
    assert len(rid) == 32 and rid != "bad id with spaces"
    (line,) = logs.find(logger="rps_port.access")
    assert line["status"] == 503 and line["level"] == "ERROR" and line["request_id"] == rid


def test_metrics_endpoint_serves_prometheus_text():
    r = TestClient(_app()).get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    for name in ("http_server_request_duration_seconds", "rps_etl_documents_total", "rps_worker_jobs_total",
                 "rps_ratelimit_decisions_total", "rps_outbox_pending", "rps_shadow_comparisons_total"):
        assert f"# TYPE {name}" in r.text or f"# HELP {name}" in r.text
