"""a batch issuance whose task broke: failed, with the code of the error (issuance_batch.error_code)

Revision ID: s5_tasks2_batch_error
Revises: s5_tasks_imports
Create Date: 2026-12-01 19:50:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "s5_tasks2_batch_error"
down_revision: str | Sequence[str] | None = "s5_tasks_imports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("issuance_batch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("issuance_batch", schema=None) as batch_op:
        batch_op.drop_column("error_code")
