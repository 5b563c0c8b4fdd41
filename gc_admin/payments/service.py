"""WeChat Pay, our side of it: the payment and refund records, the notify log, the calls to WeChat Pay.

Plain functions, session first, keyword-only after; no commits (the caller's unit of work does).
Below orders (it imports nothing from them): what money does to an order — mark it paid, take back
the coupons a refund covers, move its status, give back its points and stored value — is written in
:mod:`gc_admin.orders.flows` and :mod:`gc_admin.orders.refunds`, which call these. Ledger and balances:
:mod:`gc_admin.payments.ledger`, :mod:`gc_admin.payments.balances`.

**Payments, recorded once** (:func:`record_payment`): the ``payment`` row is inserted with ``ON
CONFLICT DO NOTHING`` on its unique ``out_trade_no`` / ``transaction_id`` / ``order_id``, and only the
one call that inserts it writes the ledger entry — every replay, sequential or concurrent (a twin
blocks on the unique index until the first commits), inserts nothing and returns ``False``.

**Refunds, recorded before WeChat is asked** (:func:`record_refund`): a ``refund`` row with a fixed
``out_refund_no``, inserted ``ON CONFLICT DO NOTHING`` against the partial unique index "one refund
in flight per order", so concurrent refund requests for one order record one. :func:`submit_refund`
asks WeChat Pay (first time or retry, the same ``out_refund_no``: WeChat de-duplicates) and
:func:`query_refund` asks about one in flight. An outcome is settled once, by a conditional UPDATE on
the refund's status (:func:`settle_refund_succeeded`, :func:`settle_refund_failed`): the caller acts
on it only when the call says it won.

**Notifies**: every attempt is logged in ``payment_notify_log`` (:func:`log_notify`), accepted or
not; :class:`NotifyResult` is what WeChat Pay is answered.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from gc_admin.core.clock import UTC, iso
from gc_admin.core.errors import InvalidInput, NotFound
from gc_admin.core.principal import Actor
from gc_admin.db import Page, paginate
from gc_admin.integrations.wechatpay.client import WxPayNotifyError
from gc_admin.payments.ledger import add_ledger, dialect_insert
from gc_admin.payments.models import REFUND_STATUSES, Payment, PaymentNotifyLog, Refund

log = logging.getLogger(__name__)

PROVIDER = "wechatpay"
# WeChat Pay error answers that settle a refund as refused (anything else: keep it pending and retry)
DEFINITIVE_REFUSAL_STATUSES = (400, 403, 404)


def _client():
    from gc_admin.integrations.wechatpay.setup import get_client

    return get_client()


# --- notifies ------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class NotifyResult:
    """What to answer WeChat Pay: 204 (received) or a 4xx with ``{"code": "FAIL", "message"}``."""

    status_code: int
    outcome: str  # applied | replay | anomaly | ignored | rejected
    message: str = ""
    order_id: int | None = None

    @property
    def body(self) -> dict[str, str] | None:
        return None if self.status_code == 204 else {"code": "FAIL", "message": self.message or "failed"}


class Rejected(Exception):
    """A notify or transaction that does not fit our records: nothing changes, WeChat gets ``status``."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


def parse_time(value: Any, default: dt.datetime) -> dt.datetime:
    """A provider's ISO-8601 time with offset, as UTC; ``default`` when missing or unreadable."""
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
        except ValueError:
            pass
    return default


def check_merchant(resource: Mapping[str, Any]) -> None:
    """``mchid`` present and ours, ``appid`` (when given) ours; else :class:`Rejected`."""
    client = _client()
    if resource.get("mchid") != client.mchid:
        raise Rejected("mchid missing or not ours")
    if "appid" in resource and resource.get("appid") != client.appid:
        raise Rejected("appid not ours")


def read_notify(session: Session, *, kind: str, headers: Mapping[str, str], body: bytes,
                now: dt.datetime) -> dict[str, Any] | NotifyResult:
    """A notify verified and decrypted (signature, ``Wechatpay-Serial``, 5-minute timestamp, AES-GCM);
    one that does not verify is logged and answered 401 (the :class:`NotifyResult` returned)."""
    try:
        return _client().parse_notify(headers, body, now=now)
    except WxPayNotifyError as exc:
        log_notify(session, kind=kind, outcome="rejected", reason=f"verification: {exc}", body=body, now=now)
        return NotifyResult(401, "rejected", "签名或时间戳校验失败")


