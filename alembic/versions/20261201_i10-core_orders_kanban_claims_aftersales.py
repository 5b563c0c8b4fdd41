"""orders for every type: new statuses (arrived, shipped, awaiting_payment), claim leases, city, the
order_change feed of the live kanban, after-sales cases and their call log

Revision ID: i10_core
Revises: 0005
Create Date: 2026-12-01
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gc_admin.core.types


revision: str = 'i10_core'  # alembic refuses '-' in revision ids
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = ("created", "paid", "accepted", "in_fulfilment", "completed", "cancelled", "refund_requested",
                "refunded", "after_sales")
STATUSES = ("created", "paid", "accepted", "arrived", "in_fulfilment", "shipped", "awaiting_payment", "completed",
            "cancelled", "refund_requested", "refunded", "after_sales")


def _in(column: str, values) -> str:
    return " OR ".join(f"{column} = '{v}'" for v in values)


def upgrade() -> None:
    op.create_table('order_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('what', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('order_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_change_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_change_order_id'), ['order_id'], unique=False)

    op.create_table('order_case',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('notes', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('outcome_note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('opened_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('opened_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('closed_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("outcome IS NULL OR outcome = 'resolved' OR outcome = 'refunded'", name='ck_order_case_outcome'),
    sa.CheckConstraint("status = 'open' OR status = 'closed'", name='ck_order_case_status'),
    sa.ForeignKeyConstraint(['order_id'], ['service_order.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id')
    )
    with op.batch_alter_table('order_case', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_case_status'), ['status'], unique=False)

    op.create_table('order_case_call',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('called_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('by_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("outcome = 'reached' OR outcome = 'no_answer' OR outcome = 'busy' OR outcome = 'wrong_number' OR outcome = 'callback'", name='ck_order_case_call_outcome'),
    sa.ForeignKeyConstraint(['case_id'], ['order_case.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('order_case_call', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_case_call_case_id'), ['case_id'], unique=False)

    with op.batch_alter_table('service_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('city', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('claimed_by_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_service_order_city'), ['city'], unique=False)
        batch_op.create_index('ix_service_order_claimed_by', ['claimed_by', 'status'], unique=False)
        batch_op.create_index('ix_service_order_status_paid', ['status', 'paid_at', 'id'], unique=False)
        batch_op.drop_constraint('ck_service_order_status', type_='check')
        batch_op.create_check_constraint('ck_service_order_status', _in('status', STATUSES))



def downgrade() -> None:
    with op.batch_alter_table('service_order', schema=None) as batch_op:
        batch_op.drop_constraint('ck_service_order_status', type_='check')
        batch_op.create_check_constraint('ck_service_order_status', _in('status', OLD_STATUSES))
        batch_op.drop_index('ix_service_order_status_paid')
        batch_op.drop_index('ix_service_order_claimed_by')
        batch_op.drop_index(batch_op.f('ix_service_order_city'))
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('claimed_by_name')
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('city')

    with op.batch_alter_table('order_case_call', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_case_call_case_id'))

    op.drop_table('order_case_call')
    with op.batch_alter_table('order_case', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_case_status'))

    op.drop_table('order_case')
    with op.batch_alter_table('order_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_change_order_id'))
        batch_op.drop_index(batch_op.f('ix_order_change_at'))

    op.drop_table('order_change')
