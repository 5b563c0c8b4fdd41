from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from gc_admin.core.types import utc_field


class SmsMessage(SQLModel, table=True):
    """Every SMS the platform sends, whatever the provider: recorded before it is sent."""

    __tablename__ = "sms_message"

    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(max_length=11, index=True)
    template: str = Field(max_length=32)
    content: str = Field(max_length=500)  # rendered Chinese text; secrets masked outside dev/test
    provider: str = Field(max_length=16)
    status: str = Field(max_length=12)  # pending | sent | recorded | failed
    provider_ref: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, max_length=200)
    created_at: dt.datetime = utc_field(index=True)
    sent_at: dt.datetime | None = utc_field(nullable=True, default=None)
