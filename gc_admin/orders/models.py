"""Service order tables: one ``service_order`` for every type, its state history, the staff-notice outbox.

The guarantees live in the database:
- ``service_order.order_no`` is unique (it is also WeChat Pay's ``out_trade_no``);
- CHECK constraints pin ``type`` and ``status`` to the known values and keep the money columns
  sane (``0 <= payable_fen <= list_fen``, ``0 <= refunded_fen <= paid_fen``), so no bug can
  refund more than was paid;
- every status change is a conditional ``UPDATE ... WHERE status = <expected>`` (see
  ``service.transition``) and leaves one ``order_event`` row;
- ``order_notice.order_id`` is the primary key: one staff notification per order, however many
  times the payment notify is replayed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from gc_admin.core.types import one_of, utc_field
from gc_admin.core.history import HistoryLine

ORDER_TYPES: dict[str, str] = {
    "coupon_purchase": "购券",
    "flower": "鲜花配送",
    "topup": "话费充值",
    "driver": "代驾",
    "goods": "实物",
}
ORDER_STATUSES: dict[str, str] = {
    "created": "待支付",
    "paid": "已支付",
    "accepted": "已接单",
    "arrived": "已到达",  # designated driver: the driver is at the pickup
    "in_fulfilment": "履约中",
    "shipped": "已发货",  # goods: the supplier shipped it
    "awaiting_payment": "待补款",  # designated driver: the fee exceeds the coupon, the user owes the rest
    "completed": "已完成",
    "cancelled": "已取消",
    "refund_requested": "退款中",
    "refunded": "已退款",
    "after_sales": "售后处理中",
}
NOTICE_STATUSES = ("pending", "sent", "failed")


class ServiceOrder(SQLModel, table=True):
    """One order of any type. Type-specific fields live in ``details`` (JSON); the price breakdown
    (``pricing``: list price, steps with who funds each, payable) is frozen at creation."""

    __tablename__ = "service_order"
    __table_args__ = (
        CheckConstraint(one_of("type", ORDER_TYPES), name="ck_service_order_type"),
        CheckConstraint(one_of("status", ORDER_STATUSES), name="ck_service_order_status"),
        CheckConstraint("payable_fen >= 0 AND payable_fen <= list_fen", name="ck_service_order_payable"),
        CheckConstraint("paid_fen >= 0 AND refunded_fen >= 0 AND refunded_fen <= paid_fen",
                        name="ck_service_order_refund"),
        CheckConstraint("points_used >= 0 AND stored_value_fen >= 0", name="ck_service_order_balances"),
        # the expiry job: created orders past their payment deadline, straight from this index
        Index("ix_service_order_status_expires", "status", "pay_expires_at"),
        Index("ix_service_order_user", "user_id", "id"),
        # the kanban's columns (one status, oldest paid first) and "下一单"
        Index("ix_service_order_status_paid", "status", "paid_at", "id"),
        Index("ix_service_order_claimed_by", "claimed_by", "status"),
        Index("ix_service_order_supplier", "supplier_code", "status"),
        # a third-party channel's order is imported once (NULLs, the platform's own orders, never collide)
        UniqueConstraint("source", "external_id", name="uq_service_order_source_external"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_no: str = Field(max_length=32, unique=True)  # GC + Shanghai date + 10 digits; WeChat's out_trade_no
    type: str = Field(max_length=16, index=True)
    status: str = Field(max_length=16, index=True)
    user_id: int = Field(foreign_key="mp_user.id")
    list_fen: int = Field(sa_type=BigInteger)
    payable_fen: int = Field(sa_type=BigInteger)  # what the user pays by WeChat Pay
    paid_fen: int = Field(default=0, sa_type=BigInteger)  # received (set once, by the payment)
    # refunds requested and not failed: raised by a conditional UPDATE that checks it stays <= paid_fen
    refunded_fen: int = Field(default=0, sa_type=BigInteger)
    pricing: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    fulfilment: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    coupon_id: int | None = Field(default=None, foreign_key="coupon.id")  # the platform coupon used on it
    points_used: int = Field(default=0)
    stored_value_fen: int = Field(default=0)
    prepay_id: str | None = Field(default=None, max_length=64)
    pay_expires_at: dt.datetime = utc_field()
    anomaly: str | None = Field(default=None, max_length=64)  # e.g. paid_after_cancel
    city: str | None = Field(default=None, max_length=16, index=True)  # where it is fulfilled (flower, driver, goods)
    # the claim lease: who works on it (kept as the assignee after the lease ends) and until when it is theirs
    supplier_code: str | None = Field(default=None, max_length=32)  # goods: who ships it (orders/suppliers)
    source: str | None = Field(default=None, max_length=32)  # a third-party channel it was imported from
    external_id: str | None = Field(default=None, max_length=64)  # the channel's order id
    claimed_by: str | None = Field(default=None, max_length=64)  # a staff id (Actor.id)
    claimed_by_name: str | None = Field(default=None, max_length=64)
    claimed_until: dt.datetime | None = utc_field(nullable=True, default=None)
    created_at: dt.datetime = utc_field(index=True)
    updated_at: dt.datetime = utc_field()
    paid_at: dt.datetime | None = utc_field(nullable=True, default=None, index=True)
    cancelled_at: dt.datetime | None = utc_field(nullable=True, default=None)
    completed_at: dt.datetime | None = utc_field(nullable=True, default=None)


class OrderEvent(HistoryLine, table=True):
    """One line of an order's history: a status change (or a money event on it) — who, when, why."""

    __tablename__ = "order_event"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="service_order.id", index=True)


class OrderNotice(SQLModel, table=True):
    """Outbox of "new paid order" SMS to the clerks on duty: written in the payment's transaction,
    sent afterwards (never on the notify's critical path). One row per order."""

    __tablename__ = "order_notice"
    __table_args__ = (CheckConstraint(one_of("status", NOTICE_STATUSES), name="ck_order_notice_status"),)

    order_id: int = Field(foreign_key="service_order.id", primary_key=True)
    status: str = Field(default="pending", max_length=8, index=True)
    recipients: int = Field(default=0)
    sent: int = Field(default=0)
    failed: int = Field(default=0)
    created_at: dt.datetime = utc_field()
    processed_at: dt.datetime | None = utc_field(nullable=True, default=None)


class OrderChange(SQLModel, table=True):
    """One row per change to any order (created, paid, moved, claimed, released), written in the change's
    transaction: open 订单看板 boards poll this table (not process memory), so a change made by any
    worker on any host reaches every board. Pruned by age (:func:`gc_admin.orders.service.prune_changes`)."""

    __tablename__ = "order_change"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(index=True)
    what: str = Field(max_length=32)
    at: dt.datetime = utc_field(index=True)
