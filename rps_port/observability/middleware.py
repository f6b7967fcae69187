"""ASGI middleware: request id, access log, HTTP server metrics, principal and route in the log context.

Pure ASGI (no BaseHTTPMiddleware) so streaming and background tasks are untouched. The route
label is the matched route *template* (`/v1/orders/{order_id}`), never the raw path; requests
that match no route are grouped under `__unmatched__`, so label cardinality stays bounded.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from rps_port.observability import metrics
from rps_port.observability.logging import (
    adopt_server_loggers,
    bind_principal,
    get_logger,
    new_context,
    reset_context,
)

_log = get_logger("rps_port.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.encode()
# request.state attributes other parts set for us
STATE_PRINCIPALS = ("rps_principal", "principal")  # rps_port.api.deps sets the first
STATE_RESPONSE_HEADERS = "rps_response_headers"


# metric children per label set (all bounded), so a request does not pay `labels()` each time
_active: dict[str, Any] = {}
_durations: dict[tuple[str, str, int], Any] = {}


def _active_gauge(method_label: str) -> Any:
    child = _active.get(method_label)
    if child is None:
        child = _active[method_label] = metrics.HTTP_SERVER_ACTIVE.labels(method_label)
    return child


def _observe(method_label: str, route: str, status: int, duration: float) -> None:
    key = (method_label, route, status)
    child = _durations.get(key)
    if child is None:
        child = _durations[key] = metrics.HTTP_SERVER_DURATION.labels(method_label, route, str(status))
    child.observe(duration)


def route_template(scope: dict[str, Any], root_path: str = "") -> str:
    route = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    if not path:
        return metrics.UNMATCHED_ROUTE
    mount_prefix = scope.get("root_path", "")[len(root_path):] if scope.get("root_path") else ""
    return f"{mount_prefix}{path}" or "/"


class ObservabilityMiddleware:
    def __init__(self, app: Any, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log
        self._adopted = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        if not self._adopted:
            self._adopted = True
            adopt_server_loggers()  # the server configured its loggers after ours
        incoming = next((v for k, v in scope.get("headers") or () if k == _REQUEST_ID_KEY), b"").decode("latin-1")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else os.urandom(16).hex()
        method = scope.get("method", "GET").upper()
        method_label = method if method in _METHODS else "_OTHER"
        root_path = scope.get("root_path", "")
        state = scope.setdefault("state", {})
        state["request_id"] = request_id

        token = new_context(request_id=request_id, method=method)
        status = 500
        start = time.perf_counter()
        active = _active_gauge(method_label)
        active.inc()

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [(_REQUEST_ID_KEY, request_id.encode())]
                for name, value in (state.get(STATE_RESPONSE_HEADERS) or {}).items():
                    extra.append((name.lower().encode("latin-1"), str(value).encode("latin-1")))
                headers = list(message.get("headers", ()))
                existing = {k.lower() for k, _ in headers}
                headers.extend(h for h in extra if h[0] not in existing)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            status = 500
            raise
        finally:
            duration = time.perf_counter() - start
            active.dec()
            route = route_template(scope, root_path)
            _observe(method_label, route, status, duration)
            bind_principal(next((state[k] for k in STATE_PRINCIPALS if state.get(k) is not None), None))
            if self.access_log:
                level = 40 if status >= 500 else 20
                _log.log(
                    level,
                    "%s %s %s",
                    method,
                    route,
                    status,
                    extra={"http_route": route, "status": status, "duration_ms": round(duration * 1000, 3)},
                )
            reset_context(token)


def add_response_headers(request_or_scope: Any, headers: dict[str, str]) -> None:
    """Ask the middleware to add headers to this request's response, whatever produces it
    (the endpoint, an exception handler, a problem+json error)."""
    scope = getattr(request_or_scope, "scope", request_or_scope)
    state = scope.setdefault("state", {})
    state.setdefault(STATE_RESPONSE_HEADERS, {}).update(headers)


async def metrics_endpoint(request: Any) -> Any:
    from starlette.responses import Response

    body, content_type = metrics.render_latest()
    return Response(body, media_type=content_type)


def _wrap_outermost(app: Any) -> None:
    """Put the middleware around every user middleware, whichever installer adds one later (the
    cutover proxy, say), so proxied and short-circuited requests are measured too. It sits just
    inside Starlette's ServerErrorMiddleware, which the OpenTelemetry instrumentation expects to
    find outermost."""
    original = app.build_middleware_stack

    def build_middleware_stack() -> Any:
        stack = original()
        if hasattr(stack, "app"):  # ServerErrorMiddleware
            stack.app = ObservabilityMiddleware(stack.app)
            return stack
        return ObservabilityMiddleware(stack)

    app.build_middleware_stack = build_middleware_stack


def install_observability(app: Any, settings: Any = None, *, metrics_path: str = "/metrics") -> None:
    """Wire a FastAPI/Starlette app: the middleware, `GET /metrics`, OpenTelemetry server spans,
    httpx client spans with trace propagation. Logging itself is configured per process
    (`configure_logging`), not per app."""
    from rps_port.observability import tracing

    if getattr(app.state, "_rps_observability", False):
        return
    app.state._rps_observability = True
    _wrap_outermost(app)
    if metrics_path:
        app.add_route(metrics_path, metrics_endpoint, methods=["GET"], include_in_schema=False)
    tracing.configure_tracing(settings)
    tracing.instrument_app(app)
    tracing.instrument_httpx()
