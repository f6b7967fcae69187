"""Legacy down during a shadow run: every request is an error (report and metrics), never a mismatch."""

from __future__ import annotations

import socket

import httpx

from rps_port.api.app import create_app
from rps_port.config import load_settings
from rps_port.observability import metrics
from rps_port.shadow.corpus import CorpusEntry, Principals
from rps_port.shadow.runner import ShadowConfig, run_shadow

from .data import SECRET, seed


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _count(endpoint: str, outcome: str) -> float:
    return metrics.sample_value("rps_shadow_comparisons_total", {"endpoint": endpoint, "outcome": outcome})


def test_legacy_down_counts_errors_not_mismatches(sqlite_db_url):
    (org,) = seed(sqlite_db_url)
    app = create_app(load_settings(database_url=sqlite_db_url, jwt_secret=SECRET, rate_limit=""))
    claims = {"org": org.org, "roles": ["admin"], "clients": ["*"], "projects": ["*"]}
    corpus = [CorpusEntry("GET", f"/api/orders/{oid}", principal=claims) for oid in org.orders]
    corpus += [CorpusEntry("GET", "/api/orders", {"limit": "10"}, principal=claims)]
    detail, listing = "GET /api/orders/:id", "GET /api/orders"
    before = {(e, o): _count(e, o) for e in (detail, listing) for o in ("match", "mismatch", "error")}

    report = run_shadow(
        ShadowConfig(
            legacy_url=f"http://127.0.0.1:{_closed_port()}",
            new_url="http://new.test",
            new_transport=httpx.ASGITransport(app=app),
            corpus=corpus,
            principals=Principals(secret=SECRET),
            legacy_timeout=2,
            min_samples=1,
        )
    )
    metrics.record_shadow_report(report)

    assert report.totals.errors == len(corpus)
    assert report.totals.mismatches == 0 and report.totals.compared == 0
    assert {e.side for e in report.errors} == {"legacy"}
    assert _count(detail, "error") - before[(detail, "error")] == len(org.orders)
    assert _count(listing, "error") - before[(listing, "error")] == 1
    for endpoint in (detail, listing):
        assert _count(endpoint, "mismatch") == before[(endpoint, "mismatch")]
        assert _count(endpoint, "match") == before[(endpoint, "match")]
