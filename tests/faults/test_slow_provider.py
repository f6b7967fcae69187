"""A provider that hangs: the worker gives up within its deadline, leaves the job for redelivery,
records nothing, and succeeds once the provider answers again."""

from __future__ import annotations

import http.server
import json
import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rps_port.db import make_engine, session_scope
from rps_port.domain import Customer, Order
from rps_port.ids import new_object_id
from rps_port.integrations.http import RetryPolicy
from rps_port.integrations.sendgrid import SendGridClient
from rps_port.integrations.twilio import TwilioClient
from rps_port.outbox.brokers.inprocess import InProcessBroker
from rps_port.outbox.handlers import Context, default_handlers
from rps_port.outbox.models import emit
from rps_port.outbox.relay import Relay
from rps_port.outbox.worker import Worker
from rps_port.usage.models import UsageEvent
from rps_port.usage.pricing import load_catalog

ORG, CLIENT, PROJECT = "5f00000000000000000000f1", "5f00000000000000000000f2", "5f00000000000000000000f3"
POLICY = RetryPolicy(attempts=10, initial=0.05, max_wait=0.1, deadline=1.0, timeout=0.3)
# worst case for one provider call: an attempt starting just before the deadline runs its timeout
CALL_BUDGET = POLICY.deadline + POLICY.timeout + POLICY.max_wait


class _Provider(http.server.BaseHTTPRequestHandler):
    delay = 5.0
    calls = 0

    def do_POST(self) -> None:
        type(self).calls += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(type(self).delay)
        body = json.dumps({"sid": "SM" + "0" * 32, "status": "queued"}).encode()
        status = 202 if self.path.startswith("/v3/mail") else 201
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Message-Id", "msg-1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up first
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_provider():
    _Provider.delay, _Provider.calls = 5.0, 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Provider.delay = 0
    server.shutdown()
    server.server_close()


def test_worker_keeps_its_deadline_against_a_hanging_provider(sqlite_db_url, slow_provider):
    engine = make_engine(sqlite_db_url)
    with session_scope(engine) as s:
        c = Customer(id=new_object_id(), org_id=ORG, client_id=CLIENT, project_id=PROJECT, name="C",
                     email="c@example.com", phone="+15551230001", status="active", marketing_opt_in=False, tags=[])
        s.add(c)
        s.flush()
        o = Order(id=new_object_id(), org_id=ORG, client_id=CLIENT, project_id=PROJECT, number="RPS-2026-000001",
                  customer_id=c.id, status="placed", currency="USD", subtotal=Decimal("19.99"), tax=Decimal(0),
                  total=Decimal("19.99"))
        s.add(o)
        s.flush()
        emit(s, aggregate_type="order", aggregate_id=o.id, event_type="order.placed",
             payload={"order_id": o.id, "total": "19.99", "currency": "USD"},
             org_id=ORG, client_id=CLIENT, project_id=PROJECT)
    broker = InProcessBroker()
    ctx = Context(
        engine=engine,
        sendgrid=SendGridClient("SG.test", base_url=slow_provider, policy=POLICY),
        twilio=TwilioClient("AC" + "0123456789abcdef" * 2, "token", base_url=slow_provider, policy=POLICY),
        catalog=load_catalog(),
    )
    handlers = default_handlers()
    worker = Worker(ctx, broker, handlers, max_deliveries=5)
    Relay(engine, broker).drain()

    started = time.monotonic()
    assert worker.run_once(wait_seconds=0.5) == 1
    elapsed = time.monotonic() - started
    providers_called = sum(1 for h in handlers if "order.placed" in h.event_types)
    assert elapsed < providers_called * CALL_BUDGET + 1.0, f"worker took {elapsed:.2f}s"
    assert worker.stats.retried == 1 and worker.stats.sent == 0 and worker.stats.dead_lettered == 0
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(UsageEvent)) == 0

    # the provider recovers: the redelivered job goes through, once
    _Provider.delay = 0
    assert worker.run_once(wait_seconds=0.5) == 1
    assert worker.stats.sent == providers_called
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(UsageEvent)) == providers_called
    engine.dispose()
