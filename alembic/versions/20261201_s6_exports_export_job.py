"""exports as tasks: export_job (an Excel export a staff member asked for, built by the exports.build task; the
asker's role, supplier and programme recorded for the scope the task re-applies)

Revision ID: s6_exports_export_job
Revises: s6_actor_ip
Create Date: 2026-12-01 22:20:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gc_admin.core.types

revision: str = "s6_exports_export_job"
down_revision: str | Sequence[str] | None = "s6_actor_ip"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "export_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("actor_role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("actor_name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("supplier_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("programme_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("error_status", sa.Integer(), nullable=True),
        sa.Column("created_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("downloaded_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("export_job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_export_job_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_export_job_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_export_job_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM task_file WHERE key LIKE 'export:%'")
    with op.batch_alter_table("export_job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_export_job_created_at"))
        batch_op.drop_index(batch_op.f("ix_export_job_status"))
        batch_op.drop_index(batch_op.f("ix_export_job_actor_id"))
    op.drop_table("export_job")
