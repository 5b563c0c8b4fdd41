"""flower delivery: the bouquet catalogue, one delivery row per flower order (its slot); product and
bouquet codes unique without regard to case (a code keeps the case it was created with)

Revision ID: i10_flowers
Revises: i10_core
Create Date: 2026-12-01
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gc_admin.core.types

revision: str = "i10_flowers"  # alembic refuses "-" in a revision id
down_revision: str | Sequence[str] | None = "i10_core"  # merged i10-core first; the lead re-chains
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bouquet",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("sort", sa.Integer(), nullable=False),
        sa.Column("image_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("image_type", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("image_width", sa.Integer(), nullable=True),
        sa.Column("image_height", sa.Integer(), nullable=True),
        sa.Column("created_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price_fen >= 1 AND price_fen <= 100000000", name="ck_bouquet_price"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("uq_bouquet_code_ci", "bouquet", [sa.text("lower(code)")], unique=True)
    op.create_table(
        "flower_delivery",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("bouquet_id", sa.Integer(), nullable=False),
        sa.Column("city", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("slot_start", gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bouquet_id"], ["bouquet.id"]),
        sa.ForeignKeyConstraint(["order_id"], ["service_order.id"]),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_index("ix_flower_delivery_slot", "flower_delivery", ["city", "slot_start"], unique=False)
    op.create_index(op.f("ix_flower_delivery_bouquet_id"), "flower_delivery", ["bouquet_id"], unique=False)
    # Product codes keep the case they were created with (BARS-X); two codes differing only in case are one.
    op.create_index("uq_product_code_ci", "product", [sa.text("lower(code)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_product_code_ci", table_name="product")
    op.drop_index(op.f("ix_flower_delivery_bouquet_id"), table_name="flower_delivery")
    op.drop_index("ix_flower_delivery_slot", table_name="flower_delivery")
    op.drop_table("flower_delivery")
    op.drop_index("uq_bouquet_code_ci", table_name="bouquet")
    op.drop_table("bouquet")
