"""goods photos: an uploaded picture per goods item (content hash, type, size), as bouquets have

Revision ID: i10_goods_photos
Revises: i11_gaps_phash
Create Date: 2026-12-01 15:40:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "i10_goods_photos"
down_revision: str | Sequence[str] | None = "i11_gaps_phash"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("goods", schema=None) as batch_op:
        batch_op.add_column(sa.Column("image_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("image_type", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
        batch_op.add_column(sa.Column("image_width", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("image_height", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("goods", schema=None) as batch_op:
        batch_op.drop_column("image_height")
        batch_op.drop_column("image_width")
        batch_op.drop_column("image_type")
        batch_op.drop_column("image_sha256")
