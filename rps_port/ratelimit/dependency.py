"""FastAPI wiring: a dependency that counts the verified principal's request, and the error responses.

    limiter_dep = rate_limit_dependency(get_principal)     # the API's principal dependency
    router = APIRouter(dependencies=[Depends(limiter_dep)])
    install_rate_limiter(app, settings)                    # limiter on app.state + 429/503 handlers

The key is the principal's org and sub from the verified JWT, never a client-supplied header
(X-Forwarded-For and friends are ignored). The RateLimit fields go on every response of the
request, success or error, through the observability middleware's response-header seam.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from rps_port.observability.logging import bind_principal
from rps_port.observability.middleware import add_response_headers
from rps_port.ratelimit.limiter import Decision, RateLimiter

PROBLEM_JSON = "application/problem+json"


class RateLimited(Exception):
    """Raised by the dependency; rendered as 429 (quota exhausted) or 503 (storage down, fail closed)."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.limited_by or "rate limit storage unavailable")
        self.decision = decision


def principal_key(principal: Any) -> tuple[str, str]:
    """(org, sub) of a Principal (org_id) or a claims dict (org)."""
    if isinstance(principal, dict):
        org, sub = principal.get("org") or principal.get("org_id"), principal.get("sub")
    else:
        org = getattr(principal, "org_id", None) or getattr(principal, "org", None)
        sub = getattr(principal, "sub", None)
    return str(org), str(sub)


def get_limiter(request: Request) -> RateLimiter | None:
    return getattr(request.app.state, "rate_limiter", None)


async def enforce(request: Request, principal: Any) -> Decision | None:
    """Count this request against `principal`; raise RateLimited when refused."""
    request.state.principal = principal
    bind_principal(principal)
    limiter = get_limiter(request)
    if limiter is None:
        return None
    org, sub = principal_key(principal)
    decision = await limiter.check(org, sub)
    add_response_headers(request, decision.headers())
    if not decision.allowed:
        raise RateLimited(decision)
    return decision


def rate_limit_dependency(principal_dependency: Callable[..., Any]) -> Callable[..., Awaitable[Decision | None]]:
    """A dependency for routers: resolves the API's principal dependency (cached per request), then counts."""

    async def rate_limit(request: Request, principal: Any = Depends(principal_dependency)) -> Decision | None:  # noqa: B008
        return await enforce(request, principal)

    return rate_limit


def problem_response(request: Request, exc: RateLimited) -> JSONResponse:
    d = exc.decision
    if d.backend_failed:
        status, title = 503, "Service Unavailable"
        detail = "The rate limiter cannot reach its storage; try again shortly."
    else:
        status, title = 429, "Too Many Requests"
        quota = next((q for n, q, _ in d.policies if n == d.limited_by), None)
        window = next((w for n, _, w in d.policies if n == d.limited_by), None)
        detail = f"Rate limit of the {d.limited_by} policy exceeded ({quota} requests per {window} s)."
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "retry_after": max(1, d.retry_after),
    }
    if d.limited_by:
        body["policy"] = d.limited_by
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=d.headers())


async def _handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimited)
    return problem_response(request, exc)


def install_rate_limiter(app: Any, settings: Any, limiter: RateLimiter | None = None) -> RateLimiter:
    """Put the limiter on `app.state.rate_limiter` and register the 429/503 problem handler."""
    limiter = limiter or RateLimiter.from_settings(settings)
    app.state.rate_limiter = limiter
    app.add_exception_handler(RateLimited, _handler)
    return limiter
