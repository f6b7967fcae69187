"""Per-request routing for the mountable routers: serve from the new routers, or proxy to the legacy RPS.

The decision reads the stage and the cohort of the caller's org (and client) from the cutover
state, cached for a second so a request costs no query. Proxied requests keep their method, query,
body and headers (minus hop-by-hop ones); the legacy answer streams back with its status and
headers. A `X-RPS-Serve: new` header forces the new side for reads only (the shadow tool uses
it before the new side serves anyone); writes always follow the stage, so none is ever lost.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Depends, Request
from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from rps_port.cutover.cohorts import CohortPolicy, Overrides
from rps_port.cutover.models import CohortOverride, CutoverState

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}
RESOURCES = ("customers", "orders", "transactions")
READS = {"GET", "HEAD", "OPTIONS"}
SERVED_BY = "rps_served_by"


@dataclass(frozen=True)
class Decision:
    serve: str  # "new" | "legacy"
    stage: str
    reason: str


@dataclass(frozen=True)
class Snapshot:
    stage: str
    percent: float
    overrides: Overrides


def decide(snapshot: Snapshot, method: str, org_id: str, client_id: str | None, cohort_by: str = "org",
           force_new: bool = False) -> Decision:
    stage = snapshot.stage
    read = method.upper() in READS
    if stage in ("live", "complete"):
        return Decision("new", stage, f"{stage}: the new side serves everyone")
    if force_new and read:
        return Decision("new", stage, "X-RPS-Serve: new (reads only)")
    if stage == "canary":
        if not read:
            return Decision("legacy", stage, "canary: writes go to legacy")
        inside, why = CohortPolicy(snapshot.percent, cohort_by, snapshot.overrides).decide(org_id, client_id)
        return Decision("new" if inside else "legacy", stage, f"canary {snapshot.percent:g}%: {why}")
    return Decision("legacy", stage, f"{stage}: legacy serves")


def _export_stage(snap: Snapshot) -> None:
    """The stage and the share of traffic the new side serves, on the app's /metrics."""
    try:
        from rps_port.observability.metrics import set_cutover_stage
    except ImportError:
        return
    ratio = {"live": 1.0, "complete": 1.0, "canary": snap.percent / 100}.get(snap.stage, 0.0)
    set_cutover_stage(snap.stage, ratio)


def legacy_path(path: str) -> str:
    """`/rps/orders/abc` (whatever the mount prefix) -> `/api/orders/abc` (CONTRACT.md)."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if part in RESOURCES:
            return "/api/" + "/".join(parts[i:])
    raise ValueError(f"not a resource path: {path}")


class CutoverRouting:
    def __init__(self, settings: Any, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.legacy_url = settings.legacy_url.rstrip("/")
        self._injected = client is not None
        self.client = client
        self.cache_seconds = settings.cutover_state_cache_seconds
        self._snapshot: Snapshot | None = None
        self._fetched = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()

    def _bind_loop(self) -> None:
        # A pooled client and a lock belong to one event loop; a test client may start several.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._lock = loop, asyncio.Lock()
            if self.client is not None and not getattr(self, "_injected", False):
                self.client = None

    def _client(self) -> httpx.AsyncClient:
        self._bind_loop()
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=self.settings.cutover_proxy_timeout_seconds)
        return self.client

    async def snapshot(self, request: Request) -> Snapshot:
        from rps_port.api.context import context_of

        if self._snapshot is not None and time.monotonic() - self._fetched < self.cache_seconds:
            return self._snapshot
        self._bind_loop()
        async with self._lock:
            if self._snapshot is not None and time.monotonic() - self._fetched < self.cache_seconds:
                return self._snapshot
            try:
                async with context_of(request).sessionmaker() as session:
                    row = await session.get(CutoverState, 1)
                    overrides = (await session.scalars(select(CohortOverride))).all()
            except Exception:
                if self._snapshot is not None:  # keep serving on the last known stage
                    return self._snapshot
                raise
            self._snapshot = Snapshot(row.stage if row else "legacy", row.percent if row else 0.0,
                                      Overrides.from_rows(overrides))
            self._fetched = time.monotonic()
            _export_stage(self._snapshot)
            return self._snapshot

    async def proxy(self, request: Request) -> StreamingResponse:
        url = self.legacy_url + legacy_path(request.url.path)
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        body = await request.body()
        upstream = self._client().build_request(request.method, url, params=request.query_params.multi_items(),
                                                headers=headers, content=body or None)
        resp = await self._client().send(upstream, stream=True)
        out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP}
        out_headers["x-rps-served-by"] = "legacy"
        return StreamingResponse(resp.aiter_raw(), status_code=resp.status_code, headers=out_headers,
                                 background=BackgroundTask(resp.aclose))

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def _acting_client(request: Request, principal: Any) -> str | None:
    clients = getattr(principal, "clients", None)
    if clients is not None and len(clients) == 1:
        return next(iter(clients))
    return request.query_params.get("client_id") or request.query_params.get("client")


def build_dependency(settings: Any, client: httpx.AsyncClient | None = None) -> Any:
    """The router-level dependency for `rps_port.api.app.ROUTE_DEPENDENCIES` (a no-op unless
    RPS_CUTOVER_ROUTING is on). Raises RespondWith(proxied response) when legacy serves."""
    from rps_port.api.deps import get_principal
    from rps_port.api.problems import RespondWith, problem

    if not settings.cutover_routing:
        async def cutover_off() -> None:
            return None

        return Depends(cutover_off)

    routing = CutoverRouting(settings, client)

    async def cutover_route(request: Request, principal: Any = Depends(get_principal)) -> None:
        try:
            snap = await routing.snapshot(request)
        except Exception:
            raise RespondWith(problem(503, "cutover state unavailable")) from None
        d = decide(snap, request.method, principal.org_id, _acting_client(request, principal),
                   settings.cutover_cohort_by, request.headers.get("x-rps-serve") == "new")
        request.state.__setattr__(SERVED_BY, d.serve)
        request.state.__setattr__("rps_cutover_stage", d.stage)
        if d.serve == "legacy":
            try:
                response = await routing.proxy(request)
            except httpx.HTTPError:
                raise RespondWith(problem(502, "the legacy RPS did not answer")) from None
            raise RespondWith(response)

    cutover_route.routing = routing  # type: ignore[attr-defined]
    return Depends(cutover_route)


def install(app: Any, settings: Any) -> None:
    """Tag answers served by the new routers with `X-RPS-Served-By: new` (proxied ones say legacy)."""
    if not settings.cutover_routing:
        return

    class ServedBy:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return await self.inner(scope, receive, send)

            async def tagged(message: dict) -> None:
                if message["type"] == "http.response.start":
                    served = scope.get("state", {}).get(SERVED_BY)
                    headers = list(message.get("headers", []))
                    if served == "new" and not any(k.lower() == b"x-rps-served-by" for k, _ in headers):
                        headers.append((b"x-rps-served-by", b"new"))
                        message = {**message, "headers": headers}
                await send(message)

            await self.inner(scope, receive, tagged)

    app.add_middleware(ServedBy)
    if settings.cutover_shadow_sample_rate > 0:
        try:
            from rps_port.cutover.stage_shadow import StageShadowMiddleware, build_dual_read
        except ImportError:  # the shadow package is not installed: route without comparing
            return
        dual = build_dual_read(settings)
        app.state.cutover_dual_read = dual
        app.add_middleware(StageShadowMiddleware, dual=dual)
