"""Logs, metrics and traces for an ETL run, the outbox relay and a worker job, through their real code."""

from __future__ import annotations

import http.server
import json
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from rps_port.db import make_engine, session_scope
from rps_port.domain import Customer, Order
from rps_port.etl.backfill import run_backfill
from rps_port.etl.mapping import load_mapping
from rps_port.etl.sources import open_source
from rps_port.ids import new_object_id
from rps_port.integrations.http import RetryPolicy
from rps_port.integrations.sendgrid import SendGridClient
from rps_port.integrations.twilio import TwilioClient
from rps_port.legacy.generate import DEFAULT_SECRET, generate
from rps_port.observability import metrics, tracing
from rps_port.observability.hooks import etl_progress, observe_relay, observe_worker
from rps_port.observability.testing import capture_logs, capture_spans
from rps_port.outbox.brokers.inprocess import InProcessBroker
from rps_port.outbox.handlers import Context, default_handlers
from rps_port.outbox.models import emit
from rps_port.outbox.relay import Relay
from rps_port.outbox.worker import Worker
from rps_port.usage.pricing import load_catalog

ORG, CLIENT, PROJECT = "5f00000000000000000000e1", "5f00000000000000000000e2", "5f00000000000000000000e3"


def _docs(collection: str, outcome: str) -> float:
    return metrics.sample_value("rps_etl_documents_total", {"collection": collection, "outcome": outcome})


def test_etl_run_counts_documents_per_collection_and_logs(tmp_path, sqlite_db_url):
    generate(tmp_path / "legacy", 25, seed=5, fmt="bson")
    engine = make_engine(sqlite_db_url)
    events = []
    before = {c: (_docs(c, "loaded"), _docs(c, "rejected")) for c in ("customers", "orders", "transactions")}
    with capture_logs() as logs, capture_spans() as spans:
        summary = run_backfill(engine, open_source(tmp_path / "legacy"), load_mapping(secret=DEFAULT_SECRET),
                               batch_size=20, progress=etl_progress(events.append))
    assert events, "the inner progress callback was not called"
    for rec in summary.reconciliations:
        loaded = _docs(rec.collection, "loaded") - before[rec.collection][0]
        rejected = _docs(rec.collection, "rejected") - before[rec.collection][1]
        assert loaded == rec.as_dict()["loaded"], rec.as_dict()
        assert rejected == rec.as_dict()["rejected"]
    reconciled = logs.find(msg="etl collection reconciled")
    assert {line["collection"] for line in reconciled} == {r.collection for r in summary.reconciliations}
    finished = spans.get_finished_spans()
    (run,) = [s for s in finished if s.name == "etl.run"]
    collections = [s for s in finished if s.name == "etl.collection"]
    batches = [s for s in finished if s.name == "etl.batch"]
    assert {s.attributes["collection"] for s in collections} == {r.collection for r in summary.reconciliations}
    assert all(s.parent.span_id == run.context.span_id for s in collections)
    by_id = {s.context.span_id: s for s in collections}
    assert batches and all(by_id[b.parent.span_id].attributes["collection"] == b.attributes["collection"]
                           for b in batches)
    assert sum(b.attributes["loaded"] for b in batches) == sum(r.as_dict()["loaded"] for r in summary.reconciliations)
    assert all(b.start_time <= b.end_time for b in batches)
    engine.dispose()


class _Provider(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"sid": "SM" + "1" * 32, "status": "queued"}).encode()
        self.send_response(202 if self.path.startswith("/v3/mail") else 201)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Message-Id", "m-1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def provider():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_relay_and_worker_job_have_metrics_spans_and_logs(sqlite_db_url, provider):
    tracing.instrument_httpx()
    engine = make_engine(sqlite_db_url)
    with session_scope(engine) as s:
        c = Customer(id=new_object_id(), org_id=ORG, client_id=CLIENT, project_id=PROJECT, name="Grace Hopper",
                     email="grace@example.com", phone="+15551230002", status="active", marketing_opt_in=False,
                     tags=[])
        s.add(c)
        s.flush()
        o = Order(id=new_object_id(), org_id=ORG, client_id=CLIENT, project_id=PROJECT, number="RPS-2026-000009",
                  customer_id=c.id, status="placed", currency="USD", subtotal=Decimal("5.00"), tax=Decimal(0),
                  total=Decimal("5.00"))
        s.add(o)
        s.flush()
        event = emit(s, aggregate_type="order", aggregate_id=o.id, event_type="order.placed",
                     payload={"order_id": o.id, "total": "5.00", "currency": "USD"},
                     org_id=ORG, client_id=CLIENT, project_id=PROJECT)
    broker = InProcessBroker()
    policy = RetryPolicy(attempts=2, initial=0.01, max_wait=0.05, deadline=2, timeout=2)
    ctx = Context(engine=engine, sendgrid=SendGridClient("SG.key", base_url=provider, policy=policy),
                  twilio=TwilioClient("AC" + "ab" * 16, "tok", base_url=provider, policy=policy),
                  catalog=load_catalog())
    worker = observe_worker(Worker(ctx, broker, default_handlers()))
    relay = observe_relay(Relay(engine, broker))
    handlers = [h.name for h in default_handlers() if "order.placed" in h.event_types]
    published_before = metrics.sample_value("rps_outbox_published_total", {"outcome": "published"})
    latency_before = metrics.sample_value("rps_outbox_publish_latency_seconds_count")
    jobs_before = {h: metrics.sample_value("rps_worker_jobs_total", {"handler": h, "outcome": "succeeded"})
                   for h in handlers}

    with capture_logs() as logs, capture_spans() as spans:
        assert relay.drain() == 1
        assert worker.run_once(wait_seconds=0.2) == 1

    assert metrics.sample_value("rps_outbox_published_total", {"outcome": "published"}) == published_before + 1
    assert metrics.sample_value("rps_outbox_publish_latency_seconds_count") == latency_before + 1
    assert metrics.sample_value("rps_outbox_pending") == 0
    for h in handlers:
        assert metrics.sample_value("rps_worker_jobs_total", {"handler": h, "outcome": "succeeded"}) == \
            jobs_before[h] + 1
        assert metrics.sample_value("rps_worker_job_duration_seconds_count", {"handler": h}) >= 1
    jobs = [s for s in spans.get_finished_spans() if s.name == "worker.job"]
    assert sorted(s.attributes["handler"] for s in jobs) == sorted(handlers)
    assert all(s.attributes["outcome"] == "succeeded" and s.attributes["event_id"] == event.id for s in jobs)
    # the provider calls are client spans inside the job's trace
    clients = [s for s in spans.get_finished_spans() if s.kind.name == "CLIENT" and s.name.startswith("POST")]
    assert len(clients) == len(handlers)
    assert {s.context.trace_id for s in clients} <= {s.context.trace_id for s in jobs}
    lines = logs.find(msg="job succeeded")
    assert sorted(line["handler"] for line in lines) == sorted(handlers)
    assert all(line["event_id"] == event.id and line["org"] == ORG and "trace_id" in line for line in lines)
    assert "grace@example.com" not in logs.text and "+15551230002" not in logs.text
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(type(event)).where(type(event).published_at.is_(None))) == 0
    engine.dispose()
