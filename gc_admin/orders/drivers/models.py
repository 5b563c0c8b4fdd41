"""Driver roster and driver-platform callbacks.

The guarantees live in the database:
- ``driver.phone`` is unique; ``driver.status`` is pinned by a CHECK; a driver is given an order by a
  conditional ``UPDATE driver SET status = 'busy', order_id = :o WHERE id = :d AND status = 'available'
  AND active`` — two dispatchers giving one driver two orders at once: one wins;
- ``driver_callback`` has ``UNIQUE (platform, event_id)`` (each platform event is applied once, however
  often it is delivered) and ``UNIQUE (platform, nonce)`` (a captured request replayed within the
  timestamp window is refused). The row is written in the transaction that applies the event.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from gc_admin.core.types import one_of, utc_field

DRIVER_STATUSES: dict[str, str] = {"available": "空闲", "busy": "服务中", "off": "休息"}
CALLBACK_OUTCOMES = ("applied", "ignored")


class Driver(SQLModel, table=True):
    """One of the platform's own designated drivers (师傅)."""

    __tablename__ = "driver"
    __table_args__ = (CheckConstraint(one_of("status", DRIVER_STATUSES), name="ck_driver_status"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=32)
    phone: str = Field(max_length=11, unique=True)
    status: str = Field(default="available", max_length=12, index=True)
    active: bool = Field(default=True)
    order_id: int | None = Field(default=None, foreign_key="service_order.id")  # the order being served (busy)
    created_at: dt.datetime = utc_field()
    updated_at: dt.datetime = utc_field()


class DriverCallback(SQLModel, table=True):
    """A verified status callback from a driver platform (applied or ignored as out of order)."""

    __tablename__ = "driver_callback"
    __table_args__ = (
        UniqueConstraint("platform", "event_id", name="uq_driver_callback_event"),
        UniqueConstraint("platform", "nonce", name="uq_driver_callback_nonce"),
        CheckConstraint(one_of("outcome", CALLBACK_OUTCOMES), name="ck_driver_callback_outcome"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    event_id: str = Field(max_length=64)
    nonce: str = Field(max_length=64)
    order_id: int | None = Field(default=None, foreign_key="service_order.id", index=True)
    status: str = Field(max_length=16)
    outcome: str = Field(max_length=8)
    reason: str = Field(default="", max_length=200)
    received_at: dt.datetime = utc_field()
