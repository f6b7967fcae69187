"""domain tables and outbox

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-29 19:22:18.077519
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rps_port.domain.types
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = ('domain',)
depends_on = None


def upgrade() -> None:
    op.create_table('customers',
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('marketing_opt_in', sa.Boolean(), nullable=False),
    sa.Column('tax_id', sa.Text(), nullable=True),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('meta', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('id', sa.String(length=24), nullable=False),
    sa.Column('created_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('src_updated_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('org_id', sa.String(length=24), nullable=False),
    sa.Column('client_id', sa.String(length=24), nullable=True),
    sa.Column('project_id', sa.String(length=24), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers'))
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customers_org_id_client_id_project_id'), ['org_id', 'client_id', 'project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_org_id_created_at_id'), ['org_id', 'created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_org_id_email'), ['org_id', 'email'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_org_id_status_created_at'), ['org_id', 'status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_src_updated_at'), ['src_updated_at'], unique=False)

    op.create_table('orders',
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('customer_id', sa.String(length=24), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('subtotal', rps_port.domain.types.Money(precision=20, scale=4), nullable=False),
    sa.Column('tax', rps_port.domain.types.Money(precision=20, scale=4), nullable=False),
    sa.Column('total', rps_port.domain.types.Money(precision=20, scale=4), nullable=False),
    sa.Column('shipping_address', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('placed_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('id', sa.String(length=24), nullable=False),
    sa.Column('created_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('src_updated_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('org_id', sa.String(length=24), nullable=False),
    sa.Column('client_id', sa.String(length=24), nullable=True),
    sa.Column('project_id', sa.String(length=24), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_org_id_client_id_project_id'), ['org_id', 'client_id', 'project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_org_id_created_at_id'), ['org_id', 'created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_org_id_customer_id_created_at'), ['org_id', 'customer_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_org_id_status_created_at'), ['org_id', 'status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_src_updated_at'), ['src_updated_at'], unique=False)
        batch_op.create_index('uq_orders_org_id_number_live', ['org_id', 'number'], unique=True, postgresql_where=sa.text('deleted_at IS NULL'), sqlite_where=sa.text('deleted_at IS NULL'))

    op.create_table('outbox',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('aggregatetype', sa.String(length=64), nullable=False),
    sa.Column('aggregateid', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('org_id', sa.String(length=24), nullable=False),
    sa.Column('client_id', sa.String(length=24), nullable=True),
    sa.Column('project_id', sa.String(length=24), nullable=True),
    sa.Column('created_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_outbox')),
    sa.UniqueConstraint('id', name=op.f('uq_outbox_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_aggregatetype_aggregateid_seq'), ['aggregatetype', 'aggregateid', 'seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_published_at_seq'), ['published_at', 'seq'], unique=False)

    op.create_table('transactions',
    sa.Column('order_id', sa.String(length=24), nullable=True),
    sa.Column('customer_id', sa.String(length=24), nullable=True),
    sa.Column('parent_id', sa.String(length=24), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('amount', rps_port.domain.types.Money(precision=20, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('provider_ref', sa.String(length=128), nullable=True),
    sa.Column('card_brand', sa.String(length=32), nullable=True),
    sa.Column('card_last4', sa.String(length=256), nullable=True),
    sa.Column('card_exp_month', sa.Integer(), nullable=True),
    sa.Column('card_exp_year', sa.Integer(), nullable=True),
    sa.Column('failure_code', sa.String(length=64), nullable=True),
    sa.Column('processed_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=24), nullable=False),
    sa.Column('created_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('src_updated_at', rps_port.domain.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('org_id', sa.String(length=24), nullable=False),
    sa.Column('client_id', sa.String(length=24), nullable=True),
    sa.Column('project_id', sa.String(length=24), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transactions'))
    )
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transactions_org_id_client_id_project_id'), ['org_id', 'client_id', 'project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transactions_org_id_created_at_id'), ['org_id', 'created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transactions_org_id_customer_id_created_at'), ['org_id', 'customer_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_transactions_org_id_kind_status_created_at'), ['org_id', 'kind', 'status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_transactions_org_id_order_id'), ['org_id', 'order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transactions_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transactions_src_updated_at'), ['src_updated_at'], unique=False)
        batch_op.create_index('uq_transactions_provider_ref_live', ['provider', 'provider_ref'], unique=True, postgresql_where=sa.text('deleted_at IS NULL AND provider_ref IS NOT NULL'), sqlite_where=sa.text('deleted_at IS NULL AND provider_ref IS NOT NULL'))

    op.create_table('customer_addresses',
    sa.Column('customer_id', sa.String(length=24), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('line1', sa.Text(), nullable=False),
    sa.Column('line2', sa.Text(), nullable=True),
    sa.Column('city', sa.Text(), nullable=False),
    sa.Column('region', sa.Text(), nullable=True),
    sa.Column('postal_code', sa.String(length=32), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('org_id', sa.String(length=24), nullable=False),
    sa.Column('client_id', sa.String(length=24), nullable=True),
    sa.Column('project_id', sa.String(length=24), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_addresses_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'position', name=op.f('pk_customer_addresses'))
    )
    op.create_table('order_items',
    sa.Column('order_id', sa.String(length=24), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', rps_port.domain.types.Money(precision=20, scale=4), nullable=False),
    sa.Column('discount', rps_port.domain.types.Money(precision=20, scale=4), nullable=True),
    sa.Column('tax_rate', rps_port.domain.types.Money(precision=20, scale=4), nullable=True),
    sa.Column('org_id', sa.String(length=24), nullable=False),
    sa.Column('client_id', sa.String(length=24), nullable=True),
    sa.Column('project_id', sa.String(length=24), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_items_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('order_id', 'position', name=op.f('pk_order_items'))
    )


def downgrade() -> None:
    op.drop_table('order_items')
    op.drop_table('customer_addresses')
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.drop_index('uq_transactions_provider_ref_live', postgresql_where=sa.text('deleted_at IS NULL AND provider_ref IS NOT NULL'), sqlite_where=sa.text('deleted_at IS NULL AND provider_ref IS NOT NULL'))
        batch_op.drop_index(batch_op.f('ix_transactions_src_updated_at'))
        batch_op.drop_index(batch_op.f('ix_transactions_parent_id'))
        batch_op.drop_index(batch_op.f('ix_transactions_org_id_order_id'))
        batch_op.drop_index(batch_op.f('ix_transactions_org_id_kind_status_created_at'))
        batch_op.drop_index(batch_op.f('ix_transactions_org_id_customer_id_created_at'))
        batch_op.drop_index(batch_op.f('ix_transactions_org_id_created_at_id'))
        batch_op.drop_index(batch_op.f('ix_transactions_org_id_client_id_project_id'))

    op.drop_table('transactions')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_published_at_seq'))
        batch_op.drop_index(batch_op.f('ix_outbox_aggregatetype_aggregateid_seq'))

    op.drop_table('outbox')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('uq_orders_org_id_number_live', postgresql_where=sa.text('deleted_at IS NULL'), sqlite_where=sa.text('deleted_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_orders_src_updated_at'))
        batch_op.drop_index(batch_op.f('ix_orders_org_id_status_created_at'))
        batch_op.drop_index(batch_op.f('ix_orders_org_id_customer_id_created_at'))
        batch_op.drop_index(batch_op.f('ix_orders_org_id_created_at_id'))
        batch_op.drop_index(batch_op.f('ix_orders_org_id_client_id_project_id'))

    op.drop_table('orders')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customers_src_updated_at'))
        batch_op.drop_index(batch_op.f('ix_customers_org_id_status_created_at'))
        batch_op.drop_index(batch_op.f('ix_customers_org_id_email'))
        batch_op.drop_index(batch_op.f('ix_customers_org_id_created_at_id'))
        batch_op.drop_index(batch_op.f('ix_customers_org_id_client_id_project_id'))

    op.drop_table('customers')
