"""The relay: claim unpublished outbox rows, publish them, mark them published, in one transaction.

PostgreSQL: rows are claimed with `FOR UPDATE SKIP LOCKED`, so several relays share the work; a
transaction-scoped advisory lock per aggregate, and publishing only the unbroken run of that
aggregate's oldest unpublished events the relay holds, keep each aggregate in order across relays.
SQLite (one writer): the claim starts with a write, so the batch holds the database's write lock.

At least once: a relay killed after publishing but before its commit leaves the rows
unpublished, and the next relay publishes them again; consumers deduplicate on the event id.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select, text, tuple_, update
from sqlalchemy.orm import Session

from rps_port.outbox.brokers.base import Broker
from rps_port.outbox.models import OutboxEvent
from rps_port.timeutil import iso_ms, utcnow

log = logging.getLogger("rps_port.outbox.relay")


def envelope(row: OutboxEvent) -> dict[str, Any]:
    """What goes on the wire: the Debezium-style columns plus attribution."""
    return {
        "id": row.id,
        "seq": row.seq,
        "aggregatetype": row.aggregatetype,
        "aggregateid": row.aggregateid,
        "type": row.type,
        "payload": row.payload,
        "org_id": row.org_id,
        "client_id": row.client_id,
        "project_id": row.project_id,
        "created_at": iso_ms(row.created_at),
    }


def _aggregate_lock_key(aggregatetype: str, aggregateid: str) -> int:
    digest = hashlib.blake2b(f"{aggregatetype}\x00{aggregateid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _claim_postgres(session: Session, batch_size: int) -> list[OutboxEvent]:
    rows = list(
        session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.published_at.is_(None))
            .order_by(OutboxEvent.seq)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
    )
    by_aggregate: dict[tuple[str, str], list[OutboxEvent]] = {}
    for row in rows:
        by_aggregate.setdefault((row.aggregatetype, row.aggregateid), []).append(row)
    if not by_aggregate:
        return []
    # One round trip for all the advisory locks, one for the aggregates' unpublished events.
    keys = {agg: _aggregate_lock_key(*agg) for agg in by_aggregate}
    locked = {
        k
        for k, got in session.execute(
            text("SELECT k, pg_try_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
            {"keys": list(keys.values())},
        )
        if got
    }
    mine = [agg for agg in by_aggregate if keys[agg] in locked]
    if not mine:
        return []
    pending: dict[tuple[str, str], list[int]] = {}
    for agg_type, agg_id, seq in session.execute(
        select(OutboxEvent.aggregatetype, OutboxEvent.aggregateid, OutboxEvent.seq)
        .where(
            tuple_(OutboxEvent.aggregatetype, OutboxEvent.aggregateid).in_(mine),
            OutboxEvent.published_at.is_(None),
            OutboxEvent.seq <= rows[-1].seq,
        )
        .order_by(OutboxEvent.seq)
    ):
        pending.setdefault((agg_type, agg_id), []).append(seq)
    claimed: list[OutboxEvent] = []
    for agg in mine:
        # Publish only the run of this aggregate's oldest unpublished events that we hold: a row
        # another relay has locked (or a gap) stops the run, so nothing overtakes an earlier event.
        for row, oldest in zip(by_aggregate[agg], pending.get(agg, []), strict=False):
            if row.seq != oldest:
                break
            claimed.append(row)
    claimed.sort(key=lambda r: r.seq)
    return claimed


def _claim_sqlite(session: Session, batch_size: int) -> list[OutboxEvent]:
    # Writing first takes SQLite's write lock before we read, so no other writer interleaves.
    heads = select(OutboxEvent.seq).where(OutboxEvent.published_at.is_(None)).order_by(OutboxEvent.seq)
    session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.seq.in_(heads.limit(batch_size).scalar_subquery()))
        .values(attempts=OutboxEvent.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return list(
        session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.published_at.is_(None))
            .order_by(OutboxEvent.seq)
            .limit(batch_size)
            .execution_options(populate_existing=True)
        )
    )


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    failures: int = 0


class Relay:
    def __init__(
        self,
        engine: Engine,
        broker: Broker,
        *,
        batch_size: int = 100,
        on_published: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.batch_size = batch_size
        self.on_published = on_published
        self.stats = RelayStats()

    def run_once(self) -> int:
        """Publish one batch; returns how many events were published (0 when there was nothing)."""
        sqlite = self.engine.dialect.name == "sqlite"
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                with session.begin():
                    rows = _claim_sqlite(session, self.batch_size) if sqlite else _claim_postgres(
                        session, self.batch_size
                    )
                    if not rows:
                        return 0
                    messages = [envelope(r) for r in rows]
                    self.broker.publish(messages)
                    values: dict[str, Any] = {"published_at": utcnow(), "last_error": None}
                    if not sqlite:  # the SQLite claim counted the attempt already
                        values["attempts"] = OutboxEvent.attempts + 1
                    session.execute(
                        update(OutboxEvent)
                        .where(OutboxEvent.seq.in_([r.seq for r in rows]))
                        .values(**values)
                        .execution_options(synchronize_session=False)
                    )
            except Exception as exc:
                self.stats.failures += 1
                log.warning("relay: publishing a batch failed: %s", type(exc).__name__)
                self._record_failure(exc)
                raise
        self.stats.published += len(messages)
        self.stats.batches += 1
        if self.on_published:
            self.on_published(messages)
        return len(messages)

    def _record_failure(self, exc: Exception) -> None:
        try:
            with Session(self.engine) as session, session.begin():
                session.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.published_at.is_(None))
                    .where(
                        OutboxEvent.seq.in_(
                            select(OutboxEvent.seq)
                            .where(OutboxEvent.published_at.is_(None))
                            .order_by(OutboxEvent.seq)
                            .limit(self.batch_size)
                            .scalar_subquery()
                        )
                    )
                    .values(attempts=OutboxEvent.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:500])
                    .execution_options(synchronize_session=False)
                )
        except Exception:  # the failure is already being raised; this is bookkeeping only
            log.debug("relay: could not record the failure", exc_info=True)

    def drain(self, max_batches: int | None = None) -> int:
        """Publish until nothing is left (or `max_batches`); returns the number published."""
        total = 0
        batches = 0
        while max_batches is None or batches < max_batches:
            n = self.run_once()
            batches += 1
            total += n
            if n == 0:
                break
        return total

    def run_forever(self, *, poll_interval: float = 0.5, stop: Callable[[], bool] = lambda: False) -> None:
        backoff = poll_interval
        while not stop():
            try:
                n = self.run_once()
                backoff = poll_interval
            except Exception:
                n = 0
                backoff = min(backoff * 2, 30.0)
            if n == 0:
                time.sleep(backoff)
