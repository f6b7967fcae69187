"""worker state: processed messages and dead letters

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-29 19:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rps_port.domain.types
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0001'
branch_labels = ('worker',)
depends_on = None


def upgrade() -> None:
    op.create_table('processed_messages',
    sa.Column('handler', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('outcome', sa.String(length=200), nullable=False),
    sa.Column('provider_ref', sa.String(length=128), nullable=True),
    sa.Column('processed_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('handler', 'event_id', name=op.f('pk_processed_messages'))
    )
    op.create_table('dead_letters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('handler', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('org_id', sa.String(length=24), nullable=True),
    sa.Column('message', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('deliveries', sa.Integer(), nullable=False),
    sa.Column('created_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('replayed_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('replay_outcome', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letters'))
    )
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dead_letters_event_id_handler'), ['event_id', 'handler'], unique=False)
        batch_op.create_index(batch_op.f('ix_dead_letters_replayed_at_id'), ['replayed_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dead_letters_replayed_at_id'))
        batch_op.drop_index(batch_op.f('ix_dead_letters_event_id_handler'))
    op.drop_table('dead_letters')
    op.drop_table('processed_messages')
