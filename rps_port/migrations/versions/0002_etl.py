"""etl bookkeeping: runs, checkpoints, rejects, flags, reconciliations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 20:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rps_port.domain.types
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = ('etl',)
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
TS = rps_port.domain.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('etl_runs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('job_key', sa.String(length=64), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('mapping_version', sa.String(length=80), nullable=False),
    sa.Column('collections', JSON, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', TS, nullable=False),
    sa.Column('finished_at', TS, nullable=True),
    sa.Column('summary', JSON, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_etl_runs'))
    )
    with op.batch_alter_table('etl_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_etl_runs_job_key_started_at'), ['job_key', 'started_at'], unique=False)

    op.create_table('etl_checkpoints',
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('collection', sa.String(length=64), nullable=False),
    sa.Column('range_lo', sa.String(length=32), nullable=False),
    sa.Column('range_hi', sa.String(length=32), nullable=True),
    sa.Column('bound', sa.String(length=32), nullable=True),
    sa.Column('position', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('loaded', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('skipped', JSON, nullable=False),
    sa.Column('flagged', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('job_id', 'collection', 'range_lo', name=op.f('pk_etl_checkpoints'))
    )

    op.create_table('etl_rejects',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('collection', sa.String(length=64), nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('field_path', sa.Text(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('mapping_version', sa.String(length=80), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('first_seen_at', TS, nullable=False),
    sa.Column('last_seen_at', TS, nullable=False),
    sa.Column('resolved_at', TS, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_etl_rejects'))
    )
    with op.batch_alter_table('etl_rejects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_etl_rejects_collection_reason'), ['collection', 'reason'], unique=False)
        batch_op.create_index(batch_op.f('ix_etl_rejects_collection_record_id'), ['collection', 'record_id'], unique=True)

    op.create_table('etl_flags',
    sa.Column('collection', sa.String(length=64), nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('flag', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('collection', 'record_id', 'flag', name=op.f('pk_etl_flags'))
    )
    with op.batch_alter_table('etl_flags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_etl_flags_flag'), ['flag'], unique=False)

    op.create_table('etl_reconciliations',
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('collection', sa.String(length=64), nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('source_total', sa.Integer(), nullable=False),
    sa.Column('loaded', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('skipped', JSON, nullable=False),
    sa.Column('flagged', sa.Integer(), nullable=False),
    sa.Column('balanced', sa.Boolean(), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('run_id', 'collection', name=op.f('pk_etl_reconciliations'))
    )


def downgrade() -> None:
    op.drop_table('etl_reconciliations')
    with op.batch_alter_table('etl_flags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_etl_flags_flag'))
    op.drop_table('etl_flags')
    with op.batch_alter_table('etl_rejects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_etl_rejects_collection_record_id'))
        batch_op.drop_index(batch_op.f('ix_etl_rejects_collection_reason'))
    op.drop_table('etl_rejects')
    op.drop_table('etl_checkpoints')
    with op.batch_alter_table('etl_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_etl_runs_job_key_started_at'))
    op.drop_table('etl_runs')
