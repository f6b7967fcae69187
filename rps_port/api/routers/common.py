"""Pieces every resource router shares: id and list parameters, documented error responses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import AfterValidator

from rps_port.api.problems import problem_responses
from rps_port.services.pagination import DEFAULT_LIMIT, MAX_LIMIT
from rps_port.timeutil import ensure_utc

OBJECT_ID = r"^[0-9a-fA-F]{24}$"

IdPath = Annotated[str, Path(pattern=OBJECT_ID, description="Record id (the legacy ObjectId, 24 hex).")]
RefQuery = Annotated[str | None, Query(pattern=OBJECT_ID)]
Sort = Annotated[
    Literal["-created_at", "created_at"],
    Query(description="`-created_at` (default): newest first; `created_at`: oldest first. Ties break on id."),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Page size, at most {MAX_LIMIT}.")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page; omit for the first page.")
]


def _utc(value: datetime | None) -> datetime | None:
    """Naive times are UTC; a time that has no UTC equivalent (year 1 at +01:00) is a 422, not a 500."""
    if value is None:
        return None
    try:
        return ensure_utc(value)
    except OverflowError:
        raise ValueError("time is out of range once converted to UTC") from None


UtcTime = Annotated[datetime | None, AfterValidator(_utc)]
CreatedAfter = Annotated[UtcTime, Query(description="Only records created at or after this time (ISO 8601).")]
CreatedBefore = Annotated[UtcTime, Query(description="Only records created before this time (ISO 8601).")]

DEFAULT_PAGE = DEFAULT_LIMIT

READ_ERRORS = problem_responses(401, 403, 422, 429, 500)
DETAIL_ERRORS = problem_responses(401, 403, 404, 422, 429, 500)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429, 500)

_REPLAYED = {
    "description": "`true` when this is the stored response of an earlier request with the same Idempotency-Key.",
    "schema": {"type": "string", "enum": ["true"]},
}
_LOCATION = {"description": "The new resource, relative to the request URL.", "schema": {"type": "string"}}


def write_responses(status: int, *, location: bool = False) -> dict[int | str, dict]:
    """Error responses plus the success status's headers (Location, Idempotent-Replayed)."""
    headers = {"Idempotent-Replayed": _REPLAYED, **({"Location": _LOCATION} if location else {})}
    return {status: {"headers": headers}, **WRITE_ERRORS}


def lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None
