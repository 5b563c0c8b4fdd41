"""Flower tables: the bouquet catalogue and one delivery row per flower order.

- ``bouquet.code`` is unique; a bouquet's photo is a private file named by its content hash
  (``image_sha256``), stored under ``GC_UPLOAD_DIR/bouquets`` and served by the API, never statically;
- ``flower_delivery.order_id`` is the order's primary key (one delivery per order); the index on
  ``(city, slot_start)`` is what a slot's capacity is counted from (the live orders in it).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, Index, text
from sqlmodel import Field, SQLModel

from gc_admin.core.photos import PhotoColumns
from gc_admin.core.types import utc_field

#: Shown with every bouquet (SPEC.md §4.1): the shop makes the bouquet, not the photo.
BOUQUET_NOTE = "花束款式与包装以花店实际制作为准，可能与图片略有不同"


class Bouquet(PhotoColumns, table=True):
    """A bouquet on the 鲜花配送 menu. Only ``active`` ones can be ordered; ``sort`` orders the menu."""

    __tablename__ = "bouquet"
    __table_args__ = (
        CheckConstraint("price_fen >= 1 AND price_fen <= 100000000", name="ck_bouquet_price"),
        Index("uq_bouquet_code_ci", text("lower(code)"), unique=True),  # codes keep their case, unique without it
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=200)
    price_fen: int = Field(sa_type=BigInteger)
    active: bool = Field(default=True)
    sort: int = Field(default=0)
    created_at: dt.datetime = utc_field()
    updated_at: dt.datetime = utc_field()


class FlowerDelivery(SQLModel, table=True):
    """Where and when a flower order is delivered: the slot it holds while the order is live."""

    __tablename__ = "flower_delivery"
    __table_args__ = (Index("ix_flower_delivery_slot", "city", "slot_start"),)

    order_id: int = Field(foreign_key="service_order.id", primary_key=True)
    bouquet_id: int = Field(foreign_key="bouquet.id", index=True)
    city: str = Field(max_length=8)
    slot_start: dt.datetime = utc_field()
    created_at: dt.datetime = utc_field()
