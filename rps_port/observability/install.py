"""The hardening installer for `rps_port.api.create_app` (its INSTALLERS / ROUTE_DEPENDENCIES seams).

    install(app, settings)                    # middleware, /metrics, tracing, 503 on database outage, limiter
    rate_limit_route_dependency(settings)     # Depends(...) counting each resource request
    register()                                # appends both to rps_port.api.app's seams (idempotent)
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

from rps_port.observability import tracing
from rps_port.observability.logging import get_logger
from rps_port.observability.middleware import install_observability

log = get_logger("rps_port.api.unavailable")
DATABASE_RETRY_AFTER = 2  # seconds; the pool re-connects (pre-ping) as soon as the server is back


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A lost or refused database connection is the client's retry, not a 500: 503 + Retry-After."""
    if not _is_outage(exc):
        raise exc
    log.error(
        "database unavailable",
        extra={"error": type(exc).__name__, "driver_error": type(getattr(exc, "orig", None)).__name__},
    )
    body = {
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "The database is unavailable; retry shortly.",
    }
    return JSONResponse(
        body,
        status_code=503,
        media_type="application/problem+json",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


def install_unavailable_handlers(app: Any) -> None:
    for cls in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, sa_exc.DBAPIError):
        app.add_exception_handler(cls, database_unavailable)


def install(app: Any, settings: Any) -> None:
    """Everything issue 9 adds to the standalone app; safe to call once per app."""
    from rps_port.ratelimit.dependency import install_rate_limiter

    if getattr(app.state, "_rps_hardening", False):
        return
    app.state._rps_hardening = True
    install_observability(app, settings)
    install_unavailable_handlers(app)
    ctx = getattr(app.state, "rps_context", None)
    if ctx is not None and getattr(ctx, "engine", None) is not None:
        tracing.instrument_engine(ctx.engine)
    if settings.rate_limit or settings.rate_limit_org:
        install_rate_limiter(app, settings)


def rate_limit_route_dependency(settings: Any) -> Any:
    """`Depends(...)` for every resource route: count the verified principal's request."""
    from rps_port.api.deps import get_principal
    from rps_port.ratelimit.dependency import rate_limit_dependency

    return Depends(rate_limit_dependency(get_principal))


def register() -> None:
    """Add `install` and the limiter dependency to `rps_port.api.app`'s seams, once."""
    from rps_port.api import app as api_app

    if install not in api_app.INSTALLERS:
        api_app.INSTALLERS.append(install)
    if rate_limit_route_dependency not in api_app.ROUTE_DEPENDENCIES:
        api_app.ROUTE_DEPENDENCIES.append(rate_limit_route_dependency)
