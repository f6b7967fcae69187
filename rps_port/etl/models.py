"""The ETL's bookkeeping tables, in the target database next to the data they describe.

Checkpoints, rejects and flags are written in the same transaction as the rows of their batch,
so a crash at any point leaves them consistent with the data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rps_port.crypto.types import EncryptedString
from rps_port.domain.base import Base
from rps_port.domain.types import JSONType, UTCDateTime


class EtlRun(Base):
    """One `etl run` invocation. Runs that resume an interrupted one share its `job_id`."""

    __tablename__ = "etl_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(36), nullable=False)
    job_key: Mapped[str] = mapped_column(String(64), nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    mapping_version: Mapped[str] = mapped_column(String(80), nullable=False)
    collections: Mapped[list[str]] = mapped_column(JSONType, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # running, done, imbalanced, failed, interrupted
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # The job started on empty target tables: a bulk load (see rps_port.etl.bulkload); a resumed run keeps it.
    bulk_load: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (Index(None, "job_key", "started_at"),)


class EtlCheckpoint(Base):
    """Progress of one `_id` range of one collection within a job, and its outcome counts."""

    __tablename__ = "etl_checkpoints"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    range_lo: Mapped[str] = mapped_column(String(32), primary_key=True)  # inclusive; "" = from the start
    range_hi: Mapped[str | None] = mapped_column(String(32))  # exclusive; NULL = up to the bound
    bound: Mapped[str | None] = mapped_column(String(32))  # highest _id at the job's start (inclusive)
    position: Mapped[str | None] = mapped_column(Text)  # the source's resume token after the last committed batch
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # pending, running, done
    loaded: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rejected: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    skipped: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    flagged: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    run_id: Mapped[str] = mapped_column(String(36), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class EtlReject(Base):
    """A legacy document that could not be loaded, with the raw document to replay it later."""

    __tablename__ = "etl_rejects"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    collection: Mapped[str] = mapped_column(String(64), nullable=False)
    record_id: Mapped[str] = mapped_column(String(64), nullable=False)
    reason: Mapped[str] = mapped_column(String(64), nullable=False)
    field_path: Mapped[str] = mapped_column(Text, nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    # The raw document (canonical Extended JSON) may hold personal data: encrypted at rest like PII columns.
    document: Mapped[str] = mapped_column(EncryptedString("etl_rejects.document"), nullable=False)
    mapping_version: Mapped[str] = mapped_column(String(80), nullable=False)
    run_id: Mapped[str] = mapped_column(String(36), nullable=False)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index(None, "collection", "record_id", unique=True),
        Index(None, "collection", "reason"),
    )


class EtlFix(Base):
    """A rejected document a person edited and replayed from a file (`rps_port.etl.fixes`): it stands
    in for the source document while the source still holds the version it was made for."""

    __tablename__ = "etl_fixes"

    # One-column key, so `rps-port crypto rotate` re-encrypts `document` as it does a reject's.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    collection: Mapped[str] = mapped_column(String(64), nullable=False)
    record_id: Mapped[str] = mapped_column(String(64), nullable=False)
    source_digest: Mapped[str] = mapped_column(String(64), nullable=False)  # sha256 of the rejected document
    # The edited document (canonical Extended JSON) may hold personal data, as a reject's does.
    document: Mapped[str] = mapped_column(EncryptedString("etl_fixes.document"), nullable=False)
    run_id: Mapped[str] = mapped_column(String(36), nullable=False)  # the replay that loaded it
    fixed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (Index(None, "collection", "record_id", unique=True),)


class EtlFlag(Base):
    """A loaded row with something to look at, e.g. a dangling reference (`dangling_customer`)."""

    __tablename__ = "etl_flags"

    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    flag: Mapped[str] = mapped_column(String(64), primary_key=True)
    detail: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str] = mapped_column(String(36), nullable=False)

    __table_args__ = (Index(None, "flag"),)


class EtlReconciliation(Base):
    """Per run and collection: source documents = loaded + rejected + skipped (with reasons)."""

    __tablename__ = "etl_reconciliations"

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(36), nullable=False)
    source_total: Mapped[int] = mapped_column(Integer, nullable=False)
    loaded: Mapped[int] = mapped_column(Integer, nullable=False)
    rejected: Mapped[int] = mapped_column(Integer, nullable=False)
    skipped: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    flagged: Mapped[int] = mapped_column(Integer, nullable=False)
    balanced: Mapped[bool] = mapped_column(Boolean, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class EtlDeferredDDL(Base):
    """A secondary index or parent-child foreign key a bulk load dropped, with the DDL that restores it.

    Rows stay until the index or constraint is back, so a load killed half-way still knows what to
    rebuild (`rps-port etl indexes restore`, or the next run of the job at its end)."""

    __tablename__ = "etl_deferred_ddl"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(128), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # index, foreign_key
    ddl: Mapped[str] = mapped_column(Text, nullable=False)
    job_id: Mapped[str] = mapped_column(String(36), nullable=False)
    deferred_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
