"""Every Prometheus metric of rps-port, defined once, in one registry.

Import the objects (or the small helpers) from here; never create metrics elsewhere, so names,
labels and buckets stay documented in one place (docs/observability.md). Label values are always
bounded: route *templates*, collection names, handler names, endpoint templates, fixed outcomes.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

# OpenTelemetry HTTP server semantic conventions, exported Prometheus-style (dots become underscores).
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

UNMATCHED_ROUTE = "__unmatched__"

# ---------------------------------------------------------------------------------------- HTTP server
HTTP_SERVER_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests.",
    ["http_request_method", "http_route", "http_response_status_code"],
    buckets=_HTTP_BUCKETS,
    registry=REGISTRY,
)
HTTP_SERVER_ACTIVE = Gauge(
    "http_server_active_requests",
    "Number of HTTP server requests in flight.",
    ["http_request_method"],
    registry=REGISTRY,
)

# ---------------------------------------------------------------------------------------- rate limiter
RATELIMIT_DECISIONS = Counter(
    "rps_ratelimit_decisions_total",
    "Rate limiter decisions. decision: allowed | limited | failed_open | failed_closed.",
    ["scope", "decision"],
    registry=REGISTRY,
)
RATELIMIT_BACKEND_FAILURES = Counter(
    "rps_ratelimit_backend_failures_total",
    "Rate limit storage (Redis) errors; each one is also a failed_open or failed_closed decision.",
    registry=REGISTRY,
)

# ---------------------------------------------------------------------------------------- ETL
ETL_DOCUMENTS = Counter(
    "rps_etl_documents_total",
    "Legacy documents processed by the ETL. outcome: loaded | rejected | skipped.",
    ["collection", "outcome"],
    registry=REGISTRY,
)
ETL_REJECTS = Counter(
    "rps_etl_rejects_total",
    "Legacy documents rejected by the mapping (with a reason stored in the rejects table).",
    ["collection"],
    registry=REGISTRY,
)
ETL_LAG = Gauge(
    "rps_etl_lag_seconds",
    "Incremental sync lag: now minus the updatedAt of the newest source change applied.",
    ["collection"],
    registry=REGISTRY,
)
ETL_RANGE_DURATION = Histogram(
    "rps_etl_range_duration_seconds",
    "Time to process one _id range.",
    ["collection"],
    buckets=_JOB_BUCKETS,
    registry=REGISTRY,
)

# ---------------------------------------------------------------------------------------- outbox + workers
OUTBOX_PENDING = Gauge(
    "rps_outbox_pending",
    "Outbox events written but not yet published.",
    registry=REGISTRY,
)
OUTBOX_PUBLISH_LATENCY = Histogram(
    "rps_outbox_publish_latency_seconds",
    "Time from an outbox event's commit to its publication on the broker.",
    buckets=_JOB_BUCKETS,
    registry=REGISTRY,
)
OUTBOX_PUBLISHED = Counter(
    "rps_outbox_published_total",
    "Outbox publication attempts. outcome: published | failed.",
    ["outcome"],
    registry=REGISTRY,
)
WORKER_JOBS = Counter(
    "rps_worker_jobs_total",
    "Background jobs by handler. outcome: succeeded | skipped | failed | retried | dead | duplicate.",
    ["handler", "outcome"],
    registry=REGISTRY,
)
WORKER_JOB_DURATION = Histogram(
    "rps_worker_job_duration_seconds",
    "Background job run time by handler.",
    ["handler"],
    buckets=_JOB_BUCKETS,
    registry=REGISTRY,
)

# ---------------------------------------------------------------------------------------- shadow + cutover
SHADOW_COMPARISONS = Counter(
    "rps_shadow_comparisons_total",
    "Shadow comparisons by endpoint template. outcome: match | mismatch | error (legacy or new failed).",
    ["endpoint", "outcome"],
    registry=REGISTRY,
)
SHADOW_MISMATCHES = Counter(
    "rps_shadow_mismatches_total",
    "Shadow comparisons whose canonical answers differed after noise subtraction.",
    ["endpoint"],
    registry=REGISTRY,
)
CUTOVER_STAGE = Gauge(
    "rps_cutover_stage",
    "1 for the current cutover stage, 0 for stages seen before in this process.",
    ["stage"],
    registry=REGISTRY,
)
CUTOVER_NEW_TRAFFIC_RATIO = Gauge(
    "rps_cutover_new_traffic_ratio",
    "Share of traffic the current stage routes to the new routers (0..1).",
    registry=REGISTRY,
)

# ---------------------------------------------------------------------------------------- outgoing calls
UPSTREAM_DURATION = Histogram(
    "rps_upstream_request_duration_seconds",
    "Outgoing calls: legacy proxy and providers. target: legacy | sendgrid | twilio | ...",
    ["target", "outcome"],
    buckets=_HTTP_BUCKETS,
    registry=REGISTRY,
)

# Pre-create the label sets we know, so dashboards and alerts see the series before the first event.
for _scope in ("principal", "org"):
    for _decision in ("allowed", "limited", "failed_open", "failed_closed"):
        RATELIMIT_DECISIONS.labels(_scope, _decision)
OUTBOX_PUBLISHED.labels("published")
OUTBOX_PUBLISHED.labels("failed")


# ---------------------------------------------------------------------------------------- helpers
def record_etl_documents(collection: str, *, loaded: int = 0, rejected: int = 0, skipped: int = 0) -> None:
    if loaded:
        ETL_DOCUMENTS.labels(collection, "loaded").inc(loaded)
    if rejected:
        ETL_DOCUMENTS.labels(collection, "rejected").inc(rejected)
        ETL_REJECTS.labels(collection).inc(rejected)
    if skipped:
        ETL_DOCUMENTS.labels(collection, "skipped").inc(skipped)


def set_etl_lag(collection: str, seconds: float) -> None:
    ETL_LAG.labels(collection).set(max(0.0, seconds))


def record_worker_job(handler: str, outcome: str, duration_seconds: float | None = None) -> None:
    WORKER_JOBS.labels(handler, outcome).inc()
    if duration_seconds is not None:
        WORKER_JOB_DURATION.labels(handler).observe(duration_seconds)


def record_shadow_comparison(endpoint: str, outcome: str) -> None:
    """outcome: match | mismatch | error. An unreachable legacy is an error, never a mismatch."""
    if outcome not in ("match", "mismatch", "error"):
        raise ValueError(f"shadow outcome must be match, mismatch or error, not {outcome!r}")
    SHADOW_COMPARISONS.labels(endpoint, outcome).inc()
    if outcome == "mismatch":
        SHADOW_MISMATCHES.labels(endpoint).inc()


def record_shadow_report(report: object) -> None:
    """Count a finished shadow run (`rps_port.shadow` ShadowReport) per endpoint: matches, mismatches
    and errors (a legacy or new side that could not answer). Racy and unmappable requests are
    neither matches nor mismatches and are left out, as in the report's own rate."""
    for stats in getattr(report, "endpoints", None) or []:
        for outcome, count in (("match", stats.matches), ("mismatch", stats.mismatches), ("error", stats.errors)):
            if count:
                SHADOW_COMPARISONS.labels(stats.endpoint, outcome).inc(count)
        if stats.mismatches:
            SHADOW_MISMATCHES.labels(stats.endpoint).inc(stats.mismatches)


_stages_seen: set[str] = set()


def set_cutover_stage(stage: str, new_traffic_ratio: float | None = None) -> None:
    for seen in _stages_seen:
        CUTOVER_STAGE.labels(seen).set(0)
    _stages_seen.add(stage)
    CUTOVER_STAGE.labels(stage).set(1)
    if new_traffic_ratio is not None:
        CUTOVER_NEW_TRAFFIC_RATIO.set(new_traffic_ratio)


def render_latest() -> tuple[bytes, str]:
    """The exposition text of the registry and its content type (for `/metrics`)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def sample_value(name: str, labels: dict[str, str] | None = None) -> float:
    """Current value of one sample (0.0 when absent); for tests and the cutover gates."""
    value = REGISTRY.get_sample_value(name, labels or {})
    return 0.0 if value is None else value
