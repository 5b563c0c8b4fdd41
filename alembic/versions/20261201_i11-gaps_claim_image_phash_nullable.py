"""claim_image.phash nullable: the perceptual hash is made by the OCR job, not on the request path

Revision ID: i11_gaps_phash
Revises: i10_goods
Create Date: 2026-12-01 15:45:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "i11_gaps_phash"
down_revision: str | Sequence[str] | None = "i10_goods"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("claim_image", schema=None) as batch_op:
        batch_op.alter_column("phash", existing_type=sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)


def downgrade() -> None:
    op.execute(sa.text("UPDATE claim_image SET phash = '0000000000000000' WHERE phash IS NULL"))
    with op.batch_alter_table("claim_image", schema=None) as batch_op:
        batch_op.alter_column("phash", existing_type=sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False)
