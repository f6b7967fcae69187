"""etl sync state, verify runs and range failures

Revision ID: 0008
Revises: 0001
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import rps_port.domain.types

revision = "0008"
down_revision = "0001"
branch_labels = ("etl_sync",)
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "etl_sync_state",
        sa.Column("source_key", sa.String(length=64), nullable=False),
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("resume_token", JSON, nullable=True),
        sa.Column("watermark_ts", rps_port.domain.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("watermark_id", sa.String(length=64), nullable=True),
        sa.Column("applied", sa.Integer(), nullable=False),
        sa.Column("lag_seconds", sa.Float(), nullable=True),
        sa.Column("source_time", rps_port.domain.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source_key", "collection", name=op.f("pk_etl_sync_state")),
    )
    op.create_table(
        "etl_verify_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("started_at", rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("clean", sa.Boolean(), nullable=False),
        sa.Column("differences", sa.Integer(), nullable=False),
        sa.Column("summary", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_etl_verify_runs")),
    )
    with op.batch_alter_table("etl_verify_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_etl_verify_runs_finished_at"), ["finished_at"], unique=False)
    op.create_table(
        "etl_range_failures",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("range_lo", sa.String(length=32), nullable=False),
        sa.Column("range_hi", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failed_at", rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "collection", "range_lo", name=op.f("pk_etl_range_failures")),
    )


def downgrade() -> None:
    op.drop_table("etl_range_failures")
    with op.batch_alter_table("etl_verify_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_etl_verify_runs_finished_at"))
    op.drop_table("etl_verify_runs")
    op.drop_table("etl_sync_state")
