"""the third-party order import as a task: order_import.status (queued / running / done / failed), error,
error_code, and the uploader (actor_type, actor_id) the task acts as

Revision ID: s5_imports_order_import_status
Revises: s5_tasks2_batch_error
Create Date: 2026-12-01 20:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "s5_imports_order_import_status"
down_revision: str | Sequence[str] | None = "s5_tasks2_batch_error"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("order_import", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor_type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default="staff"))
        batch_op.add_column(sa.Column("actor_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default="done"))
        batch_op.add_column(sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.add_column(sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order_import", schema=None) as batch_op:
        for name in ("error_code", "error", "status", "actor_id", "actor_type"):
            batch_op.drop_column(name)
