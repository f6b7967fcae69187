"""Consumer-side state: which (handler, event) pairs are done, and the dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rps_port.domain.base import Base, ObjectIdStr
from rps_port.domain.types import JSONType, UTCDateTime
from rps_port.timeutil import utcnow


class ProcessedMessage(Base):
    """One row per (handler, event id) whose effects are committed; written in the handler's transaction."""

    __tablename__ = "processed_messages"

    handler: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # "sent", "skipped: <reason>" or "dead-lettered"
    outcome: Mapped[str] = mapped_column(String(200), nullable=False)
    provider_ref: Mapped[str | None] = mapped_column(String(128))
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class DeadLetter(Base):
    """A (handler, event) that cannot succeed as is: the provider's error, kept for `dead-letters replay`."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    handler: Mapped[str] = mapped_column(String(64), nullable=False)
    event_id: Mapped[str] = mapped_column(String(36), nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    org_id: Mapped[str | None] = mapped_column(ObjectIdStr)
    message: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    deliveries: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replay_outcome: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index(None, "replayed_at", "id"), Index(None, "event_id", "handler"))
