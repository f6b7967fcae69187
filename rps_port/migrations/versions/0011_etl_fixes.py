"""etl fixes: rejected documents a person edited and replayed, bound to the source version they fix

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rps_port.domain.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "etl_fixes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("source_digest", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("fixed_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_etl_fixes")),
    )
    with op.batch_alter_table("etl_fixes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_etl_fixes_collection_record_id"), ["collection", "record_id"], unique=True)


def downgrade() -> None:
    op.drop_table("etl_fixes")
