"""cutover state, cohort overrides, gate results

Revision ID: 0007
Revises: 0001
Create Date: 2026-11-29 19:45:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rps_port.domain.types
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0001'
branch_labels = ('cutover',)
depends_on = None


def upgrade() -> None:
    op.create_table('cutover_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('percent', sa.Float(), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('paused_reason', sa.Text(), nullable=True),
    sa.Column('live_since', rps_port.domain.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('audit_seq', sa.Integer(), nullable=False),
    sa.Column('audit_head', sa.String(length=64), nullable=True),
    sa.Column('updated_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cutover_state'))
    )
    op.create_table('cutover_cohort_overrides',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cutover_cohort_overrides')),
    sa.UniqueConstraint('kind', 'subject_id', name=op.f('uq_cutover_cohort_overrides_kind_subject_id'))
    )
    op.create_table('cutover_gate_results',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('evaluated_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('from_stage', sa.String(length=16), nullable=False),
    sa.Column('to_stage', sa.String(length=16), nullable=False),
    sa.Column('to_percent', sa.Float(), nullable=False),
    sa.Column('gate', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('enforced', sa.Boolean(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('evidence', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cutover_gate_results'))
    )
    with op.batch_alter_table('cutover_gate_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cutover_gate_results_evaluated_at'), ['evaluated_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cutover_gate_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cutover_gate_results_evaluated_at'))
    op.drop_table('cutover_gate_results')
    op.drop_table('cutover_cohort_overrides')
    op.drop_table('cutover_state')