def log_notify(session: Session, *, kind: str, outcome: str, reason: str, body: bytes, now: dt.datetime,
               event: Mapping[str, Any] | None = None, resource: Mapping[str, Any] | None = None) -> None:
    """One ``payment_notify_log`` row for a notify attempt (the body only as its SHA-256)."""
    r = resource or {}
    amount = (r.get("amount") or {}) if isinstance(r.get("amount"), dict) else {}
    fen = amount.get("refund" if kind == "refund" else "total")
    session.add(PaymentNotifyLog(
        received_at=now, kind=kind, outcome=outcome, reason=reason[:200],
        event_id=str((event or {}).get("id") or "")[:64] or None,
        event_type=str((event or {}).get("event_type") or "")[:32] or None,
        out_trade_no=str(r.get("out_trade_no") or "")[:32] or None,
        out_refund_no=str(r.get("out_refund_no") or "")[:64] or None,
        transaction_id=str(r.get("transaction_id") or "")[:64] or None,
        amount_fen=fen if isinstance(fen, int) and not isinstance(fen, bool) else None,
        body_sha256=hashlib.sha256(body).hexdigest(),
    ))
    session.flush()
    level = logging.WARNING if outcome in ("rejected", "anomaly") else logging.INFO
    log.log(level, "wxpay %s notify %s: %s (out_trade_no=%s)", kind, outcome, reason or "-", r.get("out_trade_no"))


def list_notify_log(session: Session, *, outcome: str | None = None, offset: int = 0,
                    limit: int = 50) -> Page[PaymentNotifyLog]:
    """Notify attempts, newest first (rejections are what a person looks at)."""
    q = select(PaymentNotifyLog)
    if outcome:
        q = q.where(col(PaymentNotifyLog.outcome) == outcome)
    return paginate(session, q, order=[col(PaymentNotifyLog.id).desc()], offset=offset, limit=limit)


# --- payments ------------------------------------------------------------------------------------------

def prepay(*, out_trade_no: str, description: str, amount_fen: int, payer_openid: str, time_expire: dt.datetime,
           attach: str) -> str:
    """Open a WeChat Pay JSAPI order; its ``prepay_id`` (raises ``WxPayError``)."""
    return _client().jsapi_prepay(out_trade_no=out_trade_no, description=description, amount_fen=amount_fen,
                                  payer_openid=payer_openid, time_expire=time_expire, attach=attach)


def pay_params(prepay_id: str) -> dict[str, str]:
    """``wx.requestPayment`` parameters for a prepay id, freshly signed."""
    return _client().mini_program_pay_params(prepay_id)


def close_order(out_trade_no: str) -> None:
    """Close an unpaid WeChat Pay order (raises ``WxPayError``: ``ORDERPAID`` when it was paid meanwhile)."""
    _client().close_order(out_trade_no)


def query_order(out_trade_no: str) -> dict[str, Any]:
    """WeChat Pay's transaction for an order number (raises ``WxPayError``)."""
    return _client().query_order(out_trade_no)


def record_payment(session: Session, *, order_id: int, user_id: int, out_trade_no: str, transaction_id: str,
                   amount_fen: int, payer_openid: str | None, success_time: dt.datetime, source: str,
                   now: dt.datetime) -> bool:
    """Record money received for an order, and its ledger entry, once: ``False`` if it already was."""
    payment_id = session.execute(dialect_insert(session)(Payment).values(
        order_id=order_id, provider=PROVIDER, out_trade_no=out_trade_no, transaction_id=transaction_id[:64],
        amount_fen=amount_fen, payer_openid=payer_openid, success_time=success_time, source=source, created_at=now,
    ).on_conflict_do_nothing().returning(Payment.id)).scalar_one_or_none()
    if payment_id is None:
        return False
    add_ledger(session, kind="payment", amount_fen=amount_fen, ref=f"pay:{out_trade_no}", provider=PROVIDER,
               provider_ref=transaction_id, order_id=order_id, user_id=user_id, occurred_at=success_time,
               note=f"订单 {out_trade_no} 微信支付")
    return True


def order_payment(session: Session, *, order_id: int) -> dict[str, Any] | None:
    p = session.exec(select(Payment).where(col(Payment.order_id) == order_id)).first()
    if p is None:
        return None
    return {"provider": p.provider, "transaction_id": p.transaction_id, "amount_fen": p.amount_fen,
            "success_time": iso(p.success_time), "source": p.source}


# --- refunds -------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RefundView:
    id: int
    order_id: int
    out_refund_no: str
    refund_id: str | None
    amount_fen: int
    coupons: int
    full: bool
    reason: str
    status: str
    error: str | None
    actor_name: str
    created_at: dt.datetime
    succeeded_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(created_at=iso(self.created_at), succeeded_at=iso(self.succeeded_at),
                 status_label=REFUND_STATUSES[self.status])
        return d


def refund_view(r: Refund) -> RefundView:
    return RefundView(r.id or 0, r.order_id, r.out_refund_no, r.refund_id, r.amount_fen, r.coupons, r.full, r.reason,
                      r.status, r.error, r.actor_name, r.created_at, r.succeeded_at)


def order_refunds(session: Session, *, order_id: int) -> list[RefundView]:
    return [refund_view(r) for r in session.exec(select(Refund).where(col(Refund.order_id) == order_id)
                                                 .order_by(col(Refund.id))).all()]


def get_refund(session: Session, *, refund_id: int) -> Refund:
    r = session.get(Refund, refund_id, populate_existing=True)
    if r is None:
        raise NotFound("退款不存在", code="REFUND_NOT_FOUND")
    return r


def refund_by_no(session: Session, *, out_refund_no: str) -> Refund | None:
    return session.exec(select(Refund).where(col(Refund.out_refund_no) == out_refund_no)).first()


