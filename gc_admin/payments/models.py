"""Payment tables: payments, refunds, the ledger (流水), notify log, balances, reconciliation runs.

The guarantees live in the database:
- ``payment.out_trade_no``, ``payment.transaction_id`` and ``payment.order_id`` are unique: a notify
  replayed any number of times, concurrently or not, inserts one payment (``ON CONFLICT DO NOTHING``);
- ``refund.out_refund_no`` is unique (the provider's idempotency key), and a partial unique index
  allows one refund in flight (pending/processing) per order: concurrent refund requests for an
  order refund once;
- ``ledger_entry.ref`` is unique (one ledger row per money event), and triggers make
  ``ledger_entry``, ``points_entry`` and ``stored_value_entry`` append-only, like ``audit_log``;
- ``user_balance`` holds the running points / stored-value balances with CHECK ``>= 0``; spends are
  conditional UPDATEs (``... WHERE points >= :n``), so concurrent spends can never overdraw, and
  each balance always equals the sum of its entries (both written in one transaction).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Date, Index, text
from sqlmodel import Field, SQLModel

from gc_admin.core.types import utc_field

LEDGER_KINDS: dict[str, str] = {
    "payment": "支付",
    "refund": "退款",
    "points": "积分",
    "stored_value": "储值卡",
    "cashback_payout": "返现打款",
}
REFUND_STATUSES: dict[str, str] = {
    "pending": "待提交",
    "processing": "退款中",
    "succeeded": "已退款",
    "failed": "退款失败",
}
NOTIFY_OUTCOMES = ("applied", "replay", "anomaly", "rejected", "ignored")


def _in(column: str, values) -> str:
    return " OR ".join(f"{column} = '{v}'" for v in values)


class Payment(SQLModel, table=True):
    """Money received for an order (one per order), as the provider reported it."""

    __tablename__ = "payment"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="ck_payment_amount"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="service_order.id", unique=True)
    provider: str = Field(max_length=16)  # wechatpay | none (fully covered by points/stored value)
    out_trade_no: str = Field(max_length=32, unique=True)
    transaction_id: str = Field(max_length=64, unique=True)  # the provider's reference (银行流水)
    amount_fen: int = Field(sa_type=BigInteger)
    payer_openid: str | None = Field(default=None, max_length=64)
    success_time: dt.datetime = utc_field()
    source: str = Field(default="notify", max_length=16)  # notify | query | internal
    created_at: dt.datetime = utc_field()


class Refund(SQLModel, table=True):
    """A refund: recorded (``pending``) with a fixed ``out_refund_no`` before the provider is asked."""

    __tablename__ = "refund"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="ck_refund_amount"),
        CheckConstraint(_in("status", REFUND_STATUSES), name="ck_refund_status"),
        # one refund in flight per order: concurrent requests are decided here
        Index("uq_refund_in_flight", "order_id", unique=True,
              sqlite_where=text("status = 'pending' OR status = 'processing'"),
              postgresql_where=text("status = 'pending' OR status = 'processing'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="service_order.id", index=True)
    out_refund_no: str = Field(max_length=64, unique=True)
    refund_id: str | None = Field(default=None, max_length=64)  # the provider's reference
    amount_fen: int = Field(sa_type=BigInteger)
    coupons: int = Field(default=0)  # bought coupons revoked by this refund (coupon_purchase)
    full: bool = Field(default=False)  # brings the order's refunds to its paid amount
    reason: str = Field(max_length=200)
    status: str = Field(default="pending", max_length=12)
    provider_status: str | None = Field(default=None, max_length=16)  # PROCESSING | SUCCESS | ABNORMAL | CLOSED
    error: str | None = Field(default=None, max_length=200)
    actor_type: str = Field(max_length=16)
    actor_id: str | None = Field(default=None, max_length=64)
    actor_name: str = Field(default="", max_length=64)
    attempts: int = Field(default=0)
    created_at: dt.datetime = utc_field(index=True)
    updated_at: dt.datetime = utc_field()
    succeeded_at: dt.datetime | None = utc_field(nullable=True, default=None)


class LedgerEntry(SQLModel, table=True):
    """流水: one money movement, append-only (database triggers refuse UPDATE and DELETE).

    ``amount_fen`` is signed: payments ``+`` (received by the platform), refunds and payouts ``-``;
    points / stored-value rows carry the movement of the user's balance (spend ``-``, return ``+``),
    points valued at :data:`gc_admin.payments.balances.FEN_PER_POINT`.
    """

    __tablename__ = "ledger_entry"
    __table_args__ = (
        CheckConstraint(_in("kind", LEDGER_KINDS), name="ck_ledger_entry_kind"),
        Index("ix_ledger_entry_occurred", "occurred_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16, index=True)
    amount_fen: int = Field(sa_type=BigInteger)
    order_id: int | None = Field(default=None, foreign_key="service_order.id", index=True)
    user_id: int | None = Field(default=None, index=True)
    provider: str = Field(max_length=16)  # wechatpay | points | stored_value | none
    provider_ref: str | None = Field(default=None, max_length=64)  # transaction_id / refund_id
    ref: str = Field(max_length=80, unique=True)  # idempotency key: pay:<no>, refund:<no>, points:<ref> ...
    note: str = Field(default="", max_length=200)
    occurred_at: dt.datetime = utc_field()  # the provider's time (bill day), else when recorded
    created_at: dt.datetime = utc_field()


class PaymentNotifyLog(SQLModel, table=True):
    """Every notify received, accepted or not (the body itself is not kept, only its SHA-256)."""

    __tablename__ = "payment_notify_log"
    __table_args__ = (CheckConstraint(_in("outcome", NOTIFY_OUTCOMES), name="ck_payment_notify_log_outcome"),)

    id: int | None = Field(default=None, primary_key=True)
    received_at: dt.datetime = utc_field(index=True)
    kind: str = Field(max_length=8)  # payment | refund
    outcome: str = Field(max_length=8)
    reason: str = Field(default="", max_length=200)
    event_id: str | None = Field(default=None, max_length=64)
    event_type: str | None = Field(default=None, max_length=32)
    out_trade_no: str | None = Field(default=None, max_length=32, index=True)
    out_refund_no: str | None = Field(default=None, max_length=64)
    transaction_id: str | None = Field(default=None, max_length=64)
    amount_fen: int | None = Field(default=None, sa_type=BigInteger)
    body_sha256: str = Field(max_length=64)


class UserBalance(SQLModel, table=True):
    """The running points and stored-value balances of a user (the ledgers below sum to them)."""

    __tablename__ = "user_balance"
    __table_args__ = (CheckConstraint("points >= 0 AND stored_value_fen >= 0", name="ck_user_balance_nonnegative"),)

    user_id: int = Field(foreign_key="mp_user.id", primary_key=True)
    points: int = Field(default=0, sa_type=BigInteger)
    stored_value_fen: int = Field(default=0, sa_type=BigInteger)
    updated_at: dt.datetime = utc_field()


class PointsEntry(SQLModel, table=True):
    """Points ledger, append-only; ``ref`` unique makes every credit/spend idempotent."""

    __tablename__ = "points_entry"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="mp_user.id", index=True)
    delta: int = Field(sa_type=BigInteger)
    balance_after: int = Field(sa_type=BigInteger)
    reason: str = Field(max_length=100)
    ref: str = Field(max_length=80, unique=True)
    created_at: dt.datetime = utc_field()


class StoredValueEntry(SQLModel, table=True):
    """Stored-value card ledger (fen), append-only; ``ref`` unique makes every movement idempotent."""

    __tablename__ = "stored_value_entry"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="mp_user.id", index=True)
    delta_fen: int = Field(sa_type=BigInteger)
    balance_after_fen: int = Field(sa_type=BigInteger)
    reason: str = Field(max_length=100)
    ref: str = Field(max_length=80, unique=True)
    created_at: dt.datetime = utc_field()


class ReconciliationRun(SQLModel, table=True):
    """One comparison of a provider trade bill with the ledger for its day, kept for display."""

    __tablename__ = "reconciliation_run"

    id: int | None = Field(default=None, primary_key=True)
    bill_date: dt.date = Field(sa_type=Date, index=True)
    provider: str = Field(default="wechatpay", max_length=16)
    filename: str = Field(default="", max_length=255)
    bill_rows: int = Field(default=0)
    ledger_rows: int = Field(default=0)
    matched: int = Field(default=0)
    missing_in_ledger: int = Field(default=0)
    missing_in_bill: int = Field(default=0)
    amount_mismatch: int = Field(default=0)
    bill_net_fen: int = Field(default=0, sa_type=BigInteger)  # payments - refunds on the bill
    ledger_net_fen: int = Field(default=0, sa_type=BigInteger)
    ok: bool = Field(default=False)
    details: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)  # the mismatches
    actor_name: str = Field(default="", max_length=64)
    created_at: dt.datetime = utc_field(index=True)
