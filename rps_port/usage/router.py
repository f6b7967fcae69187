"""`GET /usage` for finance and admin roles (permission `usage:read`), scoped to the caller's org,
clients and projects. Mounted through `rps_port.api.app.EXTRA_ROUTERS`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from rps_port.api.context import SCOPE_KEY, ApiContext
from rps_port.api.deps import SessionDep, require
from rps_port.auth.principal import Principal
from rps_port.config import Settings
from rps_port.usage.report import ReportError, usage_report


def build_usage_router(settings: Settings | None = None, *, context: ApiContext | None = None) -> APIRouter:
    """The router; it uses `context` if given, else the app's (`create_app` sets `app.state.rps_context`),
    else one built from `settings` on first use (sessions, token verification, RBAC policy)."""
    own: list[ApiContext] = [context] if context is not None else []

    def bind_context(request: Request) -> None:
        if SCOPE_KEY in request.scope:
            return
        if not own:
            app_ctx = getattr(request.app.state, "rps_context", None)
            own.append(app_ctx if app_ctx is not None else ApiContext.build(settings))
        request.scope[SCOPE_KEY] = own[0]

    router = APIRouter(tags=["usage"], dependencies=[Depends(bind_context)])

    @router.get("/usage", summary="Usage and cost of the caller's org, grouped")
    async def get_usage(
        session: SessionDep,
        principal: Principal = Depends(require("usage:read")),
        since: datetime | None = Query(None, description="Inclusive, ISO-8601."),
        until: datetime | None = Query(None, description="Exclusive, ISO-8601."),
        group_by: str = Query("client,project,type", description="Comma-separated: " "org, client, project, type, unit, provider, model, country, day, month."),
    ) -> dict[str, Any]:
        clients = principal.clients
        projects = principal.projects

        def run(sync_session):
            return usage_report(sync_session, org_id=principal.org_id, since=since, until=until,
                                group_by=group_by, clients=clients, projects=projects).to_dict()

        try:
            return await session.run_sync(run)
        except ReportError as exc:
            raise HTTPException(422, str(exc)) from None

    return router
