"""Cashback claim tables (返现): claims, their receipt images (+ OCR), payouts, history, managed lists.

The guarantees live in the database:
- ``claim (user_id, client_ref)`` is unique: a retried submission finds the first claim;
- ``uq_claim_open_coupon``: a coupon backs at most one claim that is not refused or rejected
  (a rejected claim gives its coupon back; a paid one keeps it for ever);
- ``claim_payout.out_biz_no`` is unique (it is Alipay's idempotency key) and
  ``uq_claim_payout_live`` allows one payout per claim that has not failed: a new ``out_biz_no`` is
  only ever made after the previous one's failure is confirmed;
- every status change is a conditional ``UPDATE ... WHERE status = <expected>`` and leaves one
  ``claim_event`` row; CHECK constraints pin the state columns to their known values.

Payout accounts and card numbers are stored encrypted (``*_enc``, AES-GCM, see
:mod:`gc_admin.claims.crypto`); ``account_masked`` is what lists and the user see.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from gc_admin.core.types import utc_field
from gc_admin.core.history import HistoryLine

CATEGORIES: dict[str, str] = {
    "fuel": "加油",
    "ev_charging": "新能源充电",
    "car_wash": "洗车",
    "maintenance": "保养",
    "paint": "喷漆",
}
STATUSES: dict[str, str] = {
    "pending_review": "待审核",
    "refused": "审核不通过",
    "rejected": "已驳回",
    "approved": "已通过（待打款）",
    "paying": "打款中",
    "paid": "已打款",
    "payout_failed": "打款失败",
}
#: statuses in which the claim holds its coupon (the partial unique index below)
COUPON_HOLDING = ("pending_review", "approved", "paying", "paid", "payout_failed")
OPEN_STATUSES = ("pending_review", "approved", "paying", "payout_failed")
PAYOUT_METHODS: dict[str, str] = {"alipay": "支付宝", "bank": "银行卡"}
PAYOUT_CHANNELS: dict[str, str] = {"alipay": "支付宝转账", "manual": "人工转账"}
PAYOUT_STATUSES: dict[str, str] = {
    "recorded": "已登记",  # written before anything is sent
    "sent": "已发送",  # handed to Alipay, answer pending
    "unknown": "结果未知",  # timeout / SYSTEM_ERROR: query before anything else
    "succeeded": "已到账",
    "failed": "失败",  # confirmed failure: a retry gets a new out_biz_no
}
#: a history line's action (``claim_event.action``), as the review screen's 处理记录 names it
EVENT_ACTIONS: dict[str, str] = {
    "submit": "提交申请",
    "refuse": "自动不通过",
    "approve_first": "初审通过",
    "approve_second": "复核通过",
    "approve": "审核通过",
    "reject": "驳回",
    "payout_recorded": "登记打款",
    "paid": "打款成功",
    "payout_failed": "打款失败",
}
OCR_STATUSES: dict[str, str] = {"pending": "识别中", "done": "已识别", "failed": "识别失败"}
MAINTENANCE_ITEMS: dict[str, str] = {
    "oil": "机油机滤",
    "air_filter": "空气滤芯",
    "cabin_filter": "空调滤芯",
    "brake_fluid": "刹车油",
    "spark_plug": "火花塞",
    "tyre": "轮胎",
    "battery": "蓄电池",
}


def _in(column: str, values) -> str:
    return " OR ".join(f"{column} = '{v}'" for v in values)


class Claim(SQLModel, table=True):
    """One cashback claim filed by a mini-program user."""

    __tablename__ = "claim"
    __table_args__ = (
        CheckConstraint(_in("category", CATEGORIES), name="ck_claim_category"),
        CheckConstraint(_in("status", STATUSES), name="ck_claim_status"),
        CheckConstraint(_in("payout_method", PAYOUT_METHODS), name="ck_claim_payout_method"),
        CheckConstraint("amount_paid_fen > 0 AND payout_fen >= 0", name="ck_claim_amounts"),
        UniqueConstraint("user_id", "client_ref", name="uq_claim_client_ref"),
        Index("uq_claim_open_coupon", "coupon_id", unique=True,
              sqlite_where=text(_in("status", COUPON_HOLDING)), postgresql_where=text(_in("status", COUPON_HOLDING))),
        Index("ix_claim_status_created", "status", "created_at"),
        Index("ix_claim_user_created", "user_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="mp_user.id")
    client_ref: str = Field(max_length=64)
    category: str = Field(max_length=16, index=True)
    amount_paid_fen: int = Field(sa_type=BigInteger)
    station: str = Field(default="", max_length=100)
    items: list[str] = Field(default_factory=list, sa_type=JSON)
    city: str = Field(default="", max_length=16)
    phone: str = Field(default="", max_length=11)  # the user's phone at submission (search by phone)
    payout_method: str = Field(max_length=8)
    account_enc: str = Field(max_length=400)  # Alipay account or bank card number, encrypted
    account_masked: str = Field(max_length=40)
    real_name_enc: str | None = Field(default=None, max_length=400)
    real_name_masked: str = Field(default="", max_length=40)
    contact_phone: str = Field(default="", max_length=11)
    bank_name: str = Field(default="", max_length=40)
    status: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=200)
    coupon_id: int | None = Field(default=None, foreign_key="coupon.id")
    payout_fen: int = Field(default=0, sa_type=BigInteger)  # the coupon's face value at submission
    flags: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)  # mismatches + duplicates (computed)
    four_eyes: bool = Field(default=False)  # needs a second approver (amount or Nth payout in a month)
    reviewer_id: int | None = Field(default=None, foreign_key="staff_user.id")
    reviewer_name: str = Field(default="", max_length=64)
    reviewed_at: dt.datetime | None = utc_field(nullable=True, default=None)
    approver2_id: int | None = Field(default=None, foreign_key="staff_user.id")
    approver2_name: str = Field(default="", max_length=64)
    approved_at: dt.datetime | None = utc_field(nullable=True, default=None)
    payer_id: int | None = Field(default=None, foreign_key="staff_user.id")
    payer_name: str = Field(default="", max_length=64)
    paid_at: dt.datetime | None = utc_field(nullable=True, default=None)
    payout_reference: str | None = Field(default=None, max_length=64)
    # the review lease (like the order kanban's): who has it open, until when
    lease_staff_id: int | None = Field(default=None)
    lease_staff_name: str = Field(default="", max_length=64)
    lease_until: dt.datetime | None = utc_field(nullable=True, default=None)
    created_at: dt.datetime = utc_field()
    updated_at: dt.datetime = utc_field()


class ClaimImage(SQLModel, table=True):
    """One receipt image of a claim, as stored (metadata stripped; HEIC converted to JPEG), and what OCR read on it."""

    __tablename__ = "claim_image"
    __table_args__ = (
        UniqueConstraint("claim_id", "n", name="uq_claim_image_n"),
        CheckConstraint(_in("ocr_status", OCR_STATUSES), name="ck_claim_image_ocr_status"),
        Index("ix_claim_image_ocr_pending", "ocr_status", "id"),
        Index("ix_claim_image_txn", "ocr_txn_no"),
    )

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    n: int  # 1-based position in the submission
    storage_key: str = Field(max_length=200)
    content_type: str = Field(max_length=32)
    size_bytes: int
    sha256: str = Field(max_length=64, index=True)
    # 64-bit perceptual hash, hex; made by the OCR job from its one decode (None until then)
    phash: str | None = Field(default=None, max_length=16, index=True)
    width: int
    height: int
    ocr_status: str = Field(default="pending", max_length=8)
    ocr_source: str | None = Field(default=None, max_length=16)  # wechat | alipay | slip
    ocr_text: str | None = Field(default=None)
    ocr_amount_fen: int | None = Field(default=None, sa_type=BigInteger)
    ocr_amount_conf: float | None = Field(default=None)
    ocr_paid_at: dt.datetime | None = utc_field(nullable=True, default=None)
    ocr_paid_at_conf: float | None = Field(default=None)
    ocr_merchant: str | None = Field(default=None, max_length=100)
    ocr_merchant_conf: float | None = Field(default=None)
    ocr_txn_no: str | None = Field(default=None, max_length=64)
    ocr_txn_conf: float | None = Field(default=None)
    ocr_error: str | None = Field(default=None, max_length=200)
    ocr_taken_until: dt.datetime | None = utc_field(nullable=True, default=None)  # a worker has it until then
    ocr_at: dt.datetime | None = utc_field(nullable=True, default=None)
    created_at: dt.datetime = utc_field()


class ClaimPayout(SQLModel, table=True):
    """One payout attempt of a claim, recorded before it is executed (DESIGN.md rule 5)."""

    __tablename__ = "claim_payout"
    __table_args__ = (
        CheckConstraint(_in("status", PAYOUT_STATUSES), name="ck_claim_payout_status"),
        CheckConstraint(_in("channel", PAYOUT_CHANNELS), name="ck_claim_payout_channel"),
        CheckConstraint("amount_fen > 0", name="ck_claim_payout_amount"),
        UniqueConstraint("claim_id", "attempt", name="uq_claim_payout_attempt"),
        Index("uq_claim_payout_live", "claim_id", unique=True,
              sqlite_where=text("status <> 'failed'"), postgresql_where=text("status <> 'failed'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    attempt: int = Field(default=1)
    out_biz_no: str = Field(max_length=64, unique=True)
    channel: str = Field(max_length=8)
    amount_fen: int = Field(sa_type=BigInteger)
    status: str = Field(default="recorded", max_length=10)
    reference: str | None = Field(default=None, max_length=64)  # Alipay order_id / the manual transfer's reference
    pay_fund_order_id: str | None = Field(default=None, max_length=64)
    error_code: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, max_length=200)
    payer_id: int | None = Field(default=None)
    payer_name: str = Field(default="", max_length=64)
    sending_until: dt.datetime | None = utc_field(nullable=True, default=None)  # the sender's lease
    tries: int = Field(default=0)
    created_at: dt.datetime = utc_field()
    updated_at: dt.datetime = utc_field()


class ClaimEvent(HistoryLine, table=True):
    """One line of a claim's history: a status change or a decision — who, when, why."""

    __tablename__ = "claim_event"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)


class ClaimRejectReason(SQLModel, table=True):
    """The managed list of reject reasons a reviewer picks from (free text stays possible)."""

    __tablename__ = "claim_reject_reason"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    label: str = Field(max_length=100)
    active: bool = Field(default=True)
    sort: int = Field(default=0)


class EvOperator(SQLModel, table=True):
    """The managed list of EV charging operators a claim may name (SPEC.md §5)."""

    __tablename__ = "ev_operator"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=32, unique=True)
    active: bool = Field(default=True)
    sort: int = Field(default=0)
