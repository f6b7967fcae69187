"""One logging setup for the API, the CLI, the ETL and the workers: JSON lines, redacted.

`configure_logging(settings)` installs a single handler on the root logger (stderr, or the file
`settings.log_file` / `rps-port.log` with `cli=True`, leaving the terminal to rich) whose filter
redacts every record and whose formatter writes one JSON object per line with the request id,
the trace and span ids, the principal's org/client/project and whatever context is bound.
uvicorn's loggers are routed through the same handler.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rps_port.observability.redaction import Redactor, is_sensitive_key, settings_secrets

DEFAULT_CLI_LOG_FILE = "rps-port.log"

# Bound per request / job. A dict object (not a copy) so that later binders in the same request,
# e.g. the auth dependency running in a worker thread, are seen by the access log at the end.
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("rps_log_context", default=None)

# LogRecord's own attributes; anything else on a record came from `extra=`.
_STANDARD = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "color_message"}
)
_HANDLER_NAME = "rps-port"
# Fields whose values this code produces itself and that can hold nothing sensitive: a route
# template, a validated request id, the HTTP method. They skip the redactor.
PLAIN_FIELDS = frozenset({"http_route", "request_id", "method"})


# ------------------------------------------------------------------------------------- context


def new_context(**fields: Any) -> contextvars.Token:
    """Start a fresh context (a request, a job); returns the token for `reset_context`."""
    return _context.set({k: v for k, v in fields.items() if v is not None})


def reset_context(token: contextvars.Token) -> None:
    _context.reset(token)


def bind_context(**fields: Any) -> None:
    """Add fields to the current context (creating one if none); None values are ignored."""
    ctx = _context.get()
    if ctx is None:
        ctx = {}
        _context.set(ctx)
    ctx.update({k: v for k, v in fields.items() if v is not None})


def get_context() -> dict[str, Any]:
    return dict(_context.get() or {})


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[dict[str, Any]]:
    """`with log_context(job_id=..., handler=...):` every log line inside carries these fields."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield _context.get()  # type: ignore[misc]
    finally:
        _context.reset(token)


def principal_fields(principal: Any) -> dict[str, Any]:
    """org/client/project (and sub) of a principal object or claims dict, for log lines."""
    if principal is None:
        return {}

    def get(name: str) -> Any:
        if isinstance(principal, dict):
            return principal.get(name)
        return getattr(principal, name, None)

    def one(values: Any) -> Any:
        if values is None:
            # Principal uses None for "every client/project of the org"
            return "*" if not isinstance(principal, dict) else None
        if isinstance(values, str):
            return values
        values = list(values)
        if len(values) > 5:
            return f"{len(values)} ids"
        return ",".join(str(v) for v in values) if values else None

    return {
        k: v
        for k, v in {
            "org": get("org") or get("org_id"),
            "sub": get("sub"),
            "client": one(get("client") or get("clients")),
            "project": one(get("project") or get("projects")),
        }.items()
        if v is not None
    }


def bind_principal(principal: Any) -> None:
    bind_context(**principal_fields(principal))


# ------------------------------------------------------------------------------------- filter + formatter


class RedactionFilter(logging.Filter):
    """Scrubs the message (after %-formatting), `extra=` fields, exception and stack text in place."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        r = self.redactor
        if getattr(record, "_rps_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = r.text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = r.text(record.exc_text)
            # the formatter must not re-render the raw exception
            record.exc_info = None
        if record.stack_info:
            record.stack_info = r.text(record.stack_info)
        for key, value in list(vars(record).items()):
            if key in _STANDARD or key.startswith("_") or key in PLAIN_FIELDS:
                continue
            if (value is None or type(value) in (int, float, bool)) and not is_sensitive_key(key):
                continue
            setattr(record, key, r.value({key: value})[key])
        record._rps_redacted = True
        return True


def _trace_ids() -> dict[str, str]:
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover
        return {}
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}


def _timestamp(created: float) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-11-29T20:45:01.123Z."""
    seconds = int(created)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{int((created - seconds) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, context, trace ids, extras, exc."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_trace_ids())
        context = _context.get()
        if context:
            redact = self.redactor.value
            for key, value in context.items():
                out[key] = value if key in PLAIN_FIELDS else redact({key: value})[key]
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_text:
            out["exc"] = record.exc_text
        elif record.exc_info:
            out["exc"] = self.redactor.text(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human lines for `log_json = false` (development); same redaction, same context."""

    def format(self, record: logging.LogRecord) -> str:
        ctx = " ".join(f"{k}={v}" for k, v in {**get_context(), **_trace_ids()}.items())
        extras = " ".join(
            f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")
        )
        line = f"{self.formatTime(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        line = " ".join(p for p in (line, ctx, extras) if p)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


# ------------------------------------------------------------------------------------- setup

_redactor = Redactor()


def get_redactor() -> Redactor:
    """The process-wide redactor (knows the configured settings' secret values)."""
    return _redactor


def configure_logging(
    settings: Any = None,
    *,
    cli: bool = False,
    stream: Any = None,
    log_file: str | Path | None = None,
) -> logging.Handler:
    """Install the one handler on the root logger; idempotent (replaces a previous rps-port handler).

    API/worker: JSON to stderr (or `stream`). CLI (`cli=True`): JSON to `settings.log_file` or
    `rps-port.log`, so the terminal stays with rich. Returns the handler (tests read its stream).
    """
    level = getattr(settings, "log_level", "INFO") if settings is not None else "INFO"
    as_json = getattr(settings, "log_json", True) if settings is not None else True
    _redactor.add_secrets(settings_secrets(settings))

    if cli or log_file is not None:
        path = Path(log_file or getattr(settings, "log_file", None) or DEFAULT_CLI_LOG_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RedactionFilter(_redactor))
    handler.setFormatter(JsonFormatter(_redactor) if as_json else TextFormatter())

    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(level)

    adopt_server_loggers()
    for noisy in ("httpx", "httpcore", "botocore", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    return handler


SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def adopt_server_loggers() -> bool:
    """Route uvicorn's loggers through our handler (JSON, redacted) when `configure_logging` ran in this
    process. uvicorn applies its own logging config when it starts (unless `log_config=None`), after
    ours; the HTTP middleware calls this again on the first request, so its plain-text, unredacted
    access lines cannot survive either way. A no-op inside a host app that configured logging itself."""
    root = logging.getLogger()
    if not any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        return False
    for name in SERVER_LOGGERS:
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    return True


def uvicorn_log_config() -> None:
    """Pass as `uvicorn.run(..., log_config=uvicorn_log_config())`: uvicorn keeps our setup."""
    return


def get_logger(name: str) -> logging.Logger:
    """A stdlib logger; records go through the redacting JSON handler once `configure_logging` ran."""
    return logging.getLogger(name)
