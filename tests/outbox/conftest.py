from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from integrations.conftest import fake_sendgrid, fake_twilio  # noqa: F401  (fixtures)
from integrations.fakes import FakeSendGrid, FakeTwilio
from sqlalchemy import Engine

from rps_port.db import make_engine, session_scope
from rps_port.domain.customers import Customer
from rps_port.domain.orders import Order
from rps_port.domain.transactions import Transaction
from rps_port.ids import new_object_id
from rps_port.integrations.http import RetryPolicy
from rps_port.integrations.sendgrid import SendGridClient
from rps_port.integrations.twilio import TwilioClient
from rps_port.outbox.brokers.base import Broker
from rps_port.outbox.handlers import Context, default_handlers
from rps_port.outbox.models import emit
from rps_port.outbox.worker import Worker
from rps_port.usage.pricing import load_catalog

ORG = "5f0000000000000000000001"
CLIENT = "5f00000000000000000000c1"
PROJECT = "5f00000000000000000000p1".replace("p", "a")
SID = "AC" + "0123456789abcdef" * 2
FAST = RetryPolicy(attempts=3, initial=0.01, max_wait=0.2, deadline=3, timeout=2)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def seed_customer(engine: Engine, *, email: str | None = "ada@example.com", phone: str | None = "+15551230001") -> str:
    with session_scope(engine) as s:
        c = Customer(id=new_object_id(), org_id=ORG, client_id=CLIENT, project_id=PROJECT, name="Ada Lovelace",
                     email=email, phone=phone, status="active", marketing_opt_in=False, tags=[])
        s.add(c)
    return c.id


def place_order(engine: Engine, customer_id: str, *, n: int = 1, event: str = "order.placed") -> tuple[str, str]:
    """An order row and its event, committed together (what the API's mutation does)."""
    with session_scope(engine) as s:
        o = Order(id=new_object_id(), org_id=ORG, client_id=CLIENT, project_id=PROJECT, number=f"RPS-2026-{n:06d}",
                  customer_id=customer_id, status="placed", currency="USD", subtotal=Decimal("19.99"),
                  tax=Decimal(0), total=Decimal("19.99"))
        s.add(o)
        s.flush()
        e = emit(s, aggregate_type="order", aggregate_id=o.id, event_type=event,
                 payload={"order_id": o.id, "total": "19.99", "currency": "USD"},
                 org_id=ORG, client_id=CLIENT, project_id=PROJECT)
    return o.id, e.id


def emit_for(engine: Engine, order_id: str, event: str) -> str:
    with session_scope(engine) as s:
        e = emit(s, aggregate_type="order", aggregate_id=order_id, event_type=event, payload={"order_id": order_id},
                 org_id=ORG, client_id=CLIENT, project_id=PROJECT)
    return e.id


def fail_charge(engine: Engine, customer_id: str) -> str:
    with session_scope(engine) as s:
        t = Transaction(id=new_object_id(), org_id=ORG, client_id=CLIENT, project_id=PROJECT, customer_id=customer_id,
                        kind="charge", status="failed", amount=Decimal("5.00"), currency="EUR", provider="stripe",
                        provider_ref=f"ch_{new_object_id()}", failure_code="card_declined")
        s.add(t)
        s.flush()
        e = emit(s, aggregate_type="transaction", aggregate_id=t.id, event_type="transaction.failed",
                 payload={"transaction_id": t.id, "amount": "5.00", "currency": "EUR"},
                 org_id=ORG, client_id=CLIENT, project_id=PROJECT)
    return e.id


def make_worker(engine: Engine, broker: Broker, sendgrid: FakeSendGrid, twilio: FakeTwilio, **kw) -> Worker:
    ctx = Context(
        engine=engine,
        sendgrid=SendGridClient("SG.test", base_url=sendgrid.url, policy=FAST),
        twilio=TwilioClient(SID, "token", base_url=twilio.url, policy=FAST),
        catalog=load_catalog(),
    )
    return Worker(ctx, broker, default_handlers(), **kw)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server mode on a free localhost port; boto3 talks HTTP to it."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def sqs_queue(moto_endpoint: str, aws_env) -> str:
    import uuid

    import boto3

    client = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    return client.create_queue(
        QueueName=f"rps-{uuid.uuid4().hex[:8]}.fifo",
        Attributes={"FifoQueue": "true", "VisibilityTimeout": "30"},
    )["QueueUrl"]
