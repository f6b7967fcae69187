"""Observability for the ETL, the outbox relay and the worker through the seams they already offer,
so none of them has to know metric names:

    run_backfill(..., progress=etl_progress(cli_progress))   # documents/rejects per collection, logs
    observe_relay(relay)        # published count, commit-to-publish latency, pending gauge
    observe_worker(worker)      # a span, a log context and outcome/duration metrics per handler run

Each returns what it was given (or a callback), so wiring is one line where the object is built.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rps_port.observability import metrics
from rps_port.observability.logging import get_logger, log_context
from rps_port.observability.tracing import span

log = get_logger("rps_port.observability.hooks")
Progress = Callable[[dict[str, Any]], None]


# ---------------------------------------------------------------------------------------- ETL


def etl_progress(inner: Progress | None = None) -> Progress:
    """A backfill progress callback that counts documents per collection and outcome, then calls `inner`.

    Batch events carry running totals per range; the difference to the previous event of the same
    range is what that batch added (a resumed range starts from its checkpoint, counted already)."""
    seen: dict[tuple[str, str, str | None], tuple[int, int, int]] = {}

    def progress(event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "batch":
            collection = event["collection"]
            lo, hi = (event.get("range") or ["", None])[:2]
            key = (collection, lo, hi)
            now = (event.get("loaded", 0), event.get("rejected", 0), event.get("skipped", 0))
            if event.get("resumed"):
                seen[key] = now
            else:
                before = seen.get(key, (0, 0, 0))
                loaded, rejected, skipped = (max(0, a - b) for a, b in zip(now, before, strict=True))
                metrics.record_etl_documents(collection, loaded=loaded, rejected=rejected, skipped=skipped)
                seen[key] = now
        elif kind == "start":
            log.info("etl run started", extra={"run_id": event.get("run_id"), "collections": event.get("collections")})
        elif kind == "reconciled":
            log.info("etl collection reconciled", extra={k: v for k, v in event.items() if k != "event"})
        if inner is not None:
            inner(event)

    return progress


# ---------------------------------------------------------------------------------------- outbox relay


def _age_seconds(created_at: Any) -> float | None:
    if not created_at:
        return None
    try:
        when = datetime.fromisoformat(str(created_at))
    except ValueError:
        return None
    return max(0.0, time.time() - when.timestamp())


def refresh_outbox_pending(engine: Any) -> int:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from rps_port.outbox.models import OutboxEvent

    with Session(engine) as s:
        pending = int(s.scalar(select(func.count()).where(OutboxEvent.published_at.is_(None))) or 0)
    metrics.OUTBOX_PENDING.set(pending)
    return pending


def observe_relay(relay: Any, *, refresh_pending: bool = True) -> Any:
    """Chain onto the relay's `on_published`; failures are counted by wrapping `run_once`."""
    previous = relay.on_published
    original_run_once = relay.run_once

    def on_published(messages: list[dict[str, Any]]) -> None:
        metrics.OUTBOX_PUBLISHED.labels("published").inc(len(messages))
        for message in messages:
            age = _age_seconds(message.get("created_at"))
            if age is not None:
                metrics.OUTBOX_PUBLISH_LATENCY.observe(age)
        if previous is not None:
            previous(messages)

    def run_once() -> int:
        with span("outbox.relay.batch"):
            try:
                n = original_run_once()
            except Exception:
                metrics.OUTBOX_PUBLISHED.labels("failed").inc()
                raise
        if refresh_pending:
            refresh_outbox_pending(relay.engine)
        return n

    relay.on_published = on_published
    relay.run_once = run_once
    return relay


# ---------------------------------------------------------------------------------------- worker


def observe_worker(worker: Any) -> Any:
    """Wrap the worker's `run_handler`: one span (continuing the event's trace when the message carries
    `traceparent`), a log context (handler, event id/type, org) and `rps_worker_jobs_total` /
    `rps_worker_job_duration_seconds` by handler and outcome."""
    original = worker.run_handler

    def run_handler(handler: Any, message: dict[str, Any], attempt: int) -> bool:
        name = getattr(handler, "name", type(handler).__name__)
        stats = worker.stats
        before = (stats.sent, stats.skipped, stats.dead_lettered, stats.duplicates)
        carrier = message.get("trace") if isinstance(message.get("trace"), dict) else None
        started = time.perf_counter()
        with log_context(handler=name, event_id=message.get("id"), event_type=message.get("type"),
                         org=message.get("org_id"), attempt=attempt), \
                span("worker.job", carrier=carrier, handler=name, event_type=message.get("type"),
                     event_id=message.get("id"), attempt=attempt) as s:
            try:
                settled = original(handler, message, attempt)
            except Exception:
                metrics.record_worker_job(name, "failed", time.perf_counter() - started)
                raise
            after = (stats.sent, stats.skipped, stats.dead_lettered, stats.duplicates)
            if not settled:
                outcome = "retried"
            elif after[2] > before[2]:
                outcome = "dead"
            elif after[3] > before[3]:
                outcome = "duplicate"
            elif after[1] > before[1]:
                outcome = "skipped"
            else:
                outcome = "succeeded"
            s.set_attribute("outcome", outcome)
            duration = time.perf_counter() - started
            metrics.record_worker_job(name, outcome, duration)
            log.info("job %s", outcome, extra={"duration_ms": round(duration * 1000, 3)})
            return settled

    worker.run_handler = run_handler
    return worker
