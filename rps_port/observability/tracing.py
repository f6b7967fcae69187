"""OpenTelemetry tracing: one provider, `span()` for our own units of work, auto-instrumentation.

`span("etl.range", collection="orders", start=a, end=b)` wraps an ETL range or a worker handler;
`configure_tracing(settings)` exports over OTLP/HTTP when `settings.otlp_endpoint` is set;
`instrument_app(app)`, `instrument_httpx()`, `instrument_engine(engine)` switch on the FastAPI,
httpx (which also propagates W3C trace context to the legacy proxy and providers) and SQLAlchemy
instrumentations.

Spans are recorded only when something can receive them: an exporter is attached (OTLP from
settings, or a test's in-memory exporter) or the incoming request carries a sampled W3C trace
context (`traceparent` ...-01), which is honoured (ParentBased sampler) and propagated. Otherwise a
request gets a cheap non-recording span: its trace and span ids still appear in the log lines and
in `traceparent` sent downstream (not sampled), but no SDK span, attribute or SQL span is built.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

SERVICE_NAME = "rps-port"
_TRACER_NAME = "rps_port"
_lock = threading.Lock()
F = TypeVar("F", bound=Callable[..., Any])


class _Fanout(SpanProcessor):
    """Span processors that can be added and removed at runtime (tests attach in-memory exporters)."""

    def __init__(self) -> None:
        self.processors: list[SpanProcessor] = []

    def on_start(self, span, parent_context=None) -> None:
        for p in list(self.processors):
            p.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for p in list(self.processors):
            p.on_end(span)

    def shutdown(self) -> None:
        for p in list(self.processors):
            p.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(p.force_flush(timeout_millis) for p in list(self.processors))


_fanout = _Fanout()


# False when the process already had an SDK provider (a host application's): its sampler and
# exporters decide then, so nothing here skips span creation.
_own_sampler = True


def exporting() -> bool:
    """True when spans may go somewhere: an exporter of ours (OTLP, a test's in-memory one) is
    attached, or the provider is a host application's."""
    return bool(_fanout.processors) or not _own_sampler


class _WhenExporting(Sampler):
    """Root spans are sampled only while an exporter is attached: nothing is built to be dropped."""

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                      trace_state=None) -> SamplingResult:
        decision = Decision.RECORD_AND_SAMPLE if _fanout.processors else Decision.DROP
        return SamplingResult(decision, attributes if decision is Decision.RECORD_AND_SAMPLE else None,
                              trace_state)

    def get_description(self) -> str:
        return "RpsPortWhenExporting"


SAMPLER = ParentBased(root=_WhenExporting())
_provider: TracerProvider | None = None
_otlp_endpoint: str | None = None
_instrumented: set[str] = set()


def get_tracer_provider() -> TracerProvider:
    """The process's SDK provider, created and installed globally on first use."""
    global _provider, _own_sampler
    with _lock:
        if _provider is None:
            current = trace.get_tracer_provider()
            if isinstance(current, TracerProvider):
                _provider = current
                _own_sampler = current.sampler is SAMPLER
            else:
                _provider = TracerProvider(
                    resource=Resource.create({"service.name": SERVICE_NAME}), sampler=SAMPLER
                )
                trace.set_tracer_provider(_provider)
            _provider.add_span_processor(_fanout)
        return _provider


def add_exporter(exporter: SpanExporter, *, batch: bool = False) -> SpanProcessor:
    """Send spans to `exporter` (SimpleSpanProcessor unless batch); returns the processor for removal."""
    get_tracer_provider()
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    _fanout.processors.append(processor)
    return processor


def remove_processor(processor: SpanProcessor) -> None:
    with contextlib.suppress(ValueError):
        _fanout.processors.remove(processor)
    processor.shutdown()


def configure_tracing(settings: Any = None) -> TracerProvider:
    """Install the provider; add an OTLP/HTTP exporter once when `settings.otlp_endpoint` is set."""
    global _otlp_endpoint
    provider = get_tracer_provider()
    endpoint = getattr(settings, "otlp_endpoint", None) if settings is not None else None
    if endpoint and endpoint != _otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        url = endpoint.rstrip("/")
        if not url.endswith("/v1/traces"):
            url += "/v1/traces"
        add_exporter(OTLPSpanExporter(endpoint=url), batch=True)
        _otlp_endpoint = endpoint
    return provider


def tracer() -> trace.Tracer:
    return get_tracer_provider().get_tracer(_TRACER_NAME)


