"""Evidence from the components' own records: the new API's Prometheus metrics, the shadow results table."""

from __future__ import annotations

import time

import httpx
import jwt

from rps_port.api.app import create_app
from rps_port.config import load_settings
from rps_port.cutover.evidence import load_evidence_file
from rps_port.cutover.serving import serve_in_thread
from rps_port.cutover.sources import PrometheusEvidence, ShadowTableEvidence, default_evidence
from rps_port.db import make_engine
from rps_port.ids import new_object_id

SECRET = "sources-test-secret-0123456789abcdef"


def test_request_metrics_scraped_from_the_new_api(sqlite_db_url):
    settings = load_settings(database_url=sqlite_db_url, jwt_secret=SECRET)
    now = int(time.time())
    token = jwt.encode({"sub": "u", "org": new_object_id(), "roles": ["admin"], "iss": "portal", "aud": "rps",
                        "iat": now, "exp": now + 600}, SECRET, algorithm="HS256")
    with serve_in_thread(create_app(settings)) as url:
        before = PrometheusEvidence(f"{url}/metrics").metrics()
        base, base_errors = (before.requests, before.errors) if before else (0, 0)
        for _ in range(5):
            assert httpx.get(f"{url}/orders", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        m = PrometheusEvidence(f"{url}/metrics").metrics()
    assert m is not None and m.requests - base >= 5  # the registry is per process: count the delta
    assert m.errors == base_errors and m.p99_ms is not None and 0 < m.p99_ms <= 10_000
    assert m.source.startswith("prometheus ")


def test_unreachable_metrics_are_no_evidence():
    from rps_port.cutover.serving import free_port

    assert PrometheusEvidence(f"http://127.0.0.1:{free_port()}/metrics", timeout=0.5).metrics() is None


def test_shadow_results_table_feeds_the_shadow_gate(sqlite_db_url, tmp_path):
    from rps_port.shadow.report import EndpointStats, ShadowReport, Totals
    from rps_port.shadow.store import save_results
    from rps_port.timeutil import utcnow

    assert ShadowTableEvidence(sqlite_db_url).shadow() is None
    report = ShadowReport(run_id="r1", started_at=utcnow(), finished_at=utcnow(), max_mismatch_rate=0.01,
                          confidence=0.95, min_samples=30, verdict="pass", totals=Totals(requests=500, compared=500),
                          endpoints=[EndpointStats(endpoint="GET /api/orders/:id", requests=500, compared=500,
                                                   matches=500, upper_bound=0.0076, verdict="pass")],
                          fingerprints=[])
    save_results(report, sqlite_db_url)
    ev = ShadowTableEvidence(sqlite_db_url).shadow()
    assert (ev.samples, ev.mismatches, round(ev.bound(), 4)) == (500, 0, 0.0076)

    settings = load_settings(database_url=sqlite_db_url, cutover_evidence_file=tmp_path / "none.json")
    chained = default_evidence(settings, make_engine(sqlite_db_url))
    assert chained.shadow().samples == 500 and chained.last_verify() is None


def test_evidence_file_round_trip(tmp_path):
    from rps_port.cutover.evidence import save_evidence_file

    from .conftest import good_evidence

    ev = good_evidence()
    save_evidence_file(tmp_path / "e.json", ev)
    back = load_evidence_file(tmp_path / "e.json")
    assert back.lag.seconds == ev.lag.seconds and back.verify.finished_at == ev.verify.finished_at
    assert back.shadow_stats.samples == ev.shadow_stats.samples and back.app_metrics.p99_ms == ev.app_metrics.p99_ms


def test_dual_read_comparisons_scraped_as_shadow_evidence():
    from prometheus_client import CollectorRegistry, Counter, generate_latest
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    registry = CollectorRegistry()
    c = Counter("rps_shadow_comparisons_total", "x", ["endpoint", "outcome"], registry=registry)
    c.labels("GET /api/orders/:id", "match").inc(990)
    c.labels("GET /api/orders/:id", "mismatch").inc(10)
    c.labels("GET /api/orders/:id", "error").inc(50)
    c.labels("GET /api/customers/:id", "match").inc(5000)
    app = Starlette(routes=[Route("/metrics", lambda r: Response(generate_latest(registry)))])
    with serve_in_thread(app) as url:
        ev = PrometheusEvidence(f"{url}/metrics").shadow()
    assert (ev.samples, ev.mismatches) == (1000, 10) and "GET /api/orders/:id" in ev.source
    assert 0.01 < ev.bound() < 0.02
