"""Supplier and goods tables. ``goods.stock`` never goes below zero: a CHECK constraint, and every
take is a conditional ``UPDATE ... WHERE stock >= :n`` (see :func:`..service.take_stock`)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, CheckConstraint
from sqlmodel import Field, SQLModel

from gc_admin.core.photos import PhotoColumns
from gc_admin.core.types import utc_field


class Supplier(SQLModel, table=True):
    __tablename__ = "supplier"

    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=64)
    created_at: dt.datetime = utc_field()


class Goods(PhotoColumns, table=True):
    """One item a supplier ships. ``exchange_products``: codes of the goods_exchange products that redeem it.
    Its photo is an upload stored by content hash (``image_sha256`` / ``image_type``, like a bouquet's:
    :mod:`gc_admin.core.photos`) and served at ``/api/v1/mp/goods/{code}/image``; ``photo_url`` is an
    outside picture's address given over the API before uploads existed (used only while no photo is uploaded)."""

    __tablename__ = "goods"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="ck_goods_stock"),
        CheckConstraint("price_fen >= 0", name="ck_goods_price"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    supplier_code: str = Field(max_length=32, foreign_key="supplier.code", index=True)
    name: str = Field(max_length=64)
    photo_url: str = Field(default="", max_length=255)
    price_fen: int = Field(sa_type=BigInteger)
    stock: int = Field(default=0)
    exchange_products: list[str] = Field(default_factory=list, sa_type=JSON)
    on_sale: bool = Field(default=True)
    created_at: dt.datetime = utc_field()
    updated_at: dt.datetime = utc_field()


class ShipmentImport(SQLModel, table=True):
    """One applied shipment sheet (order no. → carrier, tracking no.) and its per-row report. Replaying a
    sheet ships nothing twice: each row is a conditional ``ship`` move (paid / accepted → shipped).
    ``status``: ``queued`` / ``running`` while the ``orders.ship_import`` task has not finished it, then ``done``
    or ``failed`` (``error`` / ``error_code``). The task acts as the uploader (``actor_type`` / ``actor_id`` /
    ``created_by``) in the uploader's scope (``role`` + ``supplier_code``: a supplier ships only its own orders)."""

    __tablename__ = "shipment_import"

    id: int | None = Field(default=None, primary_key=True)
    filename: str = Field(max_length=255)
    digest: str = Field(max_length=64, index=True)  # sha256 of the file
    supplier_code: str | None = Field(default=None, max_length=32, index=True)  # who uploaded (None: platform staff)
    created_by: str = Field(max_length=64)
    actor_type: str = Field(default="staff", max_length=16)
    actor_id: str | None = Field(default=None, max_length=64)
    actor_ip: str | None = Field(default=None, max_length=64)  # the uploader's address: the task's audit rows name it
    role: str | None = Field(default=None, max_length=16)  # the uploader's role: the task ships in its scope
    status: str = Field(default="done", max_length=16)  # queued | running | done | failed
    error: str | None = Field(default=None, max_length=500)
    error_code: str | None = Field(default=None, max_length=32)
    finished_at: dt.datetime | None = utc_field(nullable=True, default=None)
    rows: int = Field(default=0)
    shipped: int = Field(default=0)
    skipped: int = Field(default=0)  # already shipped with the same tracking no.
    failed: int = Field(default=0)
    report: list[dict] = Field(default_factory=list, sa_type=JSON)
    created_at: dt.datetime = utc_field()
