"""Spans are recorded only when something receives them: an attached exporter, or a sampled
`traceparent` from the caller. Otherwise the request still has trace ids (log lines, downstream
`traceparent`), but no SDK span is built, for the server or for SQL."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from sqlalchemy import create_engine, text

from rps_port.observability import tracing
from rps_port.observability.middleware import install_observability
from rps_port.observability.testing import capture_logs, capture_spans

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _app(engine) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/probe")
    def probe() -> dict:
        span = trace.get_current_span()
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        ctx = span.get_span_context()
        return {"recording": span.is_recording(), "trace_id": format(ctx.trace_id, "032x"),
                "sampled": ctx.trace_flags.sampled}

    install_observability(app)
    tracing.instrument_engine(engine)
    return app


def test_without_exporter_nothing_is_recorded_but_logs_keep_trace_ids(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'probe.db'}")
    client = TestClient(_app(engine))
    assert not tracing.exporting()
    with capture_logs() as logs:
        body = client.get("/v1/probe").json()
    assert body["recording"] is False and body["sampled"] is False
    (line,) = logs.find(logger="rps_port.access")
    assert line["trace_id"] == body["trace_id"] and len(line["span_id"]) == 16

    # attaching an exporter switches recording on for the next request, server and SQL spans alike
    with capture_spans() as spans:
        body = client.get("/v1/probe").json()
    assert body["recording"] is True
    kinds = {s.kind.name for s in spans.get_finished_spans() if s.context.trace_id == int(body["trace_id"], 16)}
    assert {"SERVER", "CLIENT"} <= kinds
    engine.dispose()


def test_sampled_incoming_trace_context_is_continued_without_exporter(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'probe.db'}")
    client = TestClient(_app(engine))
    sampled = client.get("/v1/probe", headers={"traceparent": f"00-{PARENT_TRACE}-00f067aa0ba902b7-01"}).json()
    assert sampled == {"recording": True, "trace_id": PARENT_TRACE, "sampled": True}

    unsampled = client.get("/v1/probe", headers={"traceparent": f"00-{PARENT_TRACE}-00f067aa0ba902b7-00"}).json()
    assert unsampled == {"recording": False, "trace_id": PARENT_TRACE, "sampled": False}
    engine.dispose()


def test_own_spans_follow_the_same_rule():
    with tracing.span("etl.range", collection="orders") as s:
        assert not s.is_recording() and s.get_span_context().is_valid
    with capture_spans() as spans, tracing.span("etl.range", collection="orders") as s:
        assert s.is_recording()
    assert [x.name for x in spans.get_finished_spans()] == ["etl.range"]
