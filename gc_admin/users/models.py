from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from gc_admin.core.types import utc_field


class MpUser(SQLModel, table=True):
    """A car owner. Known by WeChat openid, by phone, or both once the phone is bound."""

    __tablename__ = "mp_user"

    id: int | None = Field(default=None, primary_key=True)
    openid: str | None = Field(default=None, max_length=64, unique=True)
    unionid: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=11, unique=True)
    nickname: str = Field(default="", max_length=32)
    city: str = Field(default="", max_length=16)
    created_at: dt.datetime = utc_field(index=True)
    last_login_at: dt.datetime | None = utc_field(nullable=True, default=None)


class SmsLoginCode(SQLModel, table=True):
    """A one-time sign-in code sent by SMS. Only a keyed digest of the code is stored."""

    __tablename__ = "sms_login_code"

    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(max_length=11, index=True)
    code_digest: str = Field(max_length=64)
    ip: str | None = Field(default=None, max_length=64, index=True)
    created_at: dt.datetime = utc_field(index=True)
    expires_at: dt.datetime = utc_field()
    attempts: int = Field(default=0)
    consumed_at: dt.datetime | None = utc_field(nullable=True, default=None)
