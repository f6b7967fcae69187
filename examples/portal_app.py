"""A small portal that embeds rps-port: its own auth, the RPS routers mounted under /rps.

    RPS_DATABASE_URL=sqlite:///rps-port.db python examples/portal_app.py

The portal authenticates its users however it likes (here: an API key header standing in for its
session cookie) and tells rps-port who the caller is by overriding `get_principal`. It may also
hand over its own async session factory; here rps-port builds one from RPS_DATABASE_URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import APIKeyHeader

from rps_port.api import Principal, build_router, get_principal, install_problem_handlers
from rps_port.config import Settings, load_settings

# The portal's own user store (in a real portal: its database and session middleware).
USERS = {
    "key-alice": Principal(sub="alice", org_id="65a1f0c2e4b0a1b2c3d4e5f6", roles=frozenset({"finance"})),
    "key-bob": Principal(
        sub="bob",
        org_id="65a1f0c2e4b0a1b2c3d4e5f6",
        roles=frozenset({"viewer"}),
        clients=frozenset({"65a1f0c2e4b0a1b2c3d4e5f7"}),
    ),
}

api_key = APIKeyHeader(name="X-Portal-Key", auto_error=False)


async def portal_principal(key: Annotated[str | None, Depends(api_key)]) -> Principal:
    principal = USERS.get(key or "")
    if principal is None:
        raise HTTPException(401, "log in to the portal first")
    return principal


def build_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    rps = build_router(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await rps.rps_context.aclose()  # the engine rps-port made from RPS_DATABASE_URL

    app = FastAPI(title="Portal", lifespan=lifespan)
    install_problem_handlers(app)  # optional: the portal's own 404/405 as problem+json too

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(rps, prefix="/rps")
    app.dependency_overrides[get_principal] = portal_principal
    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(build_app(), host="127.0.0.1", port=8080)
