"""The worker: receive deliveries, run each event's handlers once, acknowledge.

Idempotent consumer: a handler's effects (its usage rows) and its `processed_messages` row are
committed in one transaction, and a (handler, event) already there is skipped, so a redelivered
event sends nothing twice. A handler that fails transiently leaves the delivery unacknowledged
(the broker hands it out again); after `max_deliveries`, or at once for a permanent 4xx, the
(handler, event) goes to `dead_letters` with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rps_port.integrations.errors import PermanentProviderError, ProviderError
from rps_port.outbox.brokers.base import Broker, Delivery
from rps_port.outbox.handlers import Context, Handler, Outcome, Unprocessable
from rps_port.outbox.state import DeadLetter, ProcessedMessage
from rps_port.timeutil import utcnow
from rps_port.usage.ledger import record_usage

log = logging.getLogger("rps_port.outbox.worker")

DEAD = "dead-lettered"


@dataclass
class WorkerStats:
    deliveries: int = 0
    sent: int = 0
    skipped: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retried: int = 0


class Worker:
    def __init__(
        self,
        ctx: Context,
        broker: Broker,
        handlers: Iterable[Handler],
        *,
        max_deliveries: int = 5,
        after_effects: Callable[[Delivery], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.broker = broker
        self.handlers = list(handlers)
        self.max_deliveries = max_deliveries
        self.after_effects = after_effects  # test seam: runs after commit, before the ack
        self.stats = WorkerStats()

    @property
    def engine(self) -> Engine:
        return self.ctx.engine

    def handlers_for(self, event_type: str) -> list[Handler]:
        return [h for h in self.handlers if event_type in h.event_types]

    def run_once(self, max_messages: int = 10, wait_seconds: float = 1.0) -> int:
        deliveries = self.broker.receive(max_messages, wait_seconds)
        for delivery in deliveries:
            self.process(delivery)
        return len(deliveries)

    def run_forever(self, *, stop: Callable[[], bool] = lambda: False, idle: Callable[[], None] | None = None) -> None:
        while not stop():
            if self.run_once() == 0 and idle is not None:
                idle()

    def process(self, delivery: Delivery) -> bool:
        """Run the delivery's handlers; ack when none is left to retry. True when acknowledged."""
        self.stats.deliveries += 1
        message = delivery.message
        retry = False
        for handler in self.handlers_for(message["type"]):
            if self._done(handler.name, message["id"]):
                self.stats.duplicates += 1
                continue
            retry |= not self.run_handler(handler, message, delivery.attempt)
        if retry:
            self.stats.retried += 1
            nack = getattr(self.broker, "nack", None)
            if nack is not None:
                nack(delivery)
            return False
        if self.after_effects:
            self.after_effects(delivery)
        self.broker.ack(delivery)
        return True

    def run_handler(self, handler: Handler, message: dict[str, Any], attempt: int) -> bool:
        """True when the (handler, event) is settled: done, skipped or dead-lettered."""
        try:
            outcome = handler(message, self.ctx)
        except PermanentProviderError as exc:
            self._dead_letter(handler, message, str(exc), exc.status_code, attempt)
            return True
        except Unprocessable as exc:
            self._dead_letter(handler, message, str(exc), None, attempt)
            return True
        except Exception as exc:  # transient provider trouble, or a bug: retried, then dead-lettered
            reason = str(exc) if isinstance(exc, ProviderError) else f"{type(exc).__name__}: {exc}"
            log.warning("%s %s: attempt %d failed: %s", handler.name, message["id"], attempt, reason)
            if attempt >= self.max_deliveries:
                status = exc.status_code if isinstance(exc, ProviderError) else None
                self._dead_letter(
                    handler, message, f"gave up after {attempt} deliveries: {reason}", status, attempt
                )
                return True
            return False
        self._commit(handler, message, outcome)
        return True

    def _done(self, handler: str, event_id: str) -> bool:
        with Session(self.engine) as session:
            return session.get(ProcessedMessage, (handler, event_id)) is not None

    def _commit(self, handler: Handler, message: dict[str, Any], outcome: Outcome) -> None:
        try:
            with Session(self.engine) as session, session.begin():
                session.add(
                    ProcessedMessage(
                        handler=handler.name,
                        event_id=message["id"],
                        outcome=outcome.outcome,
                        provider_ref=outcome.provider_ref,
                        processed_at=utcnow(),
                    )
                )
                session.flush()
                for i, item in enumerate(outcome.usage):
                    record_usage(
                        session,
                        idempotency_id=f"{handler.name}:{message['id']}" + (f":{i}" if i else ""),
                        type=item.type,
                        quantity=item.quantity,
                        unit=item.unit,
                        provider=item.provider,
                        country=item.country,
                        org_id=message["org_id"],
                        client_id=message.get("client_id"),
                        project_id=message.get("project_id"),
                        meta={"event_id": message["id"], "event_type": message["type"], **item.meta},
                        catalog=self.ctx.catalog,
                    )
        except IntegrityError:
            # Another worker committed the same (handler, event) first: its effects stand.
            self.stats.duplicates += 1
            return
        if outcome.outcome == "sent":
            self.stats.sent += 1
        else:
            self.stats.skipped += 1

    def _dead_letter(
        self, handler: Handler, message: dict[str, Any], reason: str, status: int | None, attempt: int
    ) -> None:
        log.error("%s %s: dead-lettered: %s", handler.name, message["id"], reason)
        try:
            with Session(self.engine) as session, session.begin():
                session.add(ProcessedMessage(handler=handler.name, event_id=message["id"], outcome=DEAD))
                session.add(
                    DeadLetter(
                        handler=handler.name,
                        event_id=message["id"],
                        event_type=message["type"],
                        org_id=message.get("org_id"),
                        message=message,
                        reason=reason[:2000],
                        status_code=status,
                        deliveries=attempt,
                    )
                )
        except IntegrityError:
            self.stats.duplicates += 1
            return
        self.stats.dead_lettered += 1


