"""`build_router(...)`: the one router the portal mounts (`app.include_router(build_router(), prefix="/rps")`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rps_port.api.context import ApiContext, PrincipalResolver
from rps_port.api.routers.customers import build_customers_router
from rps_port.api.routers.orders import build_orders_router
from rps_port.api.routers.transactions import build_transactions_router
from rps_port.auth.rbac import Policy
from rps_port.config import Settings

RESOURCE_ROUTERS = (build_customers_router, build_orders_router, build_transactions_router)


def build_router(
    settings: Settings | None = None,
    *,
    session_factory: async_sessionmaker[AsyncSession] | None = None,
    principal_resolver: PrincipalResolver | None = None,
    policy: Policy | None = None,
    dependencies: Sequence[Any] = (),
    context: ApiContext | None = None,
) -> APIRouter:
    """Customers, orders and transactions in one router.

    - `settings`: defaults to `get_settings()` (RPS_* environment).
    - `session_factory`: the portal's async_sessionmaker; default: an engine on `settings.database_url`.
    - `principal_resolver`: `async (Request) -> Principal`, replacing JWT verification (the portal's
      own auth). Alternatively override the `get_principal` dependency on the portal app.
    - `policy`: an RBAC Policy; default: `settings.rbac_policy` or the shipped policy.
    - `dependencies`: extra router-level dependencies, run after the context is bound and before
      each endpoint (e.g. a rate limiter or the cutover routing decision).
    """
    ctx = context or ApiContext.build(
        settings, session_factory=session_factory, principal_resolver=principal_resolver, policy=policy
    )
    router = APIRouter(dependencies=[Depends(ctx.binder()), *dependencies])
    for build in RESOURCE_ROUTERS:
        router.include_router(build())
    router.rps_context = ctx  # type: ignore[attr-defined]  # lets the app dispose what the context owns
    return router