def _attr(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


@contextlib.contextmanager
def span(name: str, *, carrier: Mapping[str, str] | None = None, **attrs: Any) -> Iterator[trace.Span]:
    """A span around one unit of work; exceptions are recorded and re-raised.

    `carrier`: headers/attributes of an incoming job (see `inject_context`) to continue its trace.
    Attribute values must not be PII: ids, names of collections/handlers, counts, bounds.
    """
    parent = propagate.extract(dict(carrier)) if carrier else None
    attributes = {k: _attr(v) for k, v in attrs.items() if v is not None}
    with tracer().start_as_current_span(name, context=parent, attributes=attributes) as s:
        yield s


def traced(name: str, **attrs: Any) -> Callable[[F], F]:
    """Decorator form of `span` for sync and async functions."""

    def wrap(fn: F) -> F:
        import inspect

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def a(*args: Any, **kwargs: Any) -> Any:
                with span(name, **attrs):
                    return await fn(*args, **kwargs)

            return a  # type: ignore[return-value]

        @functools.wraps(fn)
        def s(*args: Any, **kwargs: Any) -> Any:
            with span(name, **attrs):
                return fn(*args, **kwargs)

        return s  # type: ignore[return-value]

    return wrap


def inject_context(carrier: dict[str, str] | None = None) -> dict[str, str]:
    """W3C `traceparent`/`tracestate` of the current span into `carrier` (job headers, SQS attributes)."""
    carrier = {} if carrier is None else carrier
    propagate.inject(carrier)
    return carrier


def current_ids() -> tuple[str, str] | None:
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


_ids = RandomIdGenerator()


def should_record() -> bool:
    """What the sampler would decide for a span started here: the current span's sampled flag when
    there is one, else whether anything exports."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        return ctx.trace_flags.sampled
    return exporting()


def attach_unsampled_span() -> object:
    """Make a fresh non-recording span current (new trace id, not sampled); returns the detach token.
    Costs two random numbers instead of an SDK span, and keeps trace/span ids in the log lines."""
    span_context = SpanContext(
        _ids.generate_trace_id(), _ids.generate_span_id(), is_remote=False, trace_flags=TraceFlags(0)
    )
    return otel_context.attach(trace.set_span_in_context(NonRecordingSpan(span_context)))


class TraceGate:
    """Sends a request through the OpenTelemetry ASGI middleware only when its span would be recorded
    (an exporter is attached, or a `traceparent` arrived: the sampler honours its flag). `.app` is
    the instrumented path, so FastAPI still sees the contrib instrumentation and stays out."""

    def __init__(self, instrumented: Any) -> None:
        self.app = instrumented
        self.plain = instrumented.app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if _fanout.processors or not _own_sampler or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        for name, _ in scope.get("headers") or ():
            if name == b"traceparent":
                await self.app(scope, receive, send)
                return
        token = attach_unsampled_span()
        try:
            await self.plain(scope, receive, send)
        finally:
            otel_context.detach(token)


# ---------------------------------------------------------------------------------------- instrumentation


def instrument_app(app: Any) -> None:
    """FastAPI server spans (route template as span name); /metrics and health probes excluded."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    if getattr(app.state, "_rps_otel", False):
        return
    # the per-message "http send"/"http receive" child spans cost more than they tell
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=get_tracer_provider(),
        excluded_urls="/metrics,/healthz,/readyz,/livez",
        exclude_spans=["receive", "send"],
    )
    # FastAPI's own (native) telemetry steps aside for the contrib instrumentation, but only after
    # walking the middleware stack on every request; switch it off once instead.
    native = getattr(getattr(app, "_native_telemetry", None), "config", None)
    if isinstance(native, dict):
        native.update(tracing=False, metrics=False, logs=False)
    instrumented_build = app.build_middleware_stack

    def build_middleware_stack() -> Any:
        stack = instrumented_build()
        if type(getattr(stack, "app", None)).__name__ == "OpenTelemetryMiddleware":
            stack.app = TraceGate(stack.app)
        return stack

    app.build_middleware_stack = build_middleware_stack
    app.state._rps_otel = True


def instrument_httpx() -> None:
    """Client spans for every httpx call and `traceparent` injected into its headers."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    with _lock:
        if "httpx" in _instrumented:
            return
        _instrumented.add("httpx")
    HTTPXClientInstrumentor().instrument(tracer_provider=get_tracer_provider())


def instrument_engine(engine: Any) -> None:
    """SQL statement spans for one engine (sync Engine or AsyncEngine); idempotent per engine.

    Uses the instrumentation's per-engine tracer directly: the global instrumentor patches
    create_engine once and then ignores further engines (and pins sqlalchemy < 2.1)."""
    sync_engine = getattr(engine, "sync_engine", engine)
    if getattr(sync_engine, "_rps_otel", False):
        return
    from opentelemetry.metrics import NoOpMeter

    # connection-pool usage goes to Prometheus through our own metrics, not OTel metrics
    usage = NoOpMeter("rps_port").create_up_down_counter("db.client.connections.usage")
    _lean_engine_tracer()(
        get_tracer_provider().get_tracer("opentelemetry.instrumentation.sqlalchemy"), sync_engine, usage
    )
    sync_engine._rps_otel = True


@functools.cache
def _lean_engine_tracer() -> type:
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    class LeanEngineTracer(EngineTracer):
        """Skips statements whose span would not be recorded (before computing its name and
        attributes), and the pool-usage bookkeeping, which only fed a no-op meter."""

        def _before_cur_exec(self, conn, cursor, statement, params, context, executemany):
            if not should_record():
                return statement, params
            return super()._before_cur_exec(conn, cursor, statement, params, context, executemany)

        @classmethod
        def _register_event_listener(cls, target, identifier, func, *args, **kw):
            if identifier in ("connect", "close", "checkin", "checkout"):
                return
            super()._register_event_listener(target, identifier, func, *args, **kw)

    return LeanEngineTracer
