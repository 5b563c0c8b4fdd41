"""The columns of one line of a record's history (orders, claims): what happened, from which status
to which, who did it, why and when. A table adds its ``id`` and the key of the record it follows."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from gc_admin.core.types import utc_field


class HistoryLine(SQLModel):
    action: str = Field(max_length=32)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    actor_type: str = Field(max_length=16)
    actor_id: str | None = Field(default=None, max_length=64)
    actor_name: str = Field(default="", max_length=64)
    reason: str = Field(default="", max_length=500)
    at: dt.datetime = utc_field()
