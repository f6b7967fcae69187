"""Helpers for tests (ours and other parts'): capture the JSON log lines and the finished spans.

    with capture_logs() as logs:        # logs.records -> list of parsed JSON objects
        ...
    with capture_spans() as spans:      # spans.get_finished_spans()
        ...
Both attach alongside whatever is configured and detach on exit.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rps_port.observability import tracing
from rps_port.observability.logging import JsonFormatter, RedactionFilter, get_redactor


class LogCapture:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def find(self, **fields: Any) -> list[dict[str, Any]]:
        return [r for r in self.records if all(r.get(k) == v for k, v in fields.items())]


@contextlib.contextmanager
def capture_logs(level: int = logging.DEBUG, settings: Any = None) -> Iterator[LogCapture]:
    """JSON lines exactly as the configured handler writes them (same redaction, same fields)."""
    from rps_port.observability.redaction import settings_secrets

    redactor = get_redactor()
    redactor.add_secrets(settings_secrets(settings))
    cap = LogCapture()
    handler = logging.StreamHandler(cap.stream)
    handler.addFilter(RedactionFilter(redactor))
    handler.setFormatter(JsonFormatter(redactor))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, old_level) if old_level else level)
    try:
        yield cap
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@contextlib.contextmanager
def capture_spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    processor = tracing.add_exporter(exporter)
    try:
        yield exporter
    finally:
        tracing.remove_processor(processor)
