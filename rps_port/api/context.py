"""What a mounted router needs at request time: settings, a session factory, the token verifier,
the RBAC policy and (optionally) the portal's own principal resolver."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import Pool

from rps_port.auth.principal import Principal
from rps_port.auth.rbac import Policy, load_policy
from rps_port.auth.tokens import TokenVerifier
from rps_port.config import Settings, get_settings
from rps_port.db import _sqlite_pragmas, async_url, is_sqlite, make_async_engine

PrincipalResolver = Callable[[Request], Awaitable[Principal]]
SCOPE_KEY = "rps_port.context"


def make_api_engine(url: str, *, echo: bool = False, poolclass: type[Pool] | None = None) -> AsyncEngine:
    """The API's async engine. On SQLite every transaction starts with BEGIN IMMEDIATE: writers
    queue on the busy timeout instead of failing when a read snapshot cannot be upgraded, and
    SAVEPOINTs work (the pysqlite driver's own transaction handling is switched off).
    `poolclass=NullPool` suits callers that run each request on a fresh event loop."""
    if poolclass is None:
        engine = make_async_engine(url, echo=echo)
    else:
        engine = create_async_engine(async_url(url), echo=echo, poolclass=poolclass)
        if is_sqlite(engine):
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    if is_sqlite(engine):

        @event.listens_for(engine.sync_engine, "connect")
        def _autocommit_driver(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(conn) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@dataclass
class ApiContext:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    policy: Policy
    verifier: TokenVerifier | None = None
    principal_resolver: PrincipalResolver | None = None
    engine: AsyncEngine | None = None  # set when the context created (and so owns) the engine

    @property
    def idempotency_ttl(self) -> timedelta:
        return timedelta(hours=self.settings.idempotency_ttl_hours)

    @classmethod
    def build(
        cls,
        settings: Settings | None = None,
        *,
        session_factory: async_sessionmaker[AsyncSession] | None = None,
        principal_resolver: PrincipalResolver | None = None,
        policy: Policy | None = None,
    ) -> ApiContext:
        settings = settings or get_settings()
        engine = None
        if session_factory is None:
            engine = make_api_engine(settings.database_url, echo=settings.sql_echo)
            session_factory = async_sessionmaker(engine, expire_on_commit=False)
        verifier = None
        # Without a secret or JWKS URL every bearer token is refused (401); a portal that
        # overrides `get_principal` needs neither.
        if principal_resolver is None and (settings.jwt_secret or settings.jwt_jwks_url):
            verifier = TokenVerifier.from_settings(settings)
        return cls(
            settings=settings,
            sessionmaker=session_factory,
            policy=policy or load_policy(settings.rbac_policy),
            verifier=verifier,
            principal_resolver=principal_resolver,
            engine=engine,
        )

    def binder(self) -> Callable[[Request], None]:
        """A router-level dependency that makes this context the request's."""

        def bind_context(request: Request) -> None:
            request.scope[SCOPE_KEY] = self

        return bind_context

    async def aclose(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()


def context_of(request: Request) -> ApiContext:
    return request.scope[SCOPE_KEY]
