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
    """A backfill progress callback that records the run, then calls `inner`.

    Metrics: documents per collection and outcome. Batch events carry running totals per range; the
    difference to the previous event of the same range is what that batch added (a resumed range
    starts from its checkpoint, counted already). Traces: an `etl.run` span, an `etl.collection` span
    per collection and an `etl.batch` span per committed batch (from the previous event of its range
    to this one). Logs: the start and each collection's reconciliation."""
    from opentelemetry import trace

    from rps_port.observability.tracing import tracer

    seen: dict[tuple[str, str, str | None], tuple[int, int, int]] = {}
    last_at: dict[tuple[str, str, str | None], int] = {}
    coll_start: dict[str, int] = {}
    spans: dict[str, Any] = {}
    state: dict[str, Any] = {"run": None, "collections": 0, "reconciled": 0}

    def _child(name: str, parent: Any, start: int | None = None, **attrs: Any) -> Any:
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        clean = {k: (v if isinstance(v, (str, bool, int, float)) else str(v)) for k, v in attrs.items() if v is not None}
        return tracer().start_span(name, context=ctx, attributes=clean, start_time=start)

    def progress(event: dict[str, Any]) -> None:
        kind = event.get("event")
        now = time.time_ns()
        if kind == "start":
            state["run"] = _child("etl.run", None, run_id=event.get("run_id"), resumed=event.get("resumed"))
            state["collections"] = len(event.get("collections") or [])
            log.info("etl run started", extra={"run_id": event.get("run_id"), "collections": event.get("collections")})
        elif kind == "collection":
            name = event["collection"]
            spans[name] = _child("etl.collection", state["run"], start=now, collection=name,
                                 total=event.get("total"), ranges=event.get("ranges"))
            coll_start[name] = now  # a range's first batch starts when its collection did
        elif kind == "batch":
            collection = event["collection"]
            lo, hi = (event.get("range") or ["", None])[:2]
            key = (collection, lo, hi)
            totals = (event.get("loaded", 0), event.get("rejected", 0), event.get("skipped", 0))
            if event.get("resumed"):
                seen[key] = totals
            else:
                before = seen.get(key, (0, 0, 0))
                loaded, rejected, skipped = (max(0, a - b) for a, b in zip(totals, before, strict=True))
                metrics.record_etl_documents(collection, loaded=loaded, rejected=rejected, skipped=skipped)
                seen[key] = totals
                start = last_at.get(key) or coll_start.get(collection) or now
                batch = _child("etl.batch", spans.get(collection) or state["run"], start=start,
                               collection=collection, lo=lo, hi=hi, documents=event.get("documents"),
                               loaded=loaded, rejected=rejected, skipped=skipped)
                batch.end(end_time=now)
            last_at[key] = now
        elif kind == "reconciled":
            fields = {k: v for k, v in event.items() if k != "event"}
            log.info("etl collection reconciled", extra=fields)
            span_ = spans.pop(str(event.get("collection")), None)
            if span_ is not None:
                for k in ("loaded", "rejected", "balanced"):
                    if isinstance(fields.get(k), (bool, int)):
                        span_.set_attribute(k, fields[k])
                span_.end()
            state["reconciled"] += 1
            if state["run"] is not None and state["reconciled"] >= state["collections"]:
                state["run"].end()
                state["run"] = None
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
