"""Shadow as the stage says, inside the routed app, with the shadow package's `DualRead` comparing.

- `legacy`: nothing is compared.
- `shadow`, and orgs outside the canary cohort: legacy answered (proxied); in the background the new
  routers are asked the same question (`X-RPS-Serve: new`, reads only) and compared with legacy.
- canary cohort, `live`, `complete`: the new side answered; legacy is asked in the background
  (reverse shadow while legacy is kept in step by reverse sync).

The client's answer is never delayed or changed: comparisons run after the response, bounded by
the dual read's budget and in-flight cap; their failures are counted, never raised.
"""

from __future__ import annotations

import asyncio
from typing import Any

ROUTES = ("/customers", "/customers/{id}", "/orders", "/orders/{id}", "/transactions", "/transactions/{id}")
STAGE = "rps_cutover_stage"


def build_dual_read(settings: Any) -> Any:
    from rps_port.shadow.dualread import DualRead, DualReadConfig

    rate = settings.cutover_shadow_sample_rate
    return DualRead(DualReadConfig(legacy_url=settings.legacy_url, routes=dict.fromkeys(ROUTES, rate),
                                   max_mismatch_rate=settings.cutover_max_mismatch_rate))


class StageShadowMiddleware:
    def __init__(self, app: Any, dual: Any) -> None:
        self.app = app
        self.dual = dual
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        found = self.dual.legacy_request(scope["path"], scope.get("query_string", b""))
        if found is None:
            return await self.app(scope, receive, send)
        template, entry = found
        status, chunks, served = 0, [], [None]

        async def tee(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                served[0] = dict(message.get("headers") or []).get(b"x-rps-served-by")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, tee)
        stage = scope.get("state", {}).get(STAGE)
        if stage in (None, "legacy") or served[0] not in (b"new", b"legacy") or not self.dual.sample(template):
            return None
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization")
        authorization = auth.decode("latin-1") if auth else None
        query = scope.get("query_string", b"").decode("latin-1")
        new_path = scope["path"] + (f"?{query}" if query else "")
        if served[0] == b"new":
            secondary = self.dual.start(entry, authorization)
            if secondary is not None:
                self.dual.finish(entry, secondary, status, b"".join(chunks), new_path)
            return None
        task = asyncio.create_task(self._compare_new(scope, entry, authorization, new_path))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return None

    async def _ask_new(self, scope: dict) -> tuple[int, bytes]:
        """The same GET through the routers below, forced to the new side (reads only)."""
        headers = [(k, v) for k, v in scope.get("headers") or [] if k.lower() != b"x-rps-serve"]
        inner = {**scope, "headers": [*headers, (b"x-rps-serve", b"new")], "state": {}}
        status, chunks = 0, []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(inner, receive, send)
        return status, b"".join(chunks)

    async def _compare_new(self, scope: dict, entry: Any, authorization: str | None, new_path: str) -> None:
        """Legacy served: ask the new routers in-process, then let the dual read compare with legacy."""
        try:
            status, body = await asyncio.wait_for(self._ask_new(scope), self.dual.config.budget_seconds)
        except Exception:  # noqa: BLE001 - the shadow side must never hurt anyone
            self.dual.secondary_errors += 1
            return
        secondary = self.dual.start(entry, authorization)
        if secondary is not None:
            self.dual.finish(entry, secondary, status, body, new_path)

    async def drain(self, timeout: float = 10.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        await self.dual.drain(timeout)
