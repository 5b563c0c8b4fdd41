"""the local Alipay simulator's shared state: executed transfers and injected failures (dev/test)

Revision ID: i11_alipay
Revises: 0005
Create Date: 2026-12-01
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gc_admin.core.types

revision: str = "i11_alipay"  # alembic refuses "-" in revision ids
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sim_alipay_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("out_biz_no", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("pay_fund_order_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("request_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("created_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("app_id", "out_biz_no", name="uq_sim_alipay_order_out_biz_no"),
        sa.UniqueConstraint("order_id"),
    )
    op.create_table(
        "sim_alipay_fault",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("delay_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sim_alipay_fault", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sim_alipay_fault_app_id"), ["app_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sim_alipay_fault", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sim_alipay_fault_app_id"))
    op.drop_table("sim_alipay_fault")
    op.drop_table("sim_alipay_order")
