"""cashback claims (返现): claims, receipt images and their OCR fields, payouts, history, the managed
lists of reject reasons and EV operators (seeded here)

Revision ID: i11_claims
Revises: 0005
Create Date: 2026-12-01 11:54:18.110734
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gc_admin.core.types

# the lists as first shipped; staff manage them afterwards (SPEC.md §5)
EV_OPERATORS = ("小桔充电", "云快充", "特来电", "南方电网", "天天快充", "驴充充")
REJECT_REASONS = (
    ("unreadable", "凭证模糊，无法辨认金额或时间"),
    ("amount_mismatch", "申请金额与支付凭证不符"),
    ("wrong_merchant", "商户不是对应类别的门店"),
    ("duplicate", "该凭证已用于其他返现申请"),
    ("too_early", "支付时间早于领券时间或不在活动期"),
    ("not_payment", "上传的不是支付凭证"),
)


revision: str = "i11_claims"  # alembic refuses "-" in an id
down_revision: str | Sequence[str] | None = "i9_tasks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('claim_reject_reason',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sort', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('ev_operator',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sort', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('claim',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('client_ref', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('amount_paid_fen', sa.BigInteger(), nullable=False),
    sa.Column('station', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('city', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=11), nullable=False),
    sa.Column('payout_method', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('account_enc', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('account_masked', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('real_name_enc', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('real_name_masked', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('contact_phone', sqlmodel.sql.sqltypes.AutoString(length=11), nullable=False),
    sa.Column('bank_name', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('coupon_id', sa.Integer(), nullable=True),
    sa.Column('payout_fen', sa.BigInteger(), nullable=False),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('four_eyes', sa.Boolean(), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=True),
    sa.Column('reviewer_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reviewed_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('approver2_id', sa.Integer(), nullable=True),
    sa.Column('approver2_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('approved_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('payer_id', sa.Integer(), nullable=True),
    sa.Column('payer_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('paid_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('payout_reference', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('lease_staff_id', sa.Integer(), nullable=True),
    sa.Column('lease_staff_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('lease_until', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("category = 'fuel' OR category = 'ev_charging' OR category = 'car_wash' OR category = 'maintenance' OR category = 'paint'", name='ck_claim_category'),
    sa.CheckConstraint("payout_method = 'alipay' OR payout_method = 'bank'", name='ck_claim_payout_method'),
    sa.CheckConstraint("status = 'pending_review' OR status = 'refused' OR status = 'rejected' OR status = 'approved' OR status = 'paying' OR status = 'paid' OR status = 'payout_failed'", name='ck_claim_status'),
    sa.CheckConstraint('amount_paid_fen > 0 AND payout_fen >= 0', name='ck_claim_amounts'),
    sa.ForeignKeyConstraint(['approver2_id'], ['staff_user.id'], ),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupon.id'], ),
    sa.ForeignKeyConstraint(['payer_id'], ['staff_user.id'], ),
    sa.ForeignKeyConstraint(['reviewer_id'], ['staff_user.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['mp_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'client_ref', name='uq_claim_client_ref')
    )
    with op.batch_alter_table('claim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_category'), ['category'], unique=False)
        batch_op.create_index('ix_claim_status_created', ['status', 'created_at'], unique=False)
        batch_op.create_index('ix_claim_user_created', ['user_id', 'created_at'], unique=False)
        batch_op.create_index('uq_claim_open_coupon', ['coupon_id'], unique=True, sqlite_where=sa.text("status = 'pending_review' OR status = 'approved' OR status = 'paying' OR status = 'paid' OR status = 'payout_failed'"), postgresql_where=sa.text("status = 'pending_review' OR status = 'approved' OR status = 'paying' OR status = 'paid' OR status = 'payout_failed'"))

    op.create_table('claim_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('from_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('to_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('actor_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('actor_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('actor_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claim.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('claim_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_event_claim_id'), ['claim_id'], unique=False)

    op.create_table('claim_image',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('storage_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('phash', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('ocr_status', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('ocr_source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('ocr_text', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('ocr_amount_fen', sa.BigInteger(), nullable=True),
    sa.Column('ocr_amount_conf', sa.Float(), nullable=True),
    sa.Column('ocr_paid_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ocr_paid_at_conf', sa.Float(), nullable=True),
    sa.Column('ocr_merchant', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('ocr_merchant_conf', sa.Float(), nullable=True),
    sa.Column('ocr_txn_no', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('ocr_txn_conf', sa.Float(), nullable=True),
    sa.Column('ocr_error', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('ocr_taken_until', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ocr_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("ocr_status = 'pending' OR ocr_status = 'done' OR ocr_status = 'failed'", name='ck_claim_image_ocr_status'),
    sa.ForeignKeyConstraint(['claim_id'], ['claim.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('claim_id', 'n', name='uq_claim_image_n')
    )
    with op.batch_alter_table('claim_image', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_image_claim_id'), ['claim_id'], unique=False)
        batch_op.create_index('ix_claim_image_ocr_pending', ['ocr_status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_image_phash'), ['phash'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_image_sha256'), ['sha256'], unique=False)
        batch_op.create_index('ix_claim_image_txn', ['ocr_txn_no'], unique=False)

    op.create_table('claim_payout',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('out_biz_no', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('pay_fund_order_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('error_code', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('payer_id', sa.Integer(), nullable=True),
    sa.Column('payer_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('sending_until', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("channel = 'alipay' OR channel = 'manual'", name='ck_claim_payout_channel'),
    sa.CheckConstraint("status = 'recorded' OR status = 'sent' OR status = 'unknown' OR status = 'succeeded' OR status = 'failed'", name='ck_claim_payout_status'),
    sa.CheckConstraint('amount_fen > 0', name='ck_claim_payout_amount'),
    sa.ForeignKeyConstraint(['claim_id'], ['claim.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('claim_id', 'attempt', name='uq_claim_payout_attempt'),
    sa.UniqueConstraint('out_biz_no')
    )
    with op.batch_alter_table('claim_payout', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_payout_claim_id'), ['claim_id'], unique=False)
        batch_op.create_index('uq_claim_payout_live', ['claim_id'], unique=True, sqlite_where=sa.text("status <> 'failed'"), postgresql_where=sa.text("status <> 'failed'"))
    ev = sa.table("ev_operator", sa.column("name", sa.String), sa.column("active", sa.Boolean), sa.column("sort", sa.Integer))
    op.bulk_insert(ev, [{"name": n, "active": True, "sort": i} for i, n in enumerate(EV_OPERATORS)])
    rr = sa.table("claim_reject_reason", sa.column("code", sa.String), sa.column("label", sa.String),
                  sa.column("active", sa.Boolean), sa.column("sort", sa.Integer))
    op.bulk_insert(rr, [{"code": c, "label": label, "active": True, "sort": i} for i, (c, label) in enumerate(REJECT_REASONS)])


def downgrade() -> None:
    with op.batch_alter_table('claim_payout', schema=None) as batch_op:
        batch_op.drop_index('uq_claim_payout_live', sqlite_where=sa.text("status <> 'failed'"), postgresql_where=sa.text("status <> 'failed'"))
        batch_op.drop_index(batch_op.f('ix_claim_payout_claim_id'))

    op.drop_table('claim_payout')
    with op.batch_alter_table('claim_image', schema=None) as batch_op:
        batch_op.drop_index('ix_claim_image_txn')
        batch_op.drop_index(batch_op.f('ix_claim_image_sha256'))
        batch_op.drop_index(batch_op.f('ix_claim_image_phash'))
        batch_op.drop_index('ix_claim_image_ocr_pending')
        batch_op.drop_index(batch_op.f('ix_claim_image_claim_id'))

    op.drop_table('claim_image')
    with op.batch_alter_table('claim_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_event_claim_id'))

    op.drop_table('claim_event')
    with op.batch_alter_table('claim', schema=None) as batch_op:
        batch_op.drop_index('uq_claim_open_coupon', sqlite_where=sa.text("status = 'pending_review' OR status = 'approved' OR status = 'paying' OR status = 'paid' OR status = 'payout_failed'"), postgresql_where=sa.text("status = 'pending_review' OR status = 'approved' OR status = 'paying' OR status = 'paid' OR status = 'payout_failed'"))
        batch_op.drop_index('ix_claim_user_created')
        batch_op.drop_index('ix_claim_status_created')
        batch_op.drop_index(batch_op.f('ix_claim_category'))

    op.drop_table('claim')
    op.drop_table('ev_operator')
    op.drop_table('claim_reject_reason')
