"""coupons: programmes, products, code stock and imports, issuance batches, coupons

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Notes (see gc_admin/coupons/models.py):
- stock_code has no foreign keys on purpose (million-row imports; PostgreSQL checks each with a
  trigger per row); its issuance index is partial: only in-stock codes, in expiry order.
- The guarantees are unique constraints: stock_code.code, coupon.stock_code_id,
  issuance_batch (source, scope, batch_id).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gc_admin.core.types


revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('programme',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('insurer', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('stock_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.Column('expires_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('face_fen', sa.Integer(), nullable=False),
    sa.Column('cost_fen', sa.Integer(), nullable=False),
    sa.Column('batch_ref', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('discarded_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state = 'in_stock' OR state = 'issued' OR state = 'discarded' OR state = 'expired'", name='ck_stock_code_state'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    with op.batch_alter_table('stock_code', schema=None) as batch_op:
        batch_op.create_index('ix_stock_code_pick', ['product_id', 'expires_at', 'id'], unique=False, sqlite_where=sa.text("state = 'in_stock'"), postgresql_where=sa.text("state = 'in_stock'"))

    op.create_table('product',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('face_fen', sa.Integer(), nullable=False),
    sa.Column('percent_off', sa.Integer(), nullable=True),
    sa.Column('cost_fen', sa.Integer(), nullable=False),
    sa.Column('price_fen', sa.Integer(), nullable=True),
    sa.Column('supplier', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('programme_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('funded_by', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('jump_app_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('jump_path', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('use_window_days', sa.Integer(), nullable=False),
    sa.Column('min_validity_days', sa.Integer(), nullable=False),
    sa.Column('validity_days', sa.Integer(), nullable=False),
    sa.Column('on_sale', sa.Boolean(), nullable=False),
    sa.Column('per_user_limit', sa.Integer(), nullable=True),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("funded_by = 'insurer' OR funded_by = 'platform'", name='ck_product_funded_by'),
    sa.CheckConstraint("kind = 'redemption_code' OR kind = 'service_discount' OR kind = 'cashback' OR kind = 'goods_exchange' OR kind = 'goods_discount'", name='ck_product_kind'),
    sa.CheckConstraint('face_fen >= 0 AND cost_fen >= 0', name='ck_product_amounts'),
    sa.CheckConstraint('percent_off IS NULL OR (percent_off BETWEEN 1 AND 99)', name='ck_product_percent_off'),
    sa.ForeignKeyConstraint(['programme_code'], ['programme.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_product_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_product_programme_code'), ['programme_code'], unique=False)

    op.create_table('issuance_batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('batch_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('per_phone', sa.Integer(), nullable=False),
    sa.Column('actor_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('actor_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('actor_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('requested', sa.Integer(), nullable=False),
    sa.Column('issued', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('coupons', sa.Integer(), nullable=False),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("source = 'staff' OR source = 'partner'", name='ck_issuance_batch_source'),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'scope', 'batch_id', name='uq_issuance_batch_key')
    )
    with op.batch_alter_table('issuance_batch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_issuance_batch_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_issuance_batch_product_id'), ['product_id'], unique=False)

    op.create_table('stock_import',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('batch_ref', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('actor_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('actor_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('actor_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('file_type', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('imported', sa.Integer(), nullable=False),
    sa.Column('duplicate_in_file', sa.Integer(), nullable=False),
    sa.Column('duplicate_existing', sa.Integer(), nullable=False),
    sa.Column('invalid_count', sa.Integer(), nullable=False),
    sa.Column('invalid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('discarded_near_expiry', sa.Integer(), nullable=False),
    sa.Column('face_fen_total', sa.BigInteger(), nullable=False),
    sa.Column('cost_fen_total', sa.BigInteger(), nullable=False),
    sa.Column('discarded_cost_fen', sa.BigInteger(), nullable=False),
    sa.Column('created_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status = 'done' OR status = 'failed'", name='ck_stock_import_status'),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('stock_import', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stock_import_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_stock_import_product_id'), ['product_id'], unique=False)

    op.create_table('coupon',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=11), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('stock_code_id', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('face_fen', sa.Integer(), nullable=False),
    sa.Column('cost_fen', sa.Integer(), nullable=False),
    sa.Column('issued_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revealed_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('use_by', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('used_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reserved_for', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('reserved_at', gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('issuance_id', sa.Integer(), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.CheckConstraint("status = 'available' OR status = 'reserved' OR status = 'used' OR status = 'expired'", name='ck_coupon_status'),
    sa.ForeignKeyConstraint(['issuance_id'], ['issuance_batch.id'], ),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], ),
    sa.ForeignKeyConstraint(['stock_code_id'], ['stock_code.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['mp_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('stock_code_id')
    )
    with op.batch_alter_table('coupon', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupon_issuance_id'), ['issuance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coupon_phone'), ['phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_coupon_product_id'), ['product_id'], unique=False)
        batch_op.create_index('ix_coupon_status_expires', ['status', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_coupon_user_id'), ['user_id'], unique=False)

    op.create_table('issuance_row',
    sa.Column('issuance_id', sa.Integer(), nullable=False),
    sa.Column('row_no', sa.Integer(), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('coupon_ids', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.CheckConstraint("status = 'issued' OR status = 'invalid_phone' OR status = 'duplicate' OR status = 'no_stock'", name='ck_issuance_row_status'),
    sa.ForeignKeyConstraint(['issuance_id'], ['issuance_batch.id'], ),
    sa.PrimaryKeyConstraint('issuance_id', 'row_no')
    )


def downgrade() -> None:
    op.drop_table('issuance_row')
    with op.batch_alter_table('coupon', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupon_user_id'))
        batch_op.drop_index('ix_coupon_status_expires')
        batch_op.drop_index(batch_op.f('ix_coupon_product_id'))
        batch_op.drop_index(batch_op.f('ix_coupon_phone'))
        batch_op.drop_index(batch_op.f('ix_coupon_issuance_id'))

    op.drop_table('coupon')
    with op.batch_alter_table('stock_import', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stock_import_product_id'))
        batch_op.drop_index(batch_op.f('ix_stock_import_created_at'))

    op.drop_table('stock_import')
    with op.batch_alter_table('issuance_batch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_issuance_batch_product_id'))
        batch_op.drop_index(batch_op.f('ix_issuance_batch_created_at'))

    op.drop_table('issuance_batch')
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_product_programme_code'))
        batch_op.drop_index(batch_op.f('ix_product_kind'))

    op.drop_table('product')
    with op.batch_alter_table('stock_code', schema=None) as batch_op:
        batch_op.drop_index('ix_stock_code_pick', sqlite_where=sa.text("state = 'in_stock'"), postgresql_where=sa.text("state = 'in_stock'"))

    op.drop_table('stock_code')
    op.drop_table('programme')
