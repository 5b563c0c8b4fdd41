"""the uploader's address on the rows a task acts from (stock_import, issuance_batch, order_import): the audit
rows the task writes name the caller's IP, as the request's own rows do

Revision ID: s6_actor_ip
Revises: s5_imports_order_import_status
Create Date: 2026-12-01 22:20:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "s6_actor_ip"
down_revision: str | Sequence[str] | None = "s5_imports_order_import_status"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("stock_import", "issuance_batch", "order_import")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("actor_ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("actor_ip")
