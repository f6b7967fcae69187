"""shadow results per run and endpoint

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-29 20:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rps_port.domain.types

revision = '0006'
down_revision = '0001'
branch_labels = ('shadow',)
depends_on = None


def upgrade() -> None:
    op.create_table('shadow_results',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('finished_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('endpoint', sa.String(length=200), nullable=False),
    sa.Column('compared', sa.Integer(), nullable=False),
    sa.Column('mismatches', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.Column('upper_bound', sa.Float(), nullable=False),
    sa.Column('max_mismatch_rate', sa.Float(), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shadow_results'))
    )
    with op.batch_alter_table('shadow_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shadow_results_finished_at'), ['finished_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_shadow_results_run_id'), ['run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('shadow_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shadow_results_run_id'))
        batch_op.drop_index(batch_op.f('ix_shadow_results_finished_at'))
    op.drop_table('shadow_results')
