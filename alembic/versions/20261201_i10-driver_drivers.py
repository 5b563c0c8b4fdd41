"""designated driver: the driver roster and driver-platform callbacks

Revision ID: i10_driver
Revises: i10_core
Create Date: 2026-12-01
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from gc_admin.core.types import UTCDateTime

revision: str = "i10_driver"  # alembic refuses "-" in an identifier
down_revision: str | Sequence[str] | None = "i10_flowers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "driver",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", S(length=32), nullable=False),
        sa.Column("phone", S(length=11), nullable=False),
        sa.Column("status", S(length=12), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status = 'available' OR status = 'busy' OR status = 'off'", name="ck_driver_status"),
        sa.ForeignKeyConstraint(["order_id"], ["service_order.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("phone"),
    )
    op.create_index(op.f("ix_driver_status"), "driver", ["status"], unique=False)
    op.create_table(
        "driver_callback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", S(length=16), nullable=False),
        sa.Column("event_id", S(length=64), nullable=False),
        sa.Column("nonce", S(length=64), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("status", S(length=16), nullable=False),
        sa.Column("outcome", S(length=8), nullable=False),
        sa.Column("reason", S(length=200), nullable=False),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("outcome = 'applied' OR outcome = 'ignored'", name="ck_driver_callback_outcome"),
        sa.ForeignKeyConstraint(["order_id"], ["service_order.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "event_id", name="uq_driver_callback_event"),
        sa.UniqueConstraint("platform", "nonce", name="uq_driver_callback_nonce"),
    )
    op.create_index(op.f("ix_driver_callback_order_id"), "driver_callback", ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_driver_callback_order_id"), table_name="driver_callback")
    op.drop_table("driver_callback")
    op.drop_index(op.f("ix_driver_status"), table_name="driver")
    op.drop_table("driver")
