"""The Idempotency-Key store: one row per (org, principal, key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rps_port.domain.base import Base, ObjectIdStr
from rps_port.domain.types import JSONType, UTCDateTime


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    org_id: Mapped[str] = mapped_column(ObjectIdStr, primary_key=True)
    principal: Mapped[str] = mapped_column(String(256), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # sha256 of method, route and canonical request body: the same key with another payload is a 422.
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # in_progress | completed
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[Any | None] = mapped_column(JSONType)
    response_headers: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (Index(None, "expires_at"),)
