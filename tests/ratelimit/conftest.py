from __future__ import annotations

import time

import jwt
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException

from rps_port.observability.middleware import install_observability
from rps_port.ratelimit import RateLimiter
from rps_port.ratelimit.dependency import install_rate_limiter, rate_limit_dependency

SECRET = "ratelimit-test-secret-0123456789"
ORG_A = "64f0000000000000000000a1"
ORG_B = "64f0000000000000000000b2"


def token(sub: str, org: str) -> str:
    now = int(time.time())
    claims = {"sub": sub, "org": org, "iss": "portal", "aud": "rps", "iat": now, "exp": now + 300, "roles": ["admin"]}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def auth(sub: str, org: str = ORG_A) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, org)}"}


async def verified_principal(authorization: str = Header(default="")) -> dict:
    """Stand-in for the API's principal dependency: a verified HS256 token or 401."""
    _scheme, _, raw = authorization.partition(" ")
    try:
        return jwt.decode(raw, SECRET, algorithms=["HS256"], audience="rps", issuer="portal")
    except jwt.PyJWTError:
        raise HTTPException(401, "invalid token") from None


def make_app(limiter: RateLimiter) -> FastAPI:
    app = FastAPI()
    router = APIRouter(dependencies=[Depends(rate_limit_dependency(verified_principal))])

    @router.get("/v1/orders")
    async def orders() -> dict:
        return {"data": []}

    @router.get("/v1/fails")
    async def fails() -> dict:
        raise HTTPException(409, "conflict")

    app.include_router(router)
    install_rate_limiter(app, None, limiter)
    install_observability(app)
    return app


@pytest.fixture
def app_factory():
    return make_app
