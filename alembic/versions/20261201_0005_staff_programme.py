"""staff accounts carry a programme: an insurer's staff act for one insurer programme only

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("programme_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_staff_user_programme_code"), ["programme_code"], unique=False)
        batch_op.create_foreign_key("fk_staff_user_programme_code", "programme", ["programme_code"], ["code"])
    # Existing insurer accounts get no programme: they can do nothing programme-scoped until an
    # admin sets one (员工与权限), rather than keep seeing every programme.


def downgrade() -> None:
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.drop_constraint("fk_staff_user_programme_code", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_staff_user_programme_code"))
        batch_op.drop_column("programme_code")