def list_refunds(session: Session, *, status: str | None = None, offset: int = 0,
                 limit: int = 50) -> Page[RefundView]:
    """Refunds, newest first (the refunds page)."""
    q = select(Refund)
    if status:
        if status not in REFUND_STATUSES:
            raise InvalidInput("未知的退款状态", code="INVALID_STATUS")
        q = q.where(col(Refund.status) == status)
    return paginate(session, q, order=[col(Refund.id).desc()], offset=offset, limit=limit, row=refund_view)


def record_refund(session: Session, *, order_id: int, order_no: str, amount_fen: int, coupons: int, full: bool,
                  reason: str, actor: Actor, now: dt.datetime) -> Refund | None:
    """Insert a pending refund of an order with its fixed ``out_refund_no``; ``None`` when the order
    already has one in flight (the partial unique index decides, whatever runs in parallel)."""
    seq = session.exec(select(func.count()).select_from(Refund).where(col(Refund.order_id) == order_id)).one() + 1
    refund_id = session.execute(dialect_insert(session)(Refund).values(
        order_id=order_id, out_refund_no=f"RF{order_no[2:]}{seq:02d}", amount_fen=amount_fen, coupons=coupons,
        full=full, reason=reason, status="pending", actor_type=actor.type,
        actor_id=None if actor.id is None else str(actor.id), actor_name=actor.name[:64], attempts=0, created_at=now,
        updated_at=now,
    ).on_conflict_do_nothing().returning(Refund.id)).scalar_one_or_none()
    return None if refund_id is None else get_refund(session, refund_id=refund_id)


def submit_refund(session: Session, *, refund: Refund, out_trade_no: str, total_fen: int,
                  now: dt.datetime) -> dict[str, Any]:
    """Ask WeChat Pay to make a recorded refund (counted as an attempt); its answer, or ``WxPayError``."""
    session.execute(update(Refund).where(col(Refund.id) == refund.id)
                    .values(attempts=col(Refund.attempts) + 1, updated_at=now)
                    .execution_options(synchronize_session=False))
    return _client().refund(out_refund_no=refund.out_refund_no, out_trade_no=out_trade_no,
                            refund_fen=refund.amount_fen, total_fen=total_fen, reason=refund.reason[:80])


def query_refund(refund: Refund) -> dict[str, Any]:
    """WeChat Pay's state of a refund (raises ``WxPayError``)."""
    return _client().query_refund(refund.out_refund_no)


def note_refund_error(session: Session, *, refund_id: int, error: str) -> None:
    """WeChat Pay could not be reached: the refund stays pending, with why."""
    session.execute(update(Refund).where(col(Refund.id) == refund_id)
                    .values(error=error[:200]).execution_options(synchronize_session=False))


def mark_refund_processing(session: Session, *, refund_id: int, provider_status: str, wx_refund_id: str | None,
                           now: dt.datetime) -> None:
    """WeChat Pay has a pending refund and works on it."""
    session.execute(update(Refund).where(col(Refund.id) == refund_id, col(Refund.status) == "pending")
                    .values(status="processing", provider_status=provider_status[:16] or None, updated_at=now,
                            refund_id=func.coalesce(wx_refund_id, col(Refund.refund_id)))
                    .execution_options(synchronize_session=False))


def settle_refund_succeeded(session: Session, *, refund_id: int, wx_refund_id: str | None,
                            success_time: dt.datetime, now: dt.datetime) -> Refund | None:
    """pending / processing -> succeeded, once: the refund if this call settled it, else ``None``."""
    won = session.execute(
        update(Refund).where(col(Refund.id) == refund_id, col(Refund.status).in_(("pending", "processing")))
        .values(status="succeeded", provider_status="SUCCESS", succeeded_at=success_time, error=None, updated_at=now,
                refund_id=func.coalesce(wx_refund_id, col(Refund.refund_id)))
        .execution_options(synchronize_session=False)).rowcount
    return get_refund(session, refund_id=refund_id) if won == 1 else None


def settle_refund_failed(session: Session, *, refund_id: int, provider_status: str, error: str, now: dt.datetime,
                         wx_refund_id: str | None = None) -> Refund | None:
    """pending / processing -> failed, once: the refund if this call settled it, else ``None``."""
    won = session.execute(
        update(Refund).where(col(Refund.id) == refund_id, col(Refund.status).in_(("pending", "processing")))
        .values(status="failed", provider_status=provider_status or None, error=error, updated_at=now,
                refund_id=func.coalesce(wx_refund_id, col(Refund.refund_id)))
        .execution_options(synchronize_session=False)).rowcount
    return get_refund(session, refund_id=refund_id) if won == 1 else None


def refunds_in_flight(session: Session, *, older_than: dt.timedelta, now: dt.datetime, limit: int) -> list[int]:
    """Refunds still pending or processing, untouched for ``older_than`` (the retry job's work list)."""
    return [int(rid or 0) for rid in session.exec(
        select(Refund.id).where(col(Refund.status).in_(("pending", "processing")),
                                col(Refund.updated_at) < now - older_than)
        .order_by(col(Refund.id)).limit(limit)).all()]
