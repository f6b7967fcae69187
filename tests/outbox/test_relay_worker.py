"""Outbox -> relay -> in-process broker -> worker -> providers + usage, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

from integrations.fakes import Scripted
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outbox.conftest import emit_for, fail_charge, make_worker, place_order, seed_customer
from rps_port.outbox.brokers.inprocess import InProcessBroker
from rps_port.outbox.models import OutboxEvent
from rps_port.outbox.relay import Relay
from rps_port.outbox.state import DeadLetter, ProcessedMessage
from rps_port.outbox.worker import list_dead_letters, replay_dead_letters
from rps_port.usage.models import UsageEvent


def drain(relay: Relay, worker) -> None:
    relay.drain()
    while worker.run_once(wait_seconds=0.05):
        pass


def test_placed_order_sends_one_email_and_one_sms_and_records_cost(engine, fake_sendgrid, fake_twilio):
    customer = seed_customer(engine)
    _, event_id = place_order(engine, customer)
    broker = InProcessBroker()
    relay, worker = Relay(engine, broker), make_worker(engine, broker, fake_sendgrid, fake_twilio)
    drain(relay, worker)

    assert len(fake_sendgrid.accepted) == 1 and len(fake_twilio.accepted) == 1
    assert fake_sendgrid.contract_violations == [] and fake_twilio.contract_violations == []
    assert fake_twilio.accepted[0].form()["To"] == "+15551230001"
    assert "RPS-2026-000001" in fake_sendgrid.accepted[0].json()["subject"]
    with Session(engine) as s:
        assert s.scalar(select(OutboxEvent.published_at).where(OutboxEvent.id == event_id)) is not None
        usage = {u.type: u for u in s.scalars(select(UsageEvent))}
    assert usage["email.sent"].cost == Decimal("0.00035")
    assert usage["sms.sent"].quantity == 1 and usage["sms.sent"].country == "US"
    assert usage["sms.sent"].cost == Decimal("0.0083")
    assert usage["sms.sent"].org_id == "5f0000000000000000000001"


def test_redelivered_event_sends_nothing_twice(engine, fake_sendgrid, fake_twilio):
    customer = seed_customer(engine)
    place_order(engine, customer)
    broker = InProcessBroker()
    relay, worker = Relay(engine, broker), make_worker(engine, broker, fake_sendgrid, fake_twilio)
    relay.drain()
    [delivery] = broker.receive(10, 0.1)
    worker.process(delivery)
    broker.publish([delivery.message])  # the broker hands the same event out again
    while worker.run_once(wait_seconds=0.05):
        pass
    assert len(fake_sendgrid.requests) == 1 and len(fake_twilio.requests) == 1
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(UsageEvent)) == 2


def test_customer_without_phone_gets_email_only(engine, fake_sendgrid, fake_twilio):
    customer = seed_customer(engine, phone=None)
    place_order(engine, customer)
    broker = InProcessBroker()
    drain(Relay(engine, broker), make_worker(engine, broker, fake_sendgrid, fake_twilio))
    assert len(fake_sendgrid.accepted) == 1 and fake_twilio.requests == []
    with Session(engine) as s:
        outcomes = dict(s.execute(select(ProcessedMessage.handler, ProcessedMessage.outcome)).all())
    assert outcomes == {"order-email": "sent", "order-sms": "skipped: customer has no phone"}


def test_failed_charge_sends_sms(engine, fake_sendgrid, fake_twilio):
    customer = seed_customer(engine, phone="+44 7700 900123")
    fail_charge(engine, customer)
    broker = InProcessBroker()
    drain(Relay(engine, broker), make_worker(engine, broker, fake_sendgrid, fake_twilio))
    assert fake_sendgrid.requests == []
    [sms] = fake_twilio.accepted
    assert sms.form()["To"] == "+447700900123" and "5.00 EUR" in sms.form()["Body"]
    with Session(engine) as s:
        [row] = s.scalars(select(UsageEvent))
    assert row.country == "GB" and row.cost == Decimal("0.0524")


def test_events_of_one_aggregate_publish_in_order(engine):
    customer = seed_customer(engine)
    order_id, first = place_order(engine, customer)
    second = emit_for(engine, order_id, "order.paid")
    broker = InProcessBroker()
    Relay(engine, broker, batch_size=1).drain()
    got = [d.message["id"] for d in broker.receive(10, 0.1)]
    assert got == [first, second]


def test_429_then_200_delivers_once(engine, fake_sendgrid, fake_twilio):
    fake_twilio.script.append(Scripted(429, {"code": 20429, "message": "Too Many Requests", "status": 429}, {"Retry-After": "0"}))
    customer = seed_customer(engine)
    place_order(engine, customer)
    broker = InProcessBroker()
    drain(Relay(engine, broker), make_worker(engine, broker, fake_sendgrid, fake_twilio))
    assert [r.status for r in fake_twilio.requests] == [429, 201]
    assert len(fake_twilio.effective) == 1


def test_provider_down_for_a_while_then_back(engine, fake_sendgrid, fake_twilio):
    # Each delivery makes 3 attempts; 7 failures outlast two deliveries, the third one succeeds.
    fake_sendgrid.down_for(7)
    customer = seed_customer(engine)
    place_order(engine, customer)
    broker = InProcessBroker()
    worker = make_worker(engine, broker, fake_sendgrid, fake_twilio, max_deliveries=5)
    drain(Relay(engine, broker), worker)
    assert len(fake_sendgrid.accepted) == 1 and len(fake_sendgrid.effective) == 1
    assert len(fake_twilio.accepted) == 1  # the SMS went out on the first delivery, never again
    assert list_dead_letters(engine) == []


def test_provider_down_too_long_is_dead_lettered_then_replayed(engine, fake_sendgrid, fake_twilio):
    fake_sendgrid.down_for(1000)
    customer = seed_customer(engine)
    _, event_id = place_order(engine, customer)
    broker = InProcessBroker()
    worker = make_worker(engine, broker, fake_sendgrid, fake_twilio, max_deliveries=2)
    drain(Relay(engine, broker), worker)
    [letter] = list_dead_letters(engine)
    assert letter.handler == "order-email" and letter.event_id == event_id
    assert "gave up after 2 deliveries" in letter.reason and letter.status_code == 503
    assert broker.pending() == 0

    fake_sendgrid.down_for(0)
    assert replay_dead_letters(worker) == [(letter.id, "sent")]
    assert len(fake_sendgrid.accepted) == 1
    assert list_dead_letters(engine) == []
    assert replay_dead_letters(worker) == []


def test_permanent_4xx_is_dead_lettered_with_the_provider_error(engine, fake_sendgrid, fake_twilio):
    fake_twilio.script.append(Scripted(400, {"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400}))
    customer = seed_customer(engine, phone="+15005550001")
    place_order(engine, customer)
    broker = InProcessBroker()
    drain(Relay(engine, broker), make_worker(engine, broker, fake_sendgrid, fake_twilio))
    [letter] = list_dead_letters(engine)
    assert letter.handler == "order-sms" and letter.status_code == 400
    assert "21211" in letter.reason and "not a valid phone number" in letter.reason
    assert len(fake_twilio.requests) == 1  # not retried
    assert len(fake_sendgrid.accepted) == 1


def test_missing_order_is_dead_lettered_not_dropped(engine, fake_sendgrid, fake_twilio):
    emit_for(engine, "0" * 24, "order.paid")
    broker = InProcessBroker()
    drain(Relay(engine, broker), make_worker(engine, broker, fake_sendgrid, fake_twilio))
    with Session(engine) as s:
        reasons = sorted(s.scalars(select(DeadLetter.reason)))
    assert reasons == [f"order {'0' * 24} not found"] * 2
