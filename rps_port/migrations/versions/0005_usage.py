"""usage ledger

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-29 19:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rps_port.domain.types
import rps_port.usage.models
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0001'
branch_labels = ('usage',)
depends_on = None


def upgrade() -> None:
    op.create_table('usage_events',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('quantity', rps_port.usage.models.ExactDecimal(precision=30, scale=12), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=True),
    sa.Column('model', sa.String(length=128), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('org_id', sa.String(length=24), nullable=False),
    sa.Column('client_id', sa.String(length=24), nullable=True),
    sa.Column('project_id', sa.String(length=24), nullable=True),
    sa.Column('occurred_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('unit_price', rps_port.usage.models.ExactDecimal(precision=30, scale=12), nullable=True),
    sa.Column('cost', rps_port.usage.models.ExactDecimal(precision=30, scale=12), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('pricing_version', sa.String(length=32), nullable=True),
    sa.Column('meta', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_events'))
    )
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_usage_events_org_id_client_id_project_id_occurred_at'), ['org_id', 'client_id', 'project_id', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_usage_events_org_id_occurred_at'), ['org_id', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_usage_events_type_occurred_at'), ['type', 'occurred_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_usage_events_type_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_usage_events_org_id_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_usage_events_org_id_client_id_project_id_occurred_at'))
    op.drop_table('usage_events')
