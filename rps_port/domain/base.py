"""Declarative base and the columns every migrated row carries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from rps_port.domain.types import JSONType, UTCDateTime
from rps_port.ids import new_object_id
from rps_port.timeutil import utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ObjectIdStr = String(24)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class Attributed:
    """Org/client/project attribution: every row belongs to one org (tenancy scoping is org first)."""

    org_id: Mapped[str] = mapped_column(ObjectIdStr, nullable=False)
    client_id: Mapped[str | None] = mapped_column(ObjectIdStr, nullable=True)
    project_id: Mapped[str | None] = mapped_column(ObjectIdStr, nullable=True)


class LegacyDocument(Attributed):
    """A top-level record that came from (or can go back to) a legacy MongoDB document."""

    id: Mapped[str] = mapped_column(ObjectIdStr, primary_key=True, default=new_object_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Version of the source document this row was written from; guards against stale writes in sync.
    src_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Legacy fields the mapping does not know, kept verbatim (canonical Extended JSON values).
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
