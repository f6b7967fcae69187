"""Opaque keyset cursors on (created_at, id), newest or oldest first: stable when rows are inserted meanwhile."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_

from rps_port.ids import is_object_id
from rps_port.services.errors import InvalidInput
from rps_port.timeutil import ensure_utc

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


def encode_cursor(created_at: datetime, id_: str, descending: bool = True) -> str:
    position = [ensure_utc(created_at).isoformat(), id_, "d" if descending else "a"]
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, descending: bool = True) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, id_, direction = json.loads(raw)
        when = ensure_utc(datetime.fromisoformat(created))
    except (binascii.Error, ValueError, TypeError, OverflowError):
        raise InvalidInput("cursor is not a cursor this API returned", field="cursor") from None
    if not is_object_id(id_) or direction not in ("d", "a"):
        raise InvalidInput("cursor is not a cursor this API returned", field="cursor")
    if (direction == "d") != descending:
        raise InvalidInput("cursor was issued for the other sort order", field="cursor")
    return when, id_


@dataclass
class PageResult:
    items: Sequence[Any]
    next_cursor: str | None


def paginate(
    stmt: Select[Any], model: Any, cursor: str | None, limit: int, *, descending: bool = True
) -> Select[Any]:
    """Rows after the cursor in (created_at, id) order, newest first unless `descending` is False;
    one more than `limit`, so `page_of` knows whether a next page exists."""
    if cursor:
        when, id_ = decode_cursor(cursor, descending)
        if descending:
            after = or_(model.created_at < when, and_(model.created_at == when, model.id < id_))
        else:
            after = or_(model.created_at > when, and_(model.created_at == when, model.id > id_))
        stmt = stmt.where(after)
    if descending:
        return stmt.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)
    return stmt.order_by(model.created_at.asc(), model.id.asc()).limit(limit + 1)


def page_of(rows: Sequence[Any], limit: int, *, descending: bool = True) -> PageResult:
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        return PageResult(rows, encode_cursor(last.created_at, last.id, descending))
    return PageResult(rows, None)
