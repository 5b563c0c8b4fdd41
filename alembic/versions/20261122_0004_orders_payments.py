"""orders and payments: service orders and their history, coupon purchases, payments, refunds,
the append-only ledger (流水), points / stored-value balances and ledgers, notify log, reconciliation runs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gc_admin.core.types

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('payment_notify_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('received_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('event_type', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('out_trade_no', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('out_refund_no', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('transaction_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('amount_fen', sa.BigInteger(), nullable=True),
    sa.Column('body_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.CheckConstraint("outcome = 'applied' OR outcome = 'replay' OR outcome = 'anomaly' OR outcome = 'rejected' OR outcome = 'ignored'", name='ck_payment_notify_log_outcome'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('payment_notify_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_notify_log_out_trade_no'), ['out_trade_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_notify_log_received_at'), ['received_at'], unique=False)

    op.create_table('reconciliation_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bill_date', sa.Date(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('bill_rows', sa.Integer(), nullable=False),
    sa.Column('ledger_rows', sa.Integer(), nullable=False),
    sa.Column('matched', sa.Integer(), nullable=False),
    sa.Column('missing_in_ledger', sa.Integer(), nullable=False),
    sa.Column('missing_in_bill', sa.Integer(), nullable=False),
    sa.Column('amount_mismatch', sa.Integer(), nullable=False),
    sa.Column('bill_net_fen', sa.BigInteger(), nullable=False),
    sa.Column('ledger_net_fen', sa.BigInteger(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('actor_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reconciliation_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconciliation_run_bill_date'), ['bill_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_reconciliation_run_created_at'), ['created_at'], unique=False)

    op.create_table('points_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('delta', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['mp_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ref')
    )
    with op.batch_alter_table('points_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_points_entry_user_id'), ['user_id'], unique=False)

    op.create_table('stored_value_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('delta_fen', sa.BigInteger(), nullable=False),
    sa.Column('balance_after_fen', sa.BigInteger(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['mp_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ref')
    )
    with op.batch_alter_table('stored_value_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stored_value_entry_user_id'), ['user_id'], unique=False)

    op.create_table('user_balance',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('stored_value_fen', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('points >= 0 AND stored_value_fen >= 0', name='ck_user_balance_nonnegative'),
    sa.ForeignKeyConstraint(['user_id'], ['mp_user.id'], ),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('service_order',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_no', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('list_fen', sa.BigInteger(), nullable=False),
    sa.Column('payable_fen', sa.BigInteger(), nullable=False),
    sa.Column('paid_fen', sa.BigInteger(), nullable=False),
    sa.Column('refunded_fen', sa.BigInteger(), nullable=False),
    sa.Column('pricing', sa.JSON(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('fulfilment', sa.JSON(), nullable=False),
    sa.Column('coupon_id', sa.Integer(), nullable=True),
    sa.Column('points_used', sa.Integer(), nullable=False),
    sa.Column('stored_value_fen', sa.Integer(), nullable=False),
    sa.Column('prepay_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('pay_expires_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('anomaly', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('paid_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status = 'created' OR status = 'paid' OR status = 'accepted' OR status = 'in_fulfilment' OR status = 'completed' OR status = 'cancelled' OR status = 'refund_requested' OR status = 'refunded' OR status = 'after_sales'", name='ck_service_order_status'),
    sa.CheckConstraint("type = 'coupon_purchase' OR type = 'flower' OR type = 'topup' OR type = 'driver' OR type = 'goods'", name='ck_service_order_type'),
    sa.CheckConstraint('paid_fen >= 0 AND refunded_fen >= 0 AND refunded_fen <= paid_fen', name='ck_service_order_refund'),
    sa.CheckConstraint('payable_fen >= 0 AND payable_fen <= list_fen', name='ck_service_order_payable'),
    sa.CheckConstraint('points_used >= 0 AND stored_value_fen >= 0', name='ck_service_order_balances'),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupon.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['mp_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_no')
    )
    with op.batch_alter_table('service_order', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_order_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_order_paid_at'), ['paid_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_order_status'), ['status'], unique=False)
        batch_op.create_index('ix_service_order_status_expires', ['status', 'pay_expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_order_type'), ['type'], unique=False)
        batch_op.create_index('ix_service_order_user', ['user_id', 'id'], unique=False)

    op.create_table('coupon_purchase_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('stock_code_id', sa.Integer(), nullable=True),
    sa.Column('coupon_id', sa.Integer(), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("state = 'held' OR state = 'issued' OR state = 'released' OR state = 'revoking' OR state = 'revoked'", name='ck_coupon_purchase_item_state'),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupon.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['service_order.id'], ),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], ),
    sa.ForeignKeyConstraint(['stock_code_id'], ['stock_code.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['mp_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('coupon_id')
    )
    with op.batch_alter_table('coupon_purchase_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupon_purchase_item_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_coupon_purchase_item_user_product', ['user_id', 'product_id'], unique=False)
        batch_op.create_index('uq_coupon_purchase_item_code', ['stock_code_id'], unique=True, sqlite_where=sa.text("state = 'held' OR state = 'issued' OR state = 'revoking'"), postgresql_where=sa.text("state = 'held' OR state = 'issued' OR state = 'revoking'"))

    op.create_table('ledger_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('provider_ref', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('occurred_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind = 'payment' OR kind = 'refund' OR kind = 'points' OR kind = 'stored_value' OR kind = 'cashback_payout'", name='ck_ledger_entry_kind'),
    sa.ForeignKeyConstraint(['order_id'], ['service_order.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ref')
    )
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entry_kind'), ['kind'], unique=False)
        batch_op.create_index('ix_ledger_entry_occurred', ['occurred_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_user_id'), ['user_id'], unique=False)

    op.create_table('order_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('from_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('to_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('actor_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('actor_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('actor_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['service_order.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('order_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_event_order_id'), ['order_id'], unique=False)

    op.create_table('order_notice',
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('processed_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status = 'pending' OR status = 'sent' OR status = 'failed'", name='ck_order_notice_status'),
    sa.ForeignKeyConstraint(['order_id'], ['service_order.id'], ),
    sa.PrimaryKeyConstraint('order_id')
    )
    with op.batch_alter_table('order_notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_notice_status'), ['status'], unique=False)

    op.create_table('payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('out_trade_no', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('transaction_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('payer_openid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('success_time', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_fen > 0', name='ck_payment_amount'),
    sa.ForeignKeyConstraint(['order_id'], ['service_order.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id'),
    sa.UniqueConstraint('out_trade_no'),
    sa.UniqueConstraint('transaction_id')
    )
    op.create_table('refund',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('out_refund_no', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('refund_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('coupons', sa.Integer(), nullable=False),
    sa.Column('full', sa.Boolean(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('provider_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('actor_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('actor_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('actor_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('succeeded_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status = 'pending' OR status = 'processing' OR status = 'succeeded' OR status = 'failed'", name='ck_refund_status'),
    sa.CheckConstraint('amount_fen > 0', name='ck_refund_amount'),
    sa.ForeignKeyConstraint(['order_id'], ['service_order.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('out_refund_no')
    )
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refund_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_refund_order_id'), ['order_id'], unique=False)
        batch_op.create_index('uq_refund_in_flight', ['order_id'], unique=True, sqlite_where=sa.text("status = 'pending' OR status = 'processing'"), postgresql_where=sa.text("status = 'pending' OR status = 'processing'"))

    _append_only()


APPEND_ONLY = ("ledger_entry", "points_entry", "stored_value_entry")


def _append_only() -> None:
    """The ledgers are append-only like ``audit_log``: the database itself refuses UPDATE and DELETE."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION gc_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$;
        """)
        for table in APPEND_ONLY:
            op.execute(f"""CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
                           FOR EACH ROW EXECUTE FUNCTION gc_ledger_append_only();""")
    else:
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
                               BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}")
        op.execute("DROP FUNCTION IF EXISTS gc_ledger_append_only()")
    else:
        for table in APPEND_ONLY:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.drop_index('uq_refund_in_flight', sqlite_where=sa.text("status = 'pending' OR status = 'processing'"), postgresql_where=sa.text("status = 'pending' OR status = 'processing'"))
        batch_op.drop_index(batch_op.f('ix_refund_order_id'))
        batch_op.drop_index(batch_op.f('ix_refund_created_at'))

    op.drop_table('refund')
    op.drop_table('payment')
    with op.batch_alter_table('order_notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_notice_status'))

    op.drop_table('order_notice')
    with op.batch_alter_table('order_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_event_order_id'))

    op.drop_table('order_event')
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entry_user_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entry_order_id'))
        batch_op.drop_index('ix_ledger_entry_occurred')
        batch_op.drop_index(batch_op.f('ix_ledger_entry_kind'))

    op.drop_table('ledger_entry')
    with op.batch_alter_table('coupon_purchase_item', schema=None) as batch_op:
        batch_op.drop_index('uq_coupon_purchase_item_code', sqlite_where=sa.text("state = 'held' OR state = 'issued' OR state = 'revoking'"), postgresql_where=sa.text("state = 'held' OR state = 'issued' OR state = 'revoking'"))
        batch_op.drop_index('ix_coupon_purchase_item_user_product')
        batch_op.drop_index(batch_op.f('ix_coupon_purchase_item_order_id'))

    op.drop_table('coupon_purchase_item')
    with op.batch_alter_table('service_order', schema=None) as batch_op:
        batch_op.drop_index('ix_service_order_user')
        batch_op.drop_index(batch_op.f('ix_service_order_type'))
        batch_op.drop_index('ix_service_order_status_expires')
        batch_op.drop_index(batch_op.f('ix_service_order_status'))
        batch_op.drop_index(batch_op.f('ix_service_order_paid_at'))
        batch_op.drop_index(batch_op.f('ix_service_order_created_at'))

    op.drop_table('service_order')
    op.drop_table('user_balance')
    with op.batch_alter_table('stored_value_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stored_value_entry_user_id'))

    op.drop_table('stored_value_entry')
    with op.batch_alter_table('points_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_points_entry_user_id'))

    op.drop_table('points_entry')
    with op.batch_alter_table('reconciliation_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reconciliation_run_created_at'))
        batch_op.drop_index(batch_op.f('ix_reconciliation_run_bill_date'))

    op.drop_table('reconciliation_run')
    with op.batch_alter_table('payment_notify_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_notify_log_received_at'))
        batch_op.drop_index(batch_op.f('ix_payment_notify_log_out_trade_no'))

    op.drop_table('payment_notify_log')
