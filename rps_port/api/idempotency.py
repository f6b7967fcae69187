"""Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) for POST/PATCH/DELETE.

A key is claimed in its own committed transaction (so a concurrent duplicate sees it), the
mutation then runs, and its response is stored in the SAME transaction as the mutation: either
both happen or neither. Outcomes for a repeated key, scoped by org and principal:
missing where required -> 400; other payload -> 422; first still running -> 409; completed ->
the stored status and body again with `Idempotent-Replayed: true`. A request that fails with an
error releases its key, so the client may retry it. Keys expire after `idempotency_ttl_hours`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rps_port.api.context import context_of
from rps_port.api.deps import PrincipalDep
from rps_port.api.idempotency_models import IdempotencyKey
from rps_port.api.problems import RespondWith, problem
from rps_port.auth.principal import Principal
from rps_port.timeutil import utcnow

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
# A claim left in progress this long belongs to a request that died (e.g. the client went away
# while it ran); a later request with the key may take it over.
ABANDONED_AFTER = timedelta(seconds=60)
_KEY = re.compile(r'^"?([\x21\x23-\x7e]{1,255})"?$')


def fingerprint(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(method.encode() + b"\n" + path.encode() + b"\n" + canonical).hexdigest()


@dataclass
class Idempotency:
    key: str | None
    fingerprint: str
    principal: Principal
    ttl: timedelta

    def _pk(self) -> tuple[Any, ...]:
        return (
            IdempotencyKey.org_id == self.principal.org_id,
            IdempotencyKey.principal == self.principal.sub,
            IdempotencyKey.key == self.key,
        )

    async def _claim(self, session: AsyncSession) -> Response | None:
        """None when this request now owns the key; otherwise the response to give instead."""
        for _ in range(3):
            now = utcnow()
            session.add(
                IdempotencyKey(
                    org_id=self.principal.org_id,
                    principal=self.principal.sub,
                    key=self.key,
                    fingerprint=self.fingerprint,
                    state="in_progress",
                    created_at=now,
                    expires_at=now + self.ttl,
                )
            )
            try:
                await session.commit()
                return None
            except IntegrityError:
                await session.rollback()
            row = await session.scalar(select(IdempotencyKey).where(*self._pk()).execution_options(populate_existing=True))
            if row is None:
                continue  # released meanwhile: claim again
            stale = row.state == "in_progress" and row.created_at < now - ABANDONED_AFTER
            if row.expires_at <= now or stale:
                await session.execute(delete(IdempotencyKey).where(*self._pk(), IdempotencyKey.created_at == row.created_at))
                await session.commit()
                continue
            fp, state = row.fingerprint, row.state
            status, body, stored_headers = row.response_status, row.response_body, row.response_headers
            await session.rollback()  # ends the read; expires `row`, hence the copies above
            if fp != self.fingerprint:
                return problem(422, f"{HEADER} was already used with a different request payload")
            if state != "completed":
                return problem(409, f"a request with this {HEADER} is still being processed", headers={"Retry-After": "1"})
            headers = {**(stored_headers or {}), REPLAYED: "true"}
            if body is None:
                return Response(status_code=status or 204, headers=headers)
            return JSONResponse(body, status_code=status or 200, headers=headers)
        return problem(409, f"a request with this {HEADER} is still being processed", headers={"Retry-After": "1"})

    async def run(
        self,
        session: AsyncSession,
        status_code: int,
        action: Callable[[], Awaitable[BaseModel | None]],
        headers: Callable[[Any], dict[str, str]] | None = None,
    ) -> Response:
        """Run `action` (which flushes, never commits) and commit its work with the stored response."""
        if self.key is not None:
            answer = await self._claim(session)
            if answer is not None:
                return answer
        try:
            result = await action()
            body = result.model_dump(mode="json") if result is not None else None
            extra_headers = headers(body) if headers and body is not None else {}
            if self.key is not None:
                await session.execute(
                    update(IdempotencyKey)
                    .where(*self._pk())
                    .values(state="completed", response_status=status_code, response_body=body, response_headers=extra_headers)
                )
            await session.commit()
        except BaseException:
            await session.rollback()
            if self.key is not None:
                await session.execute(delete(IdempotencyKey).where(*self._pk(), IdempotencyKey.state == "in_progress"))
                await session.commit()
            raise
        if body is None:
            return Response(status_code=status_code, headers=extra_headers)
        return JSONResponse(body, status_code=status_code, headers=extra_headers)


def _key_from(value: str | None) -> str | None:
    if value is None:
        return None
    match = _KEY.match(value.strip())
    if not match:
        raise RespondWith(problem(400, f"{HEADER} must be 1-255 visible ASCII characters"))
    return match.group(1)


_DESCRIPTION = (
    "Unique key for this operation (draft-ietf-httpapi-idempotency-key-header), 1-255 visible ASCII "
    "characters. Repeating a completed request with the same key replays its response."
)


async def _idempotency(request: Request, principal: Principal, key: str | None) -> Idempotency:
    return Idempotency(
        key=_key_from(key),
        fingerprint=fingerprint(request.method, request.url.path, await request.body()),
        principal=principal,
        ttl=context_of(request).idempotency_ttl,
    )


async def idempotency_required(
    request: Request,
    principal: PrincipalDep,
    key: Annotated[str, Header(alias=HEADER, description=_DESCRIPTION + " Required: without it, a 400.")],
) -> Idempotency:
    # A missing header fails FastAPI's validation; the problem handlers turn that into the 400.
    return await _idempotency(request, principal, key)


async def idempotency_optional(
    request: Request,
    principal: PrincipalDep,
    key: Annotated[str | None, Header(alias=HEADER, description=_DESCRIPTION + " Optional.")] = None,
) -> Idempotency:
    return await _idempotency(request, principal, key)


IdempotencyRequired = Annotated[Idempotency, Depends(idempotency_required)]
IdempotencyOptional = Annotated[Idempotency, Depends(idempotency_optional)]


async def purge_expired(session: AsyncSession, now: datetime | None = None) -> int:
    """Delete expired keys (indexed on expires_at); returns how many. Run it from a periodic job;
    expired keys are also replaced on reuse, so skipping it only costs space."""
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= (now or utcnow())))
    await session.commit()
    return result.rowcount or 0
