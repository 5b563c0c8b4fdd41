"""The programme table (``programme``): referenced by ``staff_user.programme_code``,
``partner_key.programme_code`` and ``product.programme_code``."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from gc_admin.core.types import utc_field


class Programme(SQLModel, table=True):
    """An insurer's benefits programme (e.g. ``picc_gx`` 广西人保车主权益)."""

    __tablename__ = "programme"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=64)
    insurer: str = Field(default="", max_length=64)
    created_at: dt.datetime = utc_field()
