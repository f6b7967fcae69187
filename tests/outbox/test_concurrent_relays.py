"""Several relays at once: every event published exactly once (no crash), each aggregate in order."""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outbox.conftest import ORG
from rps_port.db import session_scope
from rps_port.outbox.brokers.inprocess import InProcessBroker
from rps_port.outbox.models import OutboxEvent, emit
from rps_port.outbox.relay import Relay


def test_three_relays_share_the_work_and_keep_aggregate_order(engine):
    with session_scope(engine) as s:
        for i in range(240):
            emit(s, aggregate_type="order", aggregate_id=f"agg{i % 8}", event_type="order.paid",
                 payload={"i": i}, org_id=ORG)
    broker = InProcessBroker()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            relay = Relay(engine, broker, batch_size=7)
            while relay.run_once():
                pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    Relay(engine, broker).drain()  # a relay that found only locked rows may have stopped early

    got = [d.message for d in broker.receive(1000, 0.1)]
    assert sorted(m["payload"]["i"] for m in got) == list(range(240))
    for agg in {m["aggregateid"] for m in got}:
        seqs = [m["seq"] for m in got if m["aggregateid"] == agg]
        assert seqs == sorted(seqs), f"{agg} published out of order"
    with Session(engine) as s:
        assert s.scalar(select(func.count()).where(OutboxEvent.published_at.is_(None))) == 0
