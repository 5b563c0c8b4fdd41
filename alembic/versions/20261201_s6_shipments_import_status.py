"""the shipments import (批量发货) as a task: shipment_import.status (queued / running / done / failed), error,
error_code, finished_at, and the uploader (actor_type, actor_id, role) the task acts as and whose scope it ships in;
existing rows are done

Revision ID: s6_shipments_import_status
Revises: s6_exports_export_job
Create Date: 2026-12-01 22:10:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gc_admin.core.types

revision: str = "s6_shipments_import_status"
down_revision: str | Sequence[str] | None = "s6_exports_export_job"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shipment_import", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor_type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default="staff"))
        batch_op.add_column(sa.Column("actor_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("actor_ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default="done"))
        batch_op.add_column(sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.add_column(sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column("finished_at", gc_admin.core.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shipment_import", schema=None) as batch_op:
        for name in ("finished_at", "error_code", "error", "status", "role", "actor_ip", "actor_id", "actor_type"):
            batch_op.drop_column(name)
