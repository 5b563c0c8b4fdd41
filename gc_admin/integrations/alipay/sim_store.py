"""The local Alipay simulator's configuration and its shared state (dev/test only).

:class:`AlipaySimState` is what the simulated Alipay knows of one application (certificates, keys,
its clock); everything that changes — executed transfers, injected failures — is in the database
(``models.py``), never in process memory, so every worker of a dev server and every thread of a
test see one Alipay. The functions here are the only readers and writers of those tables.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from gc_admin.core.clock import utcnow
from gc_admin.db import session_scope
from gc_admin.integrations.alipay import protocol as p
from gc_admin.integrations.alipay import signing
from gc_admin.integrations.alipay.models import SimAlipayFault, SimAlipayOrder

MAX_SKEW_SECONDS = 15 * 60
DEFAULT_TIMEOUT_DELAY_MS = 3000

BUSINESS_FAULTS = {
    "payee_not_exist": (p.PAYEE_NOT_EXIST, "收款账号不存在"),
    "balance_not_enough": (p.PAYER_BALANCE_NOT_ENOUGH, "付款方余额不足"),
    "paycard_unable": (p.PAYCARD_UNABLE_PAYMENT, "付款账户余额支付功能关闭"),
    "exceed_limit": (p.EXCEED_LIMIT_SM_AMOUNT, "单笔额度超限"),
}
FAULT_KINDS = frozenset({"timeout", "timeout_before", "system_error", "system_error_after", "unavailable",
                         "bad_signature", "unsigned", *BUSINESS_FAULTS})


@dataclasses.dataclass
class AlipaySimState:
    """What the simulated Alipay knows of one application, and how it signs.

    ``app_cert_pem`` is the application certificate Alipay issued (its key verifies requests, its
    SN must be the requests' ``app_cert_sn``); ``alipay_private_key_pem`` / ``alipay_cert_pem`` sign
    answers; ``alipay_root_cert_pem`` gives the expected ``alipay_root_cert_sn``. ``database_url``
    ``None``: the app's configured database. ``clock`` is the simulator's "now" (tests move it)."""

    app_id: str
    app_cert_pem: str
    alipay_private_key_pem: str
    alipay_cert_pem: str
    alipay_root_cert_pem: str
    database_url: str | None = None
    clock: Callable[[], dt.datetime] = utcnow
    max_skew_seconds: int = MAX_SKEW_SECONDS

    def __post_init__(self) -> None:
        self._app_key = signing.cert_public_key(self.app_cert_pem)
        self.app_cert_sn = signing.cert_sn(self.app_cert_pem)
        self._alipay_key = signing.load_private_key(self.alipay_private_key_pem)
        self.alipay_cert_sn = signing.cert_sn(self.alipay_cert_pem)
        self.alipay_root_cert_sn = signing.root_cert_sn(self.alipay_root_cert_pem)


# --------------------------------------------------------------------------------------------------
# the shared state


def inject_fault(state: AlipaySimState, kind: str, *, method: str = p.METHOD_TRANSFER,
                 delay_ms: int = DEFAULT_TIMEOUT_DELAY_MS) -> None:
    """Queue ``kind`` for the next call of ``method`` (see the module docstring)."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}")
    if method not in (p.METHOD_TRANSFER, p.METHOD_QUERY):
        raise ValueError(f"unknown method {method!r}")
    if method == p.METHOD_QUERY and kind in {*BUSINESS_FAULTS, "system_error_after", "timeout_before"}:
        raise ValueError(f"{kind} applies to the transfer only")
    if not 0 <= delay_ms <= 60_000:
        raise ValueError("delay_ms must be 0-60000")
    with session_scope(state.database_url) as s:
        s.add(SimAlipayFault(app_id=state.app_id, method=method, kind=kind, delay_ms=delay_ms,
                             created_at=state.clock()))


def take_fault(state: AlipaySimState, method: str) -> tuple[str, int] | None:
    """The oldest unused fault for ``method``, marked used (a conditional update: one taker only)."""
    with session_scope(state.database_url) as s:
        while True:
            row = s.exec(select(SimAlipayFault).where(SimAlipayFault.app_id == state.app_id,
                                                      SimAlipayFault.method == method,
                                                      col(SimAlipayFault.used_at).is_(None))
                         .order_by(col(SimAlipayFault.id)).limit(1)).first()
            if row is None:
                return None
            taken = s.execute(update(SimAlipayFault).where(col(SimAlipayFault.id) == row.id,
                                                           col(SimAlipayFault.used_at).is_(None))
                              .values(used_at=state.clock()))
            if taken.rowcount == 1:
                return row.kind, row.delay_ms


def transfers_for(state: AlipaySimState, out_biz_no: str) -> list[SimAlipayOrder]:
    """The transfers executed under ``out_biz_no`` (the unique key allows at most one)."""
    with session_scope(state.database_url) as s:
        return list(s.exec(select(SimAlipayOrder).where(SimAlipayOrder.app_id == state.app_id,
                                                        SimAlipayOrder.out_biz_no == out_biz_no)).all())


def find_order(state: AlipaySimState, *, out_biz_no: str | None = None,
                order_id: str | None = None) -> SimAlipayOrder | None:
    with session_scope(state.database_url) as s:
        q = select(SimAlipayOrder).where(SimAlipayOrder.app_id == state.app_id)
        q = q.where(SimAlipayOrder.order_id == order_id) if order_id else q.where(SimAlipayOrder.out_biz_no == out_biz_no)
        return s.exec(q).first()


def add_order(state: AlipaySimState, order: SimAlipayOrder) -> bool:
    """Record an executed transfer; ``False`` if ``(app_id, out_biz_no)`` is already taken (a concurrent
    twin won: the unique key lets exactly one of them transfer)."""
    try:
        with session_scope(state.database_url) as s:
            s.add(order)
    except IntegrityError:
        return False
    return True
