from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from gc_admin.core.types import utc_field


class PartnerKey(SQLModel, table=True):
    """One API key of a partner. The key is shown once at creation; only its SHA-256 is kept.

    ``prefix`` (public, unique) finds the row; the hash proves the secret.
    """

    __tablename__ = "partner_key"

    id: int | None = Field(default=None, primary_key=True)
    partner_name: str = Field(max_length=64)
    programme_code: str = Field(max_length=32, index=True)
    scopes: str = Field(max_length=200)  # space-separated
    prefix: str = Field(max_length=16, unique=True, index=True)
    key_hash: str = Field(max_length=64)
    created_by: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: dt.datetime = utc_field()
    last_used_at: dt.datetime | None = utc_field(nullable=True, default=None)
    revoked_at: dt.datetime | None = utc_field(nullable=True, default=None)
