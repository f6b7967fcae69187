"""The dependencies the portal may override (`get_session`, `get_principal`) and the ones the
routers use on top of them (permissions, tenancy)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import suppress
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from rps_port.api.context import context_of
from rps_port.auth.principal import Principal
from rps_port.auth.tokens import AuthError
from rps_port.services.tenancy import TenantScope

bearer = HTTPBearer(auto_error=False, description="Portal JWT (HS256 in development, RS256/ES256 via JWKS).")

PRINCIPAL_STATE = "rps_principal"


def unauthorized() -> HTTPException:
    # One answer for every failure: which check failed is logged by nobody and told to nobody.
    return HTTPException(401, "invalid or missing credentials", headers={"WWW-Authenticate": "Bearer"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """An AsyncSession for this request. Handlers commit explicitly; anything uncommitted is rolled
    back when the request ends. Override with `app.dependency_overrides[get_session] = ...`."""
    session = context_of(request).sessionmaker()
    try:
        yield session
    finally:
        try:
            await session.close()
        except DBAPIError:
            # The database went away after the answer was sent (the end-of-request ROLLBACK failed):
            # drop the dead connection from the pool instead of failing a response already on its way.
            with suppress(DBAPIError):
                await session.invalidate()


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
) -> Principal:
    """The verified caller. Override with `app.dependency_overrides[get_principal] = ...` (any
    dependency returning a Principal), or pass `principal_resolver=` to `build_router`."""
    ctx = context_of(request)
    if ctx.principal_resolver is not None:
        principal = await ctx.principal_resolver(request)
    else:
        if credentials is None or ctx.verifier is None:
            raise unauthorized()
        try:
            principal = await ctx.verifier.verify(credentials.credentials)
        except AuthError:
            raise unauthorized() from None
    setattr(request.state, PRINCIPAL_STATE, principal)  # for logging/rate-limit middleware
    return principal


SessionDep = Annotated[AsyncSession, Depends(get_session)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(permission: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency returning the principal if the RBAC policy grants it `permission`, else 403."""

    async def check_permission(request: Request, principal: PrincipalDep) -> Principal:
        if not context_of(request).policy.allows(principal, permission):
            raise HTTPException(
                403, {"detail": f"missing permission {permission}", "missing_permission": permission}
            )
        return principal

    check_permission.__name__ = f"require_{permission.replace(':', '_')}"
    return check_permission


async def get_tenant_scope(principal: PrincipalDep) -> TenantScope:
    return TenantScope.of(principal)


TenantDep = Annotated[TenantScope, Depends(get_tenant_scope)]
