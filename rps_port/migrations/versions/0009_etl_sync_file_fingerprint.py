"""etl sync state: the fingerprint of the source file each watermark was read from

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("etl_sync_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("file_size", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("file_mtime_ns", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("file_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("file_mapping_version", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("last_run", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("etl_sync_state", schema=None) as batch_op:
        batch_op.drop_column("last_run")
        batch_op.drop_column("file_mapping_version")
        batch_op.drop_column("file_digest")
        batch_op.drop_column("file_mtime_ns")
        batch_op.drop_column("file_size")
