"""partner API keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gc_admin.core.types

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partner_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("programme_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("scopes", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("prefix", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("partner_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_key_prefix"), ["prefix"], unique=True)
        batch_op.create_index(batch_op.f("ix_partner_key_programme_code"), ["programme_code"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("partner_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_key_programme_code"))
        batch_op.drop_index(batch_op.f("ix_partner_key_prefix"))
    op.drop_table("partner_key")
