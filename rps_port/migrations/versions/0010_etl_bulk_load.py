"""etl bulk load: runs say whether they started on empty tables; the DDL a bulk load deferred

Revision ID: 0010
Revises: 0002
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rps_port.domain.types import UTCDateTime

revision = "0010"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("etl_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bulk_load", sa.Boolean(), nullable=True))
    op.create_table(
        "etl_deferred_ddl",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("table_name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ddl", sa.Text(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("deferred_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_etl_deferred_ddl")),
    )


def downgrade() -> None:
    op.drop_table("etl_deferred_ddl")
    with op.batch_alter_table("etl_runs", schema=None) as batch_op:
        batch_op.drop_column("bulk_load")