def list_dead_letters(engine: Engine, *, include_replayed: bool = False, limit: int = 100) -> list[DeadLetter]:
    with Session(engine, expire_on_commit=False) as session:
        query = select(DeadLetter).order_by(DeadLetter.id).limit(limit)
        if not include_replayed:
            query = query.where(DeadLetter.replayed_at.is_(None))
        return list(session.scalars(query))


def replay_dead_letters(worker: Worker, ids: list[int] | None = None) -> list[tuple[int, str]]:
    """Run each dead letter's handler again (with the same event id, so the same idempotency key)."""
    results: list[tuple[int, str]] = []
    by_name = {h.name: h for h in worker.handlers}
    for letter in list_dead_letters(worker.engine, limit=10_000):
        if ids is not None and letter.id not in ids:
            continue
        handler = by_name.get(letter.handler)
        if handler is None:
            results.append((letter.id, f"no handler named {letter.handler}"))
            continue
        with Session(worker.engine) as session, session.begin():
            session.execute(
                delete(ProcessedMessage).where(
                    ProcessedMessage.handler == letter.handler,
                    ProcessedMessage.event_id == letter.event_id,
                    ProcessedMessage.outcome == DEAD,
                )
            )
        before = worker.stats.dead_lettered
        settled = worker.run_handler(handler, letter.message, attempt=worker.max_deliveries)
        if worker.stats.dead_lettered > before:
            outcome = "dead-lettered again"
        elif settled:
            with Session(worker.engine) as session:
                done = session.get(ProcessedMessage, (letter.handler, letter.event_id))
                outcome = done.outcome if done else "settled"
        else:
            outcome = "failed"
        with Session(worker.engine) as session, session.begin():
            row = session.get(DeadLetter, letter.id)
            row.replayed_at = utcnow()
            row.replay_outcome = outcome[:200]
        results.append((letter.id, outcome))
    return results
