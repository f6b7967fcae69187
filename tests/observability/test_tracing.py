"""Spans for our own units of work, trace context on outgoing httpx calls, SQL spans."""

from __future__ import annotations

import http.server
import threading

import httpx
import pytest
from sqlalchemy import text

from rps_port.db import make_engine
from rps_port.observability import tracing
from rps_port.observability.testing import capture_logs, capture_spans


def test_span_records_attributes_errors_and_logs_carry_its_ids():
    with capture_spans() as spans, capture_logs() as logs:
        with tracing.span("etl.range", collection="orders", start="64f0", end="64f9", skipped=None):
            import logging

            logging.getLogger("rps_port.etl").info("range loaded", extra={"loaded": 10})
        with pytest.raises(ValueError), tracing.span("worker.job", handler="send_email"):
            raise ValueError("provider said no")
    etl, job = spans.get_finished_spans()
    assert etl.name == "etl.range" and dict(etl.attributes) == {"collection": "orders", "start": "64f0", "end": "64f9"}
    assert job.status.status_code.name == "ERROR"
    assert job.events[0].name == "exception"
    (line,) = logs.find(msg="range loaded")
    assert line["trace_id"] == format(etl.context.trace_id, "032x")
    assert line["span_id"] == format(etl.context.span_id, "016x")


def test_carrier_continues_the_trace_in_a_worker():
    with capture_spans() as spans:
        with tracing.span("outbox.publish"):
            headers = tracing.inject_context({})
        assert "traceparent" in headers
        with tracing.span("worker.job", carrier=headers, handler="send_sms"):
            pass
    publish, job = spans.get_finished_spans()
    assert job.context.trace_id == publish.context.trace_id
    assert job.parent.span_id == publish.context.span_id


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []  # noqa: RUF012 - shared with the test on purpose

    def do_GET(self) -> None:
        _Recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_httpx_calls_propagate_trace_context(upstream):
    tracing.instrument_httpx()
    with capture_spans() as spans, tracing.span("shadow.compare", endpoint="/api/orders"):
        httpx.get(f"{upstream}/api/orders")  # noqa: ASYNC210 - the sync client, on purpose
        async with httpx.AsyncClient() as client:
            await client.get(f"{upstream}/api/orders/1")
    parent = next(s for s in spans.get_finished_spans() if s.name == "shadow.compare")
    assert len(_Recorder.seen) == 2
    for headers in _Recorder.seen:
        _version, trace_id, _span_id, _flags = headers["traceparent"].split("-")
        assert trace_id == format(parent.context.trace_id, "032x")
    clients = [s for s in spans.get_finished_spans() if s.kind.name == "CLIENT"]
    assert len(clients) == 2


def test_sqlalchemy_engine_spans(tmp_path):
    engines = [make_engine(f"sqlite:///{tmp_path / f't{i}.db'}") for i in range(2)]
    for engine in engines:
        tracing.instrument_engine(engine)
        tracing.instrument_engine(engine)  # idempotent
    with capture_spans() as spans:
        for engine in engines:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
    statements = [
        str(s.attributes.get("db.statement", s.attributes.get("db.query.text", "")))
        for s in spans.get_finished_spans()
    ]
    assert sum("select 1" in st for st in statements) == 2
    for engine in engines:
        engine.dispose()


def test_otlp_exporter_is_added_when_configured(monkeypatch):
    from rps_port.config import load_settings

    before = len(tracing._fanout.processors)
    tracing.configure_tracing(load_settings(otlp_endpoint="http://127.0.0.1:1"))
    try:
        added = tracing._fanout.processors[before:]
        assert len(added) == 1
        exporter = added[0].span_exporter
        assert type(exporter).__name__ == "OTLPSpanExporter"
        assert exporter._endpoint == "http://127.0.0.1:1/v1/traces"
    finally:
        for p in tracing._fanout.processors[before:]:
            tracing._fanout.processors.remove(p)
        tracing._otlp_endpoint = None
