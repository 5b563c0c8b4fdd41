"""Tables of the third-party order import. The imported orders themselves are ``service_order`` rows with
``source`` / ``external_id`` (unique together: an order of a channel is imported once)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from gc_admin.core.types import utc_field


class OrderSourceMapping(SQLModel, table=True):
    """How a channel's sheet maps to our fields (our field -> its column header), saved once, editable."""

    __tablename__ = "order_source_mapping"

    source: str = Field(primary_key=True, max_length=32)
    mapping: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    default_type: str = Field(default="goods", max_length=16)  # the order type when the sheet has no type column
    updated_by: str = Field(default="", max_length=64)
    updated_at: dt.datetime = utc_field()


class OrderImport(SQLModel, table=True):
    """One applied import and its per-row report. ``status``: ``queued`` / ``running`` while the
    ``orders.import`` task has not finished it, then ``done`` or ``failed`` (``error`` / ``error_code``)."""

    __tablename__ = "order_import"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32, index=True)
    filename: str = Field(max_length=255)
    digest: str = Field(max_length=64)
    created_by: str = Field(max_length=64)
    actor_type: str = Field(default="staff", max_length=16)  # who uploaded the file (the task acts as them)
    actor_id: str | None = Field(default=None, max_length=64)
    actor_ip: str | None = Field(default=None, max_length=64)  # the uploader's address: the task's audit rows name it
    status: str = Field(default="done", max_length=16)  # queued | running | done | failed
    error: str | None = Field(default=None, max_length=500)
    error_code: str | None = Field(default=None, max_length=32)
    rows: int = Field(default=0)
    imported: int = Field(default=0)
    duplicates: int = Field(default=0)
    failed: int = Field(default=0)
    report: list[dict] = Field(default_factory=list, sa_type=JSON)
    created_at: dt.datetime = utc_field()
