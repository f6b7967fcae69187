"""Cutover state, cohort overrides and gate results, stored in the target database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rps_port.domain.base import Base
from rps_port.domain.types import JSONType, UTCDateTime
from rps_port.timeutil import utcnow


class CutoverState(Base):
    """One row (id = 1): the stage in force. `version` guards against two operators racing."""

    __tablename__ = "cutover_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stage: Mapped[str] = mapped_column(String(16), nullable=False, default="legacy")
    percent: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    paused: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    paused_reason: Mapped[str | None] = mapped_column(Text)
    live_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    audit_seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    audit_head: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(128))


class CohortOverride(Base):
    """An org or client forced into (allow) or out of (deny) the canary cohort."""

    __tablename__ = "cutover_cohort_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)  # org | client
    subject_id: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(8), nullable=False)  # allow | deny
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (UniqueConstraint("kind", "subject_id"),)


class GateRecord(Base):
    """A gate evaluated for an executed move (passed or not), with its evidence."""

    __tablename__ = "cutover_gate_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    from_stage: Mapped[str] = mapped_column(String(16), nullable=False)
    to_stage: Mapped[str] = mapped_column(String(16), nullable=False)
    to_percent: Mapped[float] = mapped_column(Float, nullable=False)
    gate: Mapped[str] = mapped_column(String(32), nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    enforced: Mapped[bool] = mapped_column(Boolean, nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)

    __table_args__ = (Index(None, "evaluated_at"),)
