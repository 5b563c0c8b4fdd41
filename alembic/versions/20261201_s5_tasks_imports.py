"""imports and batch issuance as tasks: the bytes a task reads (task_file), a stock import or an issuance batch
queued / running before it is done,
the code of a refusal (error_code) and the file-level expiry the task applies (expires_default)

Revision ID: s5_tasks_imports
Revises: i10_goods_photos
Create Date: 2026-12-01 19:10:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gc_admin.core.types

revision: str = "s5_tasks_imports"
down_revision: str | Sequence[str] | None = "i10_goods_photos"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = ("done", "failed")
STATUSES = ("queued", "running", "done", "failed")


def _in(column: str, values) -> str:
    return " OR ".join(f"{column} = '{v}'" for v in values)


def upgrade() -> None:
    op.create_table(
        "task_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("task_file", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_file_created_at"), ["created_at"], unique=False)
    with op.batch_alter_table("stock_import", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column("expires_default", gc_admin.core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_constraint("ck_stock_import_status", type_="check")
        batch_op.create_check_constraint("ck_stock_import_status", _in("status", STATUSES))
    with op.batch_alter_table("issuance_batch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False,
                                      server_default="done"))


def downgrade() -> None:
    with op.batch_alter_table("issuance_batch", schema=None) as batch_op:
        batch_op.drop_column("status")
    op.execute("UPDATE stock_import SET status = 'failed', error = '导入未完成' "
               "WHERE status IN ('queued', 'running')")
    with op.batch_alter_table("stock_import", schema=None) as batch_op:
        batch_op.drop_constraint("ck_stock_import_status", type_="check")
        batch_op.create_check_constraint("ck_stock_import_status", _in("status", OLD_STATUSES))
        batch_op.drop_column("expires_default")
        batch_op.drop_column("error_code")
    with op.batch_alter_table("task_file", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_file_created_at"))
    op.drop_table("task_file")
