"""After-sales tables: one case per order (``order_case.order_id`` unique) and its call log.

A case is opened by customer service (reason, notes) when the order goes to 售后; each call to the
user is one ``order_case_call`` row (when, outcome, note, who). It is closed with an outcome —
``resolved`` (the order is completed after all), ``refunded`` (cancelled and refunded) — which the
user sees in the order's ``fulfilment.case``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from gc_admin.core.types import one_of, utc_field

CASE_STATUSES = {"open": "处理中", "closed": "已结案"}
CASE_OUTCOMES = {"resolved": "已解决，订单完成", "refunded": "已取消并退款"}
CALL_OUTCOMES = {"reached": "已接通", "no_answer": "无人接听", "busy": "占线", "wrong_number": "号码有误",
                 "callback": "约定回电"}


class OrderCase(SQLModel, table=True):
    __tablename__ = "order_case"
    __table_args__ = (
        CheckConstraint(one_of("status", CASE_STATUSES), name="ck_order_case_status"),
        CheckConstraint("outcome IS NULL OR " + one_of("outcome", CASE_OUTCOMES), name="ck_order_case_outcome"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="service_order.id", unique=True)
    status: str = Field(default="open", max_length=8, index=True)
    reason: str = Field(max_length=200)
    notes: str = Field(default="", max_length=2000)
    outcome: str | None = Field(default=None, max_length=16)
    outcome_note: str = Field(default="", max_length=500)
    opened_by: str = Field(default="", max_length=64)
    opened_at: dt.datetime = utc_field()
    closed_by: str | None = Field(default=None, max_length=64)
    closed_at: dt.datetime | None = utc_field(nullable=True, default=None)


class OrderCaseCall(SQLModel, table=True):
    __tablename__ = "order_case_call"
    __table_args__ = (CheckConstraint(one_of("outcome", CALL_OUTCOMES), name="ck_order_case_call_outcome"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="order_case.id", index=True)
    called_at: dt.datetime = utc_field()
    outcome: str = Field(max_length=16)
    note: str = Field(default="", max_length=500)
    by_name: str = Field(default="", max_length=64)
    created_at: dt.datetime = utc_field()
