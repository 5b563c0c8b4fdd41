"""Coupon tables: products (券种), code stock and its imports, issuance batches, coupons, coupons bought.

The guarantees live in the database, not in Python:
- ``stock_code.code`` is unique across every import (``ON CONFLICT (code) DO NOTHING`` de-duplicates);
- ``coupon.stock_code_id`` is unique: a code can back at most one coupon, ever;
- ``issuance_batch (source, scope, batch_id)`` is unique: the caller's idempotency key;
- CHECK constraints pin every state column to its known values.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

import gc_admin.programmes.models  # noqa: F401  (registers ``programme``, the target of product.programme_code)
from gc_admin.core.types import one_of, utc_field

# Product kinds (券种类型) -------------------------------------------------------------------
REDEMPTION_CODE = "redemption_code"
KINDS: dict[str, str] = {
    "redemption_code": "第三方兑换码",
    "service_discount": "服务立减券",
    "cashback": "返现券",
    "goods_exchange": "实物兑换券",
    "goods_discount": "实物抵扣/折扣券",
}
CASHBACK_CATEGORIES: dict[str, str] = {
    "fuel": "加油",
    "ev_charging": "新能源充电",
    "car_wash": "洗车",
    "maintenance": "保养",
    "paint": "喷漆",
}
FUNDERS: dict[str, str] = {"insurer": "保险公司", "platform": "平台"}

# Stock code states ----------------------------------------------------------------------
STOCK_STATES: dict[str, str] = {"in_stock": "在库", "issued": "已发放", "discarded": "弃票", "expired": "已过期"}
# Coupon states (stored; "available" past expires_at is shown as expired) ------------------------
COUPON_STATES: dict[str, str] = {"available": "未使用", "reserved": "已锁定", "used": "已使用", "expired": "已过期"}
# What people see (user, staff and partner views): the stored status, except that an available coupon
# past expires_at shows as expired, and a bought coupon taken back by a refund — stored as expired with
# reserved_for = REVOKED_PREFIX + out_refund_no (see coupons.purchase) — shows as revoked.
REVOKED_PREFIX = "revoked:"
SHOWN_STATUSES: dict[str, str] = {**COUPON_STATES, "revoked": "已退回"}
# Issuance ---------------------------------------------------------------------------------
ISSUE_SOURCES: dict[str, str] = {"staff": "后台", "partner": "合作方接口"}
ROW_STATUSES: dict[str, str] = {
    "issued": "已发放",
    "invalid_phone": "手机号无效",
    "duplicate": "重复行",
    "no_stock": "库存不足",
}
# Coupons bought in the mini-program (coupons.purchase) ---------------------------------------
ITEM_STATES: dict[str, str] = {
    "held": "待支付（已锁库存）",
    "issued": "已发放",
    "released": "已释放",
    "revoking": "退款中",
    "revoked": "已退款收回",
}


class Product(SQLModel, table=True):
    """A coupon product (券种). Only ``redemption_code`` products have code stock."""

    __tablename__ = "product"
    __table_args__ = (
        CheckConstraint(one_of("kind", KINDS), name="ck_product_kind"),
        CheckConstraint(one_of("funded_by", FUNDERS), name="ck_product_funded_by"),
        CheckConstraint("face_fen >= 0 AND cost_fen >= 0", name="ck_product_amounts"),
        CheckConstraint("percent_off IS NULL OR (percent_off BETWEEN 1 AND 99)", name="ck_product_percent_off"),
        Index("uq_product_code_ci", text("lower(code)"), unique=True),  # codes keep their case, unique without it
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=64)
    kind: str = Field(max_length=24, index=True)
    face_fen: int = Field(default=0)  # face value; for cashback the amount paid out
    percent_off: int | None = Field(default=None)  # goods_discount as a percentage (1–99)
    cost_fen: int = Field(default=0)  # what one costs us
    price_fen: int | None = Field(default=None)  # sale price in the mini-program; None = not sold
    supplier: str = Field(default="", max_length=64)  # e.g. 淘票票
    programme_code: str | None = Field(default=None, max_length=32, foreign_key="programme.code", index=True)
    funded_by: str = Field(default="insurer", max_length=16)
    jump_app_id: str | None = Field(default=None, max_length=32)
    jump_path: str | None = Field(default=None, max_length=255)
    use_window_days: int = Field(default=30)  # after reveal, at most this long (and never past the code's expiry)
    min_validity_days: int = Field(default=30)  # codes with less left are never issued (弃票)
    validity_days: int = Field(default=90)  # non-code coupons: valid this long after issue
    on_sale: bool = Field(default=False)
    per_user_limit: int | None = Field(default=None)
    category: str | None = Field(default=None, max_length=16)  # cashback: fuel | ev_charging | ...
    created_at: dt.datetime = utc_field()
    updated_at: dt.datetime = utc_field()


IMPORT_STATUSES = ("queued", "running", "done", "failed")


class StockImport(SQLModel, table=True):
    """One uploaded file of codes and its report. Never contains a code."""

    __tablename__ = "stock_import"
    __table_args__ = (CheckConstraint(one_of("status", IMPORT_STATUSES), name="ck_stock_import_status"),)

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    filename: str = Field(default="", max_length=255)
    batch_ref: str | None = Field(default=None, max_length=64)
    actor_type: str = Field(max_length=16)
    actor_id: str | None = Field(default=None, max_length=64)
    actor_name: str = Field(default="", max_length=64)
    actor_ip: str | None = Field(default=None, max_length=64)  # the uploader's address: the task's audit rows name it
    status: str = Field(max_length=8)  # queued -> running -> done | failed (the coupons.import task)
    error: str | None = Field(default=None, max_length=500)  # why a file was refused (Chinese)
    error_code: str | None = Field(default=None, max_length=32)  # the refusal's code (IMPORT_FILE_INVALID …)
    expires_default: dt.datetime | None = utc_field(default=None, nullable=True)  # for files without the column
    file_type: str = Field(default="", max_length=8)  # csv | xlsx
    rows: int = Field(default=0)
    imported: int = Field(default=0)  # new codes stored, including discarded_near_expiry
    duplicate_in_file: int = Field(default=0)
    duplicate_existing: int = Field(default=0)
    invalid_count: int = Field(default=0)
    invalid: str = Field(default="[]")  # JSON [{row, reason}], at most INVALID_KEPT entries
    discarded_near_expiry: int = Field(default=0)
    face_fen_total: int = Field(default=0, sa_type=BigInteger)  # of the imported codes
    cost_fen_total: int = Field(default=0, sa_type=BigInteger)
    discarded_cost_fen: int = Field(default=0, sa_type=BigInteger)  # loss: cost of codes discarded at import
    created_at: dt.datetime = utc_field(index=True)


class StockCode(SQLModel, table=True):
    """One third-party redemption code. The whole code leaves the service only through a reveal.

    Deliberately without foreign keys on ``product_id`` / ``import_id``: this table takes imports
    of a million rows, and PostgreSQL checks a foreign key with a trigger lookup per row (it
    doubled import time). Both are written only by ``import_codes`` from the product it has just
    loaded and the import row it has just created, and products are never deleted.
    """

    __tablename__ = "stock_code"
    __table_args__ = (
        CheckConstraint(one_of("state", STOCK_STATES), name="ck_stock_code_state"),
        # Issuance takes "in stock, earliest expiry first" per product straight from this index, in
        # order; codes leave it when issued or discarded, so it holds only what can still be issued.
        Index("ix_stock_code_pick", "product_id", "expires_at", "id",
              sqlite_where=text("state = 'in_stock'"), postgresql_where=text("state = 'in_stock'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=128, unique=True)
    product_id: int
    import_id: int | None = Field(default=None)
    expires_at: dt.datetime = utc_field()
    face_fen: int
    cost_fen: int
    batch_ref: str | None = Field(default=None, max_length=64)  # the supplier's batch, per code or per file
    state: str = Field(default="in_stock", max_length=12)
    discarded_at: dt.datetime | None = utc_field(nullable=True, default=None)
    # No coupon_id here: the link is coupon.stock_code_id (unique, indexed), the one place that
    # says which coupon a code backs. A second pointer back would need a second UPDATE of every
    # issued code row (on PostgreSQL a new entry in the code index each time) and could disagree.


class IssuanceBatch(SQLModel, table=True):
    """One batch issuance request; ``(source, scope, batch_id)`` is the caller's idempotency key.

    ``scope`` is the partner's programme code for partner batches and ``""`` for staff ones, so
    two partners may use the same batch ids without colliding.
    """

    __tablename__ = "issuance_batch"
    __table_args__ = (
        UniqueConstraint("source", "scope", "batch_id", name="uq_issuance_batch_key"),
        CheckConstraint(one_of("source", ISSUE_SOURCES), name="ck_issuance_batch_source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=16)
    scope: str = Field(default="", max_length=32)
    batch_id: str = Field(max_length=64)
    fingerprint: str = Field(max_length=64)  # sha256 of the request: a reused batch_id with other content is refused
    product_id: int = Field(foreign_key="product.id", index=True)
    per_phone: int = Field(default=1)
    actor_type: str = Field(max_length=16)
    actor_id: str | None = Field(default=None, max_length=64)
    actor_name: str = Field(default="", max_length=64)
    actor_ip: str | None = Field(default=None, max_length=64)  # the uploader's address: the task's audit rows name it
    requested: int = Field(default=0)  # rows in the request
    issued: int = Field(default=0)  # rows that got their coupons
    failed: int = Field(default=0)  # rows that did not
    coupons: int = Field(default=0)  # coupons created (issued × per_phone)
    created_at: dt.datetime = utc_field(index=True)
    status: str = Field(default="done", max_length=8)  # queued -> running -> done | failed (coupons.issue_batch)
    error_code: str | None = Field(default=None, max_length=32)  # why it failed (ISSUANCE_ERROR); nothing issued


class IssuanceRow(SQLModel, table=True):
    """The result of one row (one phone) of a batch."""

    __tablename__ = "issuance_row"
    __table_args__ = (CheckConstraint(one_of("status", ROW_STATUSES), name="ck_issuance_row_status"),)

    issuance_id: int = Field(foreign_key="issuance_batch.id", primary_key=True)
    row_no: int = Field(primary_key=True)  # 1-based position in the request
    phone: str = Field(max_length=32)  # normalised when valid, else what was sent (truncated)
    status: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=64)
    coupon_ids: str | None = Field(default=None, max_length=255)  # comma-separated


class Coupon(SQLModel, table=True):
    """A coupon held by a phone number (and by the user with that phone, once known)."""

    __tablename__ = "coupon"
    __table_args__ = (
        CheckConstraint(one_of("status", COUPON_STATES), name="ck_coupon_status"),
        Index("ix_coupon_status_expires", "status", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    phone: str = Field(max_length=11, index=True)  # the owner key: coupons wait for this phone
    user_id: int | None = Field(default=None, foreign_key="mp_user.id", index=True)
    stock_code_id: int | None = Field(default=None, foreign_key="stock_code.id", unique=True)
    status: str = Field(default="available", max_length=12)
    face_fen: int = Field(default=0)
    cost_fen: int = Field(default=0)
    issued_at: dt.datetime = utc_field()
    expires_at: dt.datetime = utc_field()
    revealed_at: dt.datetime | None = utc_field(nullable=True, default=None)
    use_by: dt.datetime | None = utc_field(nullable=True, default=None)
    used_at: dt.datetime | None = utc_field(nullable=True, default=None)
    reserved_for: str | None = Field(default=None, max_length=64)  # e.g. "order:123", "claim:9"
    reserved_at: dt.datetime | None = utc_field(nullable=True, default=None)
    issuance_id: int | None = Field(default=None, foreign_key="issuance_batch.id", index=True)
    source: str = Field(default="staff", max_length=16)  # staff | partner | purchase


class CouponPurchaseItem(SQLModel, table=True):
    """One coupon bought on an order (``order_id``): held -> issued -> revoking -> revoked, or held ->
    released; the states and why this table exists are in :mod:`gc_admin.coupons.purchase`."""

    __tablename__ = "coupon_purchase_item"
    __table_args__ = (
        CheckConstraint(" OR ".join(f"state = '{s}'" for s in ITEM_STATES), name="ck_coupon_purchase_item_state"),
        Index("uq_coupon_purchase_item_code", "stock_code_id", unique=True,
              sqlite_where=text("state = 'held' OR state = 'issued' OR state = 'revoking'"),
              postgresql_where=text("state = 'held' OR state = 'issued' OR state = 'revoking'")),
        Index("ix_coupon_purchase_item_user_product", "user_id", "product_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="service_order.id", index=True)
    user_id: int = Field(foreign_key="mp_user.id")
    product_id: int = Field(foreign_key="product.id")
    stock_code_id: int | None = Field(default=None, foreign_key="stock_code.id")  # None: a product without codes
    coupon_id: int | None = Field(default=None, foreign_key="coupon.id", unique=True)
    state: str = Field(default="held", max_length=10)
    created_at: dt.datetime = utc_field()
    updated_at: dt.datetime = utc_field()
