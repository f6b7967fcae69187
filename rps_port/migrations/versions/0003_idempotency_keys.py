"""idempotency keys for the API

Revision ID: 0003
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rps_port.domain.types
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0001'
branch_labels = ('api',)
depends_on = None


def upgrade() -> None:
    op.create_table('idempotency_keys',
    sa.Column('org_id', sa.String(length=24), nullable=False),
    sa.Column('principal', sa.String(length=256), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('response_headers', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('org_id', 'principal', 'key', name=op.f('pk_idempotency_keys'))
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_expires_at'))

    op.drop_table('idempotency_keys')
