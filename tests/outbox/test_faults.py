"""Fault tests against real Redis and moto's SQS server: processes killed with SIGKILL at the worst
moments. Every event ends delivered exactly once in effect (or dead-lettered), none dropped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outbox.conftest import SID, make_worker, place_order, seed_customer
from rps_port.outbox.brokers.redis_streams import RedisStreamsBroker
from rps_port.outbox.brokers.sqs import SQSBroker
from rps_port.outbox.models import OutboxEvent
from rps_port.outbox.relay import Relay
from rps_port.outbox.state import ProcessedMessage
from rps_port.usage.models import UsageEvent

STREAM = "rps-fault"

CHILD = r'''
import sys, time
from pathlib import Path
from rps_port.db import make_engine

role, kind, target, db_url, marker = sys.argv[1:6]
if kind == "redis":
    from rps_port.outbox.brokers.redis_streams import RedisStreamsBroker
    broker = RedisStreamsBroker(target, stream="rps-fault", consumer="doomed")
else:
    from rps_port.outbox.brokers.sqs import SQSBroker
    queue, endpoint = target.split("|")
    broker = SQSBroker(queue, endpoint_url=endpoint, visibility_timeout=2)
engine = make_engine(db_url)

def stall(what):
    Path(marker).write_text(what)
    time.sleep(3600)

if role == "relay":
    from rps_port.outbox.relay import Relay

    class Stalling:
        name = "stalling"
        def publish(self, messages):
            broker.publish(messages)
            stall(str(len(messages)))  # published, not yet marked published: SIGKILL lands here
    Relay(engine, Stalling(), batch_size=3).drain()
else:
    from rps_port.config import load_settings
    from rps_port.outbox.runtime import build_worker
    worker = build_worker(load_settings(), engine=engine, broker=broker)
    worker.after_effects = lambda delivery: stall(delivery.event_id)  # effects committed, ack not sent
    while True:
        worker.run_once(wait_seconds=0.5)
'''


def spawn(role: str, kind: str, target: str, db_url: str, marker: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, role, kind, target, db_url, str(marker)],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_then_kill(proc: subprocess.Popen, marker: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child exited early: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("child never reached the kill point")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    return marker.read_text()


@pytest.fixture(params=["redis", "sqs"])
def broker_setup(request):
    """(kind, target for the child, a takeover broker for this process)."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return "redis", url, RedisStreamsBroker(url, stream=STREAM, consumer="takeover", min_idle_ms=300)
    queue = request.getfixturevalue("sqs_queue")
    endpoint = request.getfixturevalue("moto_endpoint")
    return "sqs", f"{queue}|{endpoint}", SQSBroker(queue, endpoint_url=endpoint, visibility_timeout=2)


def consume_until(worker, done, timeout: float = 20.0, settle: float = 0.5) -> None:
    """Consume until `done()`, then a little longer so a duplicate still in flight would show."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        worker.run_once(wait_seconds=0.3)
    settle_until = time.monotonic() + settle
    while time.monotonic() < settle_until:
        worker.run_once(wait_seconds=0.1)


def counts(engine) -> tuple[int, int, int]:
    with Session(engine) as s:
        return (s.scalar(select(func.count()).where(OutboxEvent.published_at.is_not(None))),
                s.scalar(select(func.count()).select_from(ProcessedMessage)),
                s.scalar(select(func.count()).select_from(UsageEvent)))


def test_relay_killed_mid_batch_republishes_and_nothing_is_sent_twice(
    engine, db_url, broker_setup, fake_sendgrid, fake_twilio, tmp_path
):
    kind, target, broker = broker_setup
    customer = seed_customer(engine)
    for n in range(1, 6):
        place_order(engine, customer, n=n)

    proc = spawn("relay", kind, target, db_url, tmp_path / "marker", {})
    assert wait_then_kill(proc, tmp_path / "marker") == "3"
    assert counts(engine)[0] == 0  # the killed relay's transaction never committed

    Relay(engine, broker).drain()  # a new relay publishes all five again (three of them twice)
    assert counts(engine)[0] == 5
    worker = make_worker(engine, broker, fake_sendgrid, fake_twilio)
    consume_until(worker, lambda: worker.stats.deliveries >= (8 if kind == "redis" else 5))

    if kind == "redis":
        assert worker.stats.deliveries == 8 and worker.stats.duplicates == 6  # 3 events came twice
    else:
        assert worker.stats.deliveries == 5  # the FIFO queue dropped the republished copies (dedup id = event id)
    assert len(fake_sendgrid.requests) == 5 and len(fake_twilio.requests) == 5
    assert fake_sendgrid.contract_violations == [] and fake_twilio.contract_violations == []
    assert counts(engine) == (5, 10, 10)


def test_worker_killed_after_sending_before_ack_sends_nothing_twice(
    engine, db_url, broker_setup, fake_sendgrid, fake_twilio, tmp_path
):
    kind, target, broker = broker_setup
    customer = seed_customer(engine)
    place_order(engine, customer, n=1)
    place_order(engine, customer, n=2)
    Relay(engine, broker).drain()

    env = {"RPS_SENDGRID_API_KEY": "SG.test", "RPS_SENDGRID_BASE_URL": fake_sendgrid.url,
           "RPS_TWILIO_ACCOUNT_SID": SID, "RPS_TWILIO_AUTH_TOKEN": "token", "RPS_TWILIO_BASE_URL": fake_twilio.url}
    proc = spawn("worker", kind, target, db_url, tmp_path / "marker", env)
    first = wait_then_kill(proc, tmp_path / "marker")
    assert len(fake_sendgrid.requests) == 1 and len(fake_twilio.requests) == 1
    with Session(engine) as s:
        assert set(s.scalars(select(ProcessedMessage.event_id))) == {first}

    time.sleep(0.4)  # the dead consumer's delivery becomes reclaimable (Redis idle time / SQS visibility)
    worker = make_worker(engine, broker, fake_sendgrid, fake_twilio)
    consume_until(worker, lambda: worker.stats.deliveries >= 2)

    assert len(fake_sendgrid.requests) == 2 and len(fake_twilio.requests) == 2
    assert len(fake_sendgrid.effective) == 2 and len(fake_twilio.effective) == 2
    assert counts(engine) == (2, 4, 4)


def test_provider_down_for_a_while_and_429_then_200_over_real_brokers(engine, broker_setup, fake_sendgrid, fake_twilio):
    """SendGrid answers 503 to 7 requests (3 attempts per delivery: two deliveries fail, the broker
    hands the event out a third time); Twilio answers 429 once. Each message goes out exactly once."""
    from integrations.fakes import Scripted

    _, _, broker = broker_setup
    fake_sendgrid.down_for(7)
    fake_twilio.script.append(Scripted(429, {"code": 20429, "message": "Too Many Requests", "status": 429}, {"Retry-After": "0"}))
    place_order(engine, seed_customer(engine))
    Relay(engine, broker).drain()
    worker = make_worker(engine, broker, fake_sendgrid, fake_twilio, max_deliveries=5)
    consume_until(worker, lambda: len(fake_sendgrid.accepted) == 1, timeout=30)

    assert [r.status for r in fake_sendgrid.requests] == [503] * 7 + [202]
    assert [r.status for r in fake_twilio.requests] == [429, 201]  # the SMS went out on the first delivery
    assert worker.stats.retried == 2 and worker.stats.dead_lettered == 0
    assert counts(engine) == (1, 2, 2)
