"""Tables of the local Alipay simulator (dev/test only; the real Alipay keeps its own records).

Its state is in the database, not in process memory, so that every worker of a dev server and
every thread of a test see one Alipay: one order per ``(app_id, out_biz_no)`` (a unique key, so
two concurrent requests cannot both transfer) and one queue of injected failures, each consumed
exactly once by a conditional update. No payee account or name is stored, only a digest of the
request's parameters (to tell an idempotent retry from a conflicting one).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from gc_admin.core.types import utc_field


class SimAlipayOrder(SQLModel, table=True):
    """A transfer the simulated Alipay executed (status SUCCESS: the money moved)."""

    __tablename__ = "sim_alipay_order"
    __table_args__ = (UniqueConstraint("app_id", "out_biz_no", name="uq_sim_alipay_order_out_biz_no"),)

    id: int | None = Field(default=None, primary_key=True)
    app_id: str = Field(max_length=32)
    out_biz_no: str = Field(max_length=64)
    order_id: str = Field(max_length=32, unique=True)
    pay_fund_order_id: str = Field(max_length=32)
    amount_fen: int
    request_digest: str = Field(max_length=64)  # sha256 of amount, product, scene and payee
    status: str = Field(max_length=12)
    created_at: dt.datetime = utc_field()


class SimAlipayFault(SQLModel, table=True):
    """A failure injected for the next call of ``method`` (dev/test helper ``/_fault``)."""

    __tablename__ = "sim_alipay_fault"

    id: int | None = Field(default=None, primary_key=True)
    app_id: str = Field(max_length=32, index=True)
    method: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    delay_ms: int = 0
    created_at: dt.datetime = utc_field()
    used_at: dt.datetime | None = utc_field(nullable=True, default=None)
