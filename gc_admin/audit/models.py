"""The audit table. Rows are never updated or deleted: database triggers refuse it."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from gc_admin.core.types import utc_field


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = utc_field(index=True)
    actor_type: str = Field(max_length=16)  # staff | user | partner | system
    actor_id: str | None = Field(default=None, max_length=64, index=True)
    actor_name: str = Field(default="", max_length=64)
    action: str = Field(max_length=64, index=True)  # e.g. staff.login, staff.role_changed
    target_type: str | None = Field(default=None, max_length=32)
    target_id: str | None = Field(default=None, max_length=64, index=True)
    summary: str = Field(default="", max_length=500)  # Chinese, for people
    before: str | None = Field(default=None)  # JSON
    after: str | None = Field(default=None)  # JSON
    ip: str | None = Field(default=None, max_length=64)
