"""The transactional outbox table (column names follow Debezium's outbox event router)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from rps_port.domain.base import Base, ObjectIdStr
from rps_port.domain.types import JSONType, UTCDateTime
from rps_port.timeutil import utcnow


class OutboxEvent(Base):
    __tablename__ = "outbox"

    # seq orders events (per aggregate too); id is the event id consumers deduplicate on.
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), nullable=False, unique=True, default=lambda: str(uuid.uuid4()))
    aggregatetype: Mapped[str] = mapped_column(String(64), nullable=False)
    aggregateid: Mapped[str] = mapped_column(String(64), nullable=False)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    org_id: Mapped[str] = mapped_column(ObjectIdStr, nullable=False)
    client_id: Mapped[str | None] = mapped_column(ObjectIdStr)
    project_id: Mapped[str | None] = mapped_column(ObjectIdStr)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "published_at", "seq"), Index(None, "aggregatetype", "aggregateid", "seq"))


def emit(
    session: Session,
    *,
    aggregate_type: str,
    aggregate_id: str,
    event_type: str,
    payload: dict[str, Any],
    org_id: str,
    client_id: str | None = None,
    project_id: str | None = None,
) -> OutboxEvent:
    """Record a domain event in the caller's transaction; the relay publishes it after commit."""
    event = OutboxEvent(
        id=str(uuid.uuid4()),
        aggregatetype=aggregate_type,
        aggregateid=aggregate_id,
        type=event_type,
        payload=payload,
        org_id=org_id,
        client_id=client_id,
        project_id=project_id,
        created_at=utcnow(),
        attempts=0,
    )
    session.add(event)
    return event
