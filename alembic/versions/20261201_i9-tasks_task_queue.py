"""the task queue: ``task_run`` (every attempt of a background task) and, on PostgreSQL, procrastinate's schema

procrastinate (pinned in requirements.txt) keeps its jobs in its own tables, functions and triggers
(``procrastinate_*``); this migration applies the schema that ships in the pinned package. SQLite skips
it: there the queue runs in the app's process, in memory. Upgrading procrastinate later is a new
migration applying the package's ``sql/migrations/*.sql`` between the two versions, in order.

Revision ID: i9_tasks
Revises: 0005
Create Date: 2026-12-01
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import metadata

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gc_admin.core.types

revision: str = "i9_tasks"  # the brief said "i9-tasks"; alembic refuses "-" in revision ids
down_revision: str | Sequence[str] | None = "i11_alipay"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROCRASTINATE = "3.10"  # the schema this migration applies; a new version needs its own migration


def _procrastinate_sql() -> str:
    from procrastinate.schema import SchemaManager

    version = metadata.version("procrastinate")
    if not version.startswith(PROCRASTINATE + "."):
        raise RuntimeError(f"procrastinate {version} installed, this migration applies {PROCRASTINATE}.x's schema: "
                           "add a migration with its sql/migrations scripts")
    return SchemaManager.get_schema()


def _raw_execute(sql: str) -> None:
    """Run a multi-statement script as it is (no parameter parsing: it contains ``%`` in RAISE messages)."""
    raw = op.get_bind().connection.dbapi_connection
    with raw.cursor() as cur:
        cur.execute(sql)


def upgrade() -> None:
    op.create_table(
        "task_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("worker", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("started_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("task_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_run_task"), ["task"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_run_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_run_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_run_started_at"), ["started_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        _raw_execute(_procrastinate_sql())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        sql = _procrastinate_sql()
        drops = [f"DROP TABLE IF EXISTS {t} CASCADE;" for t in re.findall(r"^CREATE TABLE (\w+)", sql, re.M)]
        drops += [f"DROP FUNCTION IF EXISTS {f} CASCADE;" for f in re.findall(r"^CREATE FUNCTION (\w+)", sql, re.M)]
        drops += [f"DROP TYPE IF EXISTS {t} CASCADE;" for t in re.findall(r"^CREATE TYPE (\w+)", sql, re.M)]
        _raw_execute("\n".join(drops))
    with op.batch_alter_table("task_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_run_started_at"))
        batch_op.drop_index(batch_op.f("ix_task_run_status"))
        batch_op.drop_index(batch_op.f("ix_task_run_job_id"))
        batch_op.drop_index(batch_op.f("ix_task_run_task"))
    op.drop_table("task_run")
