"""`create_app(settings)`: the standalone service. The portal embeds `build_router` instead.

Seams, in the order they run (each one line to add, see docs/api.md):
- INSTALLERS: `install(app, settings)` callables run after the routers are included; middleware,
  metrics, tracing and rate limiting (issue 9) register here.
- EXTRA_ROUTERS: `build(settings) -> APIRouter` callables mounted next to the resource routers
  (issue 6's `GET /usage`).
- ROUTE_DEPENDENCIES: `build(settings) -> Depends(...)` callables added to every resource route
  (issue 8's serve-new-or-proxy-to-legacy decision).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from rps_port import __version__
from rps_port.api.context import ApiContext
from rps_port.api.problems import install_problem_handlers
from rps_port.api.router import build_router
from rps_port.config import Settings, get_settings

Installer = Callable[[FastAPI, Settings], None]
RouterFactory = Callable[[Settings], APIRouter]
DependencyFactory = Callable[[Settings], Any]

INSTALLERS: list[Installer] = []
EXTRA_ROUTERS: list[RouterFactory] = []
ROUTE_DEPENDENCIES: list[DependencyFactory] = []


def create_app(
    settings: Settings | None = None,
    *,
    context: ApiContext | None = None,
    extra_routers: Sequence[RouterFactory] = (),
    installers: Sequence[Installer] = (),
    prefix: str = "",
) -> FastAPI:
    settings = settings or (context.settings if context else get_settings())
    ctx = context or ApiContext.build(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await ctx.aclose()

    app = FastAPI(
        title="rps-port",
        version=__version__,
        description="Customers, orders and transactions of the ported RPS. Errors are RFC 9457 problem+json.",
        lifespan=lifespan,
    )
    app.state.rps_context = ctx
    install_problem_handlers(app)
    route_deps = [build(settings) for build in ROUTE_DEPENDENCIES]
    app.include_router(build_router(context=ctx, dependencies=route_deps), prefix=prefix)
    for build in (*EXTRA_ROUTERS, *extra_routers):
        app.include_router(build(settings), prefix=prefix)
    for install in (*INSTALLERS, *installers):
        install(app, settings)
    return app


def _register_hardening() -> None:
    # issue 9: logs, metrics, tracing, 503 on a database outage, and the rate limit (registered
    # before the cutover dependency, so requests proxied to legacy are counted too)
    from rps_port.observability.install import register

    register()


def _register_cutover_routing() -> None:
    # issue 8: serve-new-or-proxy-to-legacy per request (a no-op unless RPS_CUTOVER_ROUTING is on)
    from rps_port.cutover import routing

    ROUTE_DEPENDENCIES.append(routing.build_dependency)
    INSTALLERS.append(routing.install)


def _register_usage() -> None:
    # issue 6: GET /usage for finance/admin (permission usage:read)
    from rps_port.usage.router import build_usage_router

    EXTRA_ROUTERS.append(build_usage_router)


_register_hardening()
_register_cutover_routing()
_register_usage()
