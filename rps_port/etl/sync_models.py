"""Tables of the incremental sync and of verification, next to the data they describe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rps_port.domain.base import Base
from rps_port.domain.types import JSONType, UTCDateTime


class EtlSyncState(Base):
    """Where the sync of one collection stands: a change-stream resume token or a watermark.

    Written in the same transaction as the changes it covers, so a restart resumes exactly there.
    For a file source, the watermark comes with the fingerprint of the file it was read from
    (`file_*`, with the mapping it was read through): a later run that finds the same file under the
    same mapping skips the collection (`last_run` "unchanged").
    """

    __tablename__ = "etl_sync_state"

    source_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16), nullable=False)  # changestream | events | watermark
    resume_token: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    watermark_ts: Mapped[datetime | None] = mapped_column(UTCDateTime())
    watermark_id: Mapped[str | None] = mapped_column(String(64))
    applied: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lag_seconds: Mapped[float | None] = mapped_column(Float)
    source_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    file_mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    file_digest: Mapped[str | None] = mapped_column(String(64))
    file_mapping_version: Mapped[str | None] = mapped_column(String(80))  # the mapping that read that file
    last_run: Mapped[str | None] = mapped_column(String(16))  # watermark: scanned | unchanged | queried


class EtlVerifyRun(Base):
    """One `etl verify`: when, how, whether it was clean, and its differences (capped)."""

    __tablename__ = "etl_verify_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    mode: Mapped[str] = mapped_column(String(20), nullable=False)
    clean: Mapped[bool] = mapped_column(Boolean, nullable=False)
    differences: Mapped[int] = mapped_column(Integer, nullable=False)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    __table_args__ = (Index(None, "finished_at"),)


class EtlRangeFailure(Base):
    """A range task that failed under an executor, with the command that retries it."""

    __tablename__ = "etl_range_failures"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    range_lo: Mapped[str] = mapped_column(String(32), primary_key=True)
    range_hi: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str] = mapped_column(Text, nullable=False)
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
