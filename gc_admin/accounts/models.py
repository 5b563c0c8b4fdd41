from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from gc_admin.core.types import utc_field


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=32, unique=True, index=True)
    display_name: str = Field(max_length=32)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=16, index=True)
    enabled: bool = Field(default=True)
    phone: str | None = Field(default=None, max_length=11)  # for on-duty SMS notifications
    # the insurer programme an insurer's account acts for (None: platform staff; an insurer without one
    # may do nothing programme-scoped). See ``Principal.programme``.
    programme_code: str | None = Field(default=None, max_length=32, foreign_key="programme.code", index=True)
    supplier_code: str | None = Field(default=None, max_length=32, index=True)  # a supplier account's supplier (orders/suppliers)
    created_at: dt.datetime = utc_field()
    updated_at: dt.datetime = utc_field()
    last_login_at: dt.datetime | None = utc_field(nullable=True, default=None)
    password_changed_at: dt.datetime = utc_field()


class StaffSession(SQLModel, table=True):
    """A signed-in staff session (dashboard cookie or API bearer). Only the token hash is kept."""

    __tablename__ = "staff_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    staff_id: int = Field(foreign_key="staff_user.id", index=True)
    kind: str = Field(max_length=8)  # web | api
    ip: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = utc_field()
    expires_at: dt.datetime = utc_field()
    revoked_at: dt.datetime | None = utc_field(nullable=True, default=None)


class LoginAttempt(SQLModel, table=True):
    """Every staff sign-in attempt, for throttling (and the audit page shows the failures)."""

    __tablename__ = "login_attempt"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, index=True)
    ip: str | None = Field(default=None, max_length=64, index=True)
    success: bool
    at: dt.datetime = utc_field(index=True)
