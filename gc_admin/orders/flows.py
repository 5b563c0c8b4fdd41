"""Order processes that cross features: creating an order with its holds and its payment, cancelling
it (by hand or when unpaid too long), applying a payment, and the order as the API shows it.

Written once, called by the API, the dashboard and the jobs alike. Most take the caller's session
(one unit of work, no commit). The few at the end own their units of work (:func:`cancel`, :func:`act`,
:func:`lease_act`, :func:`bulk_act`): they commit what must stay on record before they raise — the caller
decides what commits, not the error.

**Creation** (:func:`create_order`): the user's row is locked, the order priced again
(:func:`gc_admin.orders.pricing.quote`), its kind holds what it sells (``orders/kinds/``), the coupon,
points and stored value it uses are held, and the WeChat Pay JSAPI order is opened. An order with
nothing left to pay is paid at once. Any failure rolls everything back.

**Unpaid orders**: :func:`cancel_expired_unpaid` (run it every minute from any scheduler, on as many
workers as you like) picks created orders past ``pay_expires_at`` plus :data:`EXPIRY_GRACE`
(PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so workers take disjoint orders; on SQLite two workers may
pick the same order — correctness never rested on that lock, see below — and no write lock is taken
up front, so WeChat calls do not hold up every other writer), closes each at WeChat Pay (an order
WeChat reports paid is applied instead of cancelled; other errors are logged and tolerated), then
cancels the rest with one conditional UPDATE and releases exactly what that UPDATE returned.

**Payment notify, applied exactly once** (:func:`handle_payment_notify`): the raw body is verified
and decrypted by the client (signature, ``Wechatpay-Serial``, 5-minute timestamp, AES-GCM), then
checked — mchid/appid present and ours, ``trade_state`` SUCCESS, ``out_trade_no`` a known order,
``amount.total`` equal to its payable. Anything wrong: nothing changes, a ``payment_notify_log``
row says why, and WeChat gets 4xx ``{"code": "FAIL", ...}``. A good notify records the payment once
(:func:`gc_admin.payments.service.record_payment`): the one transaction that records it writes the
ledger entry and moves the order ``created -> paid`` with a conditional UPDATE (:func:`mark_paid`:
coupons consumed or issued, staff notice queued); every replay — sequential or concurrent —
changes nothing. Money that arrives for an order that is no longer ``created`` (cancelled
meanwhile) is still recorded (payment + ledger: it *was* received) but does not revive the order:
the order goes ``cancelled -> after_sales`` marked ``paid_after_cancel`` for a refund.

**Refunds** are :mod:`gc_admin.orders.refunds`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.config import get_settings
from gc_admin.core.clock import iso, utcnow
from gc_admin.core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, UpstreamError
from gc_admin.core.money import format_fen
from gc_admin.core.phone import mask_phone
from gc_admin.core.principal import SYSTEM, Actor
from gc_admin.coupons.purchase import service as purchase
from gc_admin.coupons.wallet import service as coupons
from gc_admin.core.bulk import dialect
from gc_admin.db import commit_then_raise, lock_for_write, session_scope
from gc_admin.integrations.wechatpay.client import WxPayError
from gc_admin.orders import pricing
from gc_admin.orders.aftersales import service as aftersales
from gc_admin.orders.kinds import goods, kind_of
from gc_admin.orders.models import ORDER_STATUSES, ORDER_TYPES, OrderNotice, ServiceOrder
from gc_admin.orders.kinds.base import ActionOutcome
from gc_admin.orders.refunds import (
    RefundRefused,
    give_back_balances,
    refund_order,
    refund_values,
    refundable_fen,
    send_refund_now,
)
from gc_admin.orders.service import (
    ACTION_LABELS,
    PAYING_ACTOR,
    TRANSITIONS,
    REASON_REQUIRED,
    REFUNDABLE,
    STAFF_ACTIONS,
    Scope,
    add_event,
    check_lease,
    claim,
    get_order,
    get_user_order,
    lease_of,
    mark_stale,
    new_order_no,
    order_history,
    order_ref,
    release,
    transition,
    user_actor,
    visible_order,
    write_event,
)
from gc_admin.payments import balances
from gc_admin.payments import service as payments
from gc_admin.payments.models import Refund
from gc_admin.payments.service import NotifyResult, Rejected
from gc_admin.users.models import MpUser

log = logging.getLogger(__name__)

EXPIRY_GRACE = dt.timedelta(minutes=2)  # lets a notify for a payment made at the last second land first


class OrderAlreadyPaid(Conflict):
    """An order being cancelled turned out paid at WeChat Pay: the payment was applied instead. That
    payment is in the session: commit it (see :func:`cancel`), then let the error reach the person."""

    def __init__(self) -> None:
        super().__init__("订单已支付，无法取消", code="ORDER_ALREADY_PAID")


# --- creation ------------------------------------------------------------------------------------------

def _lock_user(session: Session, user_id: int) -> MpUser:
    """Re-load the user, locked so one user's orders are created one at a time (the per-user purchase
    limit is counted inside that lock): the user's row on PostgreSQL, the write lock on SQLite
    (:func:`gc_admin.db.lock_for_write`)."""
    lock_for_write(session)
    q = select(MpUser).where(col(MpUser.id) == user_id)
    if dialect(session) == "postgresql":
        q = q.with_for_update(key_share=True)  # FOR NO KEY UPDATE: foreign-key checks (coupon.user_id) pass
    user = session.exec(q.execution_options(populate_existing=True)).first()
    if user is None:
        raise NotFound("用户不存在", code="USER_NOT_FOUND")
    return user


def _description(q: pricing.Quote) -> str:
    text_ = "、".join(f"{ln.name}×{ln.quantity}" for ln in q.lines)
    return text_[:127] or "滚财车主权益订单"


def create_order(session: Session, *, user: MpUser, body: pricing.OrderDraft | dict[str, Any],
                 ip: str | None = None, now: dt.datetime | None = None) -> ServiceOrder:
    """Create an order for ``user``: price it, hold what it uses (stock, coupon, points, stored
    value), and open the WeChat Pay JSAPI order (``prepay_id``). An order with nothing left to pay
    is paid at once. Any failure (no stock, WeChat Pay down) rolls everything back."""
    now = now or utcnow()
    assert user.id is not None
    user = _lock_user(session, user.id)
    q = pricing.quote(session, user=user, body=body)
    if q.payable_fen > 0 and not user.openid:
        raise Conflict("请使用微信登录小程序后再支付", code="WECHAT_LOGIN_REQUIRED")
    if not user.phone:  # users are known by phone; bought coupons go to it (and a phone-less account may be merged)
        raise Conflict("请先绑定手机号后再下单，购买的券会发放到该手机号", code="PHONE_REQUIRED")
    actor = user_actor(user, ip)
    details: dict[str, Any] = {"lines": [ln.to_dict() for ln in q.lines], **q.details}
    if q.exchange_coupon_id:
        details["exchange_coupon_id"] = q.exchange_coupon_id
    order = ServiceOrder(
        order_no=new_order_no(now), type=q.type, status="created", user_id=user.id, list_fen=q.list_fen,
        payable_fen=q.payable_fen, pricing=q.pricing_dict(), details=details, fulfilment={}, coupon_id=q.coupon_id,
        points_used=q.points_used, stored_value_fen=q.stored_value_fen, city=kind_of(q.type).city(q.details),
        pay_expires_at=now + dt.timedelta(minutes=get_settings().order_unpaid_minutes),
        created_at=now, updated_at=now,
    )
    session.add(order)
    session.flush()
    assert order.id is not None
    ref = order_ref(order.id)
    write_event(session, order_id=order.id, action="create", from_status=None, to_status="created", actor=actor,
                reason="", now=now)
    record(session, actor=actor, action="order.created", target_type="service_order", target_id=order.id,
           summary=f"下单 {order.order_no}（{ORDER_TYPES[q.type]}）：{_description(q)}，标价 {format_fen(q.list_fen)}，"
                   f"应付 {format_fen(q.payable_fen)}",
           after={"order_no": order.order_no, "type": q.type, "list_fen": q.list_fen, "payable_fen": q.payable_fen,
                  "steps": [s.to_dict() for s in q.steps]})
    kind_of(q.type).on_created(session, order=order, quote=q, now=now)
    for coupon_id in (q.coupon_id, q.exchange_coupon_id):
        if coupon_id:
            coupons.reserve(session, coupon_id=coupon_id, user=user, ref=ref, actor=actor, now=now)
    if q.points_used:
        balances.move_points(session, user_id=user.id, delta=-q.points_used, reason=f"订单 {order.order_no} 抵扣",
                             ref=f"{ref}:points", order_id=order.id, now=now)
    if q.stored_value_fen:
        balances.move_stored_value(session, user_id=user.id, delta_fen=-q.stored_value_fen,
                                   reason=f"订单 {order.order_no} 支付", ref=f"{ref}:stored_value", order_id=order.id,
                                   now=now)
    if q.payable_fen == 0:
        mark_paid(session, order_id=order.id, amount_fen=0, paid_at=now, now=now)
    else:
        try:
            order.prepay_id = payments.prepay(
                out_trade_no=order.order_no, description=_description(q), amount_fen=q.payable_fen,
                payer_openid=user.openid or "", time_expire=order.pay_expires_at, attach=ref)
        except WxPayError as exc:
            log.warning("order %s: jsapi prepay failed: %s", order.order_no, exc)
            raise UpstreamError("微信支付下单失败，请稍后再试", code="WXPAY_UNAVAILABLE") from exc
        session.add(order)
        session.flush()
    mark_stale(session, order.id)
    out = session.get(ServiceOrder, order.id)
    assert out is not None
    return out


# --- payment ---------------------------------------------------------------------------------------------

def mark_paid(session: Session, *, order_id: int, amount_fen: int, paid_at: dt.datetime,
              now: dt.datetime | None = None) -> bool:
    """created -> paid, once: consume the coupon used on it, deliver what its kind sells (a coupon
    purchase: issue the coupons and complete it), queue the staff notice. False (nothing done) if the
    order is not ``created``."""
    now = now or utcnow()
    res = session.execute(
        update(ServiceOrder).where(col(ServiceOrder.id) == order_id, col(ServiceOrder.status) == "created")
        .values(status="paid", paid_fen=amount_fen, paid_at=paid_at, updated_at=now)
        .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        return False
    mark_stale(session, order_id)
    order = session.get(ServiceOrder, order_id)
    assert order is not None
    write_event(session, order_id=order_id, action="pay", from_status="created", to_status="paid", actor=PAYING_ACTOR,
                reason=f"实付 {format_fen(amount_fen)}", now=now)
    record(session, actor=PAYING_ACTOR, action="order.pay", target_type="service_order", target_id=order_id,
           summary=f"订单 {order.order_no} 支付成功，实付 {format_fen(amount_fen)}",
           before={"status": "created"}, after={"status": "paid", "paid_fen": amount_fen})
    ref = order_ref(order_id)
    for coupon_id in (order.coupon_id, order.details.get("exchange_coupon_id")):
        if coupon_id:
            coupons.consume(session, coupon_id=int(coupon_id), ref=ref, actor=PAYING_ACTOR, now=now)
    kind_of(order.type).on_paid(session, order=order, actor=PAYING_ACTOR, now=now)
    ins = (postgresql.insert if dialect(session) == "postgresql" else sqlite.insert)(OrderNotice)
    session.execute(ins.values(order_id=order_id, status="pending", created_at=now).on_conflict_do_nothing())
    session.flush()
    return True


def apply_transaction(session: Session, *, resource: Mapping[str, Any], source: str,
                      now: dt.datetime | None = None) -> tuple[str, str, int | None]:
    """Apply a WeChat Pay transaction object (notify resource or query answer): ``(outcome, reason,
    order id)``. Raises :class:`Rejected` before changing anything if it does not fit an order."""
    now = now or utcnow()
    payments.check_merchant(resource)
    out_trade_no, transaction_id = resource.get("out_trade_no"), resource.get("transaction_id")
    if resource.get("trade_state") != "SUCCESS":
        return "ignored", f"trade_state {resource.get('trade_state')}", None
    total = (resource.get("amount") or {}).get("total") if isinstance(resource.get("amount"), dict) else None
    if not (isinstance(out_trade_no, str) and out_trade_no and isinstance(transaction_id, str) and transaction_id):
        raise Rejected("out_trade_no / transaction_id missing")
    if isinstance(total, bool) or not isinstance(total, int):
        raise Rejected("amount.total is not an integer")
    order = session.exec(select(ServiceOrder).where(col(ServiceOrder.order_no) == out_trade_no)).first()
    if order is None:
        raise Rejected(f"unknown out_trade_no {out_trade_no}", 404)
    assert order.id is not None
    if total != order.payable_fen:
        raise Rejected(f"amount.total {total} != payable {order.payable_fen} of {out_trade_no}")
    success_time = payments.parse_time(resource.get("success_time"), now)
    payer = resource.get("payer") if isinstance(resource.get("payer"), dict) else {}
    if not payments.record_payment(session, order_id=order.id, user_id=order.user_id, out_trade_no=out_trade_no,
                                   transaction_id=transaction_id, amount_fen=total,
                                   payer_openid=str(payer.get("openid") or "")[:64] or None,
                                   success_time=success_time, source=source, now=now):
        return "replay", "payment already recorded", order.id
    if mark_paid(session, order_id=order.id, amount_fen=total, paid_at=success_time, now=now):
        return "applied", "", order.id
    if order.status == "awaiting_payment":  # the rest of a fee set at completion (driver), paid once
        transition(session, order_id=order.id, action="pay_remainder", actor=PAYING_ACTOR, now=now,
                   reason=f"补付 {format_fen(total)}", values={"paid_fen": total, "paid_at": success_time})
        return "applied", "", order.id
    # money arrived for an order that is no longer waiting for it: keep the money on record, do not revive it
    status = session.exec(select(ServiceOrder.status).where(col(ServiceOrder.id) == order.id)).one()
    session.execute(update(ServiceOrder).where(col(ServiceOrder.id) == order.id, col(ServiceOrder.paid_fen) == 0)
                    .values(paid_fen=total, paid_at=success_time, anomaly=f"paid_after_{status}"[:64], updated_at=now)
                    .execution_options(synchronize_session=False))
    reason = f"订单{ORDER_STATUSES[status]}后收到微信支付 {format_fen(total)}，需退款"
    if status == "cancelled":
        transition(session, order_id=order.id, action="paid_after_cancel", actor=SYSTEM, reason=reason, now=now)
    record(session, actor=PAYING_ACTOR, action="payment.anomaly", target_type="service_order",
           target_id=order.id, summary=f"订单 {out_trade_no}：{reason}",
           after={"status": status, "amount_fen": total, "transaction_id": transaction_id})
    return "anomaly", f"order was {status}", order.id


def handle_payment_notify(session: Session, *, headers: Mapping[str, str], body: bytes,
                          now: dt.datetime | None = None) -> NotifyResult:
    """``POST /pay/wechat/notify``: verify, check, apply once, log the attempt (see the module docstring)."""
    now = now or utcnow()
    event = payments.read_notify(session, kind="payment", headers=headers, body=body, now=now)
    if isinstance(event, NotifyResult):
        return event
    resource = event["resource"]
    if event["event_type"] != "TRANSACTION.SUCCESS":
        payments.log_notify(session, kind="payment", outcome="ignored", reason=f"event_type {event['event_type']}",
                            body=body, now=now, event=event, resource=resource)
        return NotifyResult(204, "ignored")
    try:
        outcome, reason, order_id = apply_transaction(session, resource=resource, source="notify", now=now)
    except Rejected as rej:
        payments.log_notify(session, kind="payment", outcome="rejected", reason=rej.reason, body=body, now=now,
                            event=event, resource=resource)
        return NotifyResult(rej.status, "rejected", {404: "订单不存在"}.get(rej.status, "通知内容与订单不符"))
    payments.log_notify(session, kind="payment", outcome=outcome, reason=reason, body=body, now=now, event=event,
                        resource=resource)
    return NotifyResult(204, outcome, "", order_id)


def sync_payment(session: Session, *, order_id: int, now: dt.datetime | None = None) -> str:
    """Ask WeChat Pay about an order and apply a payment it reports (the notify may be late or lost).
    Returns the outcome (``applied``, ``replay``, ``anomaly``, ``ignored``, ``error``)."""
    order = get_order(session, order_id=order_id)
    try:
        data = payments.query_order(order.order_no)
    except WxPayError as exc:
        log.warning("order %s: query at WeChat Pay failed: %s", order.order_no, exc.code)
        return "error"
    try:
        outcome, _, _ = apply_transaction(session, resource=data, source="query", now=now)
    except Rejected as rej:
        log.error("order %s: WeChat Pay reports a transaction that does not fit: %s", order.order_no, rej.reason)
        return "error"
    return outcome


# --- cancelling ----------------------------------------------------------------------------------------

def _close_at_provider(order_no: str) -> str:
    """Close the WeChat Pay order: ``closed``, ``paid`` (WeChat says ORDERPAID) or ``error`` (logged)."""
    try:
        payments.close_order(order_no)
    except WxPayError as exc:
        if exc.code == "ORDERPAID":
            return "paid"
        if exc.code in ("ORDER_NOT_EXIST", "ORDER_CLOSED"):
            return "closed"
        log.warning("order %s: closing at WeChat Pay failed (%s), cancelling anyway", order_no, exc.code)
        return "error"
    return "closed"


def _cancel_ids(session: Session, *, ids: list[int], actor: Actor, reason: str, now: dt.datetime) -> list[int]:
    """Cancel those of ``ids`` still created (one conditional UPDATE) and release exactly what they held."""
    if not ids:
        return []
    won = session.execute(
        update(ServiceOrder).where(col(ServiceOrder.id).in_(ids), col(ServiceOrder.status) == "created")
        .values(status="cancelled", cancelled_at=now, updated_at=now)
        .returning(ServiceOrder.id, ServiceOrder.order_no, ServiceOrder.user_id, ServiceOrder.coupon_id,
                   ServiceOrder.details, ServiceOrder.points_used, ServiceOrder.stored_value_fen)
        .execution_options(synchronize_session=False)).all()
    if not won:
        return []
    released = purchase.release_for_orders(session, order_ids=[r[0] for r in won], now=now)
    goods.give_back_for_orders(session, details=[r[4] for r in won])  # goods orders: their stock
    for oid, order_no, user_id, coupon_id, details, points, stored in won:
        ref = order_ref(oid)
        for cid in (coupon_id, (details or {}).get("exchange_coupon_id")):
            if cid:
                coupons.release(session, coupon_id=int(cid), ref=ref, actor=actor, now=now)
        give_back_balances(session, order_id=oid, user_id=user_id, order_no=order_no, points=points,
                           stored_value_fen=stored, now=now)
        write_event(session, order_id=oid, action="cancel", from_status="created", to_status="cancelled", actor=actor,
                    reason=reason, now=now)
        record(session, actor=actor, action="order.cancel", target_type="service_order", target_id=oid,
               summary=f"订单 {order_no} 取消（{reason}）", before={"status": "created"},
               after={"status": "cancelled", "reason": reason})
        mark_stale(session, oid)
    log.info("cancelled %d orders, %d held coupons released", len(won), released)
    session.flush()
    return sorted(r[0] for r in won)


def cancel_order(session: Session, *, order_id: int, actor: Actor, reason: str, user: MpUser | None = None,
                 now: dt.datetime | None = None) -> ServiceOrder:
    """Cancel an unpaid order (user: their own; staff): close it at WeChat Pay, release what it held.

    If WeChat says it has just been paid, the payment is applied instead and :class:`OrderAlreadyPaid`
    (``ORDER_ALREADY_PAID``) is raised: commit the applied payment first (:func:`cancel` does)."""
    now = now or utcnow()
    order = get_user_order(session, user=user, order_id=order_id) if user is not None else get_order(
        session, order_id=order_id)
    cancel_paid = kind_of(order.type).cancel_paid
    if order.status != "created" and cancel_paid is not None:  # a free booking, not yet served (driver)
        cancel_paid(session, order=order, actor=actor, now=now,
                    reason=(reason or "").strip() or ("用户取消" if actor.type == "user" else "未注明原因"))
        return get_order(session, order_id=order_id)
    if order.status != "created":
        raise Conflict(f"订单当前状态为“{ORDER_STATUSES[order.status]}”，只能取消待支付的订单；已支付订单请联系客服退款",
                       code="ORDER_STATE_INVALID")
    reason = (reason or "").strip() or ("用户取消" if actor.type == "user" else "")
    if not reason:
        raise InvalidInput("请填写取消原因", code="REASON_REQUIRED")
    if order.prepay_id and _close_at_provider(order.order_no) == "paid":
        sync_payment(session, order_id=order.id or 0, now=now)
        raise OrderAlreadyPaid()
    if not _cancel_ids(session, ids=[order_id], actor=actor, reason=reason, now=now):
        raise Conflict("订单状态已变化，请刷新后重试", code="ORDER_STATE_CHANGED")
    out = session.get(ServiceOrder, order_id)
    assert out is not None
    return out


@dataclasses.dataclass(frozen=True)
class ExpiryResult:
    cancelled: list[int]
    paid_late: list[int]  # WeChat had them paid: the payment was applied instead
    close_errors: int


def cancel_expired_unpaid(session: Session, *, now: dt.datetime | None = None, limit: int = 100) -> ExpiryResult:
    """Cancel created orders past their payment deadline; safe on several workers at once."""
    now = now or utcnow()
    q = (select(ServiceOrder.id, ServiceOrder.order_no, ServiceOrder.prepay_id)
         .where(col(ServiceOrder.status) == "created", col(ServiceOrder.pay_expires_at) < now - EXPIRY_GRACE)
         .order_by(col(ServiceOrder.pay_expires_at), col(ServiceOrder.id)).limit(max(1, min(limit, 1000))))
    if dialect(session) == "postgresql":
        q = q.with_for_update(skip_locked=True)
    rows = session.exec(q).all()
    to_cancel: list[int] = []
    paid_late: list[int] = []
    errors = 0
    for oid, order_no, prepay_id in rows:
        outcome = _close_at_provider(order_no) if prepay_id else "closed"
        if outcome == "paid":
            sync_payment(session, order_id=oid, now=now)
            paid_late.append(oid)
            continue
        errors += outcome == "error"
        to_cancel.append(oid)
    cancelled = _cancel_ids(session, ids=to_cancel, actor=SYSTEM,
                            reason=f"超过 {get_settings().order_unpaid_minutes} 分钟未支付，自动取消", now=now)
    return ExpiryResult(cancelled=cancelled, paid_late=paid_late, close_errors=errors)


def staff_action(session: Session, *, order_id: int, action: str, actor: Actor, reason: str = "",
                 fulfilment: dict[str, Any] | None = None, fields: Mapping[str, Any] | None = None,
                 now: dt.datetime | None = None) -> ServiceOrder:
    """A staff move of the state machine (:data:`~gc_admin.orders.service.STAFF_ACTIONS`) on one order.

    The order's kind must allow it (``Kind.actions``, else ``ACTION_NOT_FOR_TYPE``) and take ``fields``
    for it (``Kind.action_fields``, else ``INVALID_FIELD``); its ``on_action`` validates them and says
    what to store — shop and ETA, provider reference, driver, tracking no. — which lands in the order's
    ``fulfilment`` in the move's own conditional UPDATE. Another clerk's live lease refuses it
    (``ORDER_CLAIMED_BY_OTHER``). ``fulfilment``: free notes merged as they are (older clients).
    ``fail`` (a top-up that could not be done) records the full refund
    (:func:`~gc_admin.orders.refunds.refund_order`); the caller sends it after committing (:func:`act`).
    ``cancel`` is for unpaid orders (:func:`cancel_order`)."""
    now = now or utcnow()
    if action not in STAFF_ACTIONS:
        raise InvalidInput(f"未知的订单操作：{action}", code="INVALID_ACTION")
    order = get_order(session, order_id=order_id)
    kind = kind_of(order.type)
    label = ACTION_LABELS[action]
    if action not in kind.actions:
        raise Conflict(f"{kind.label}订单没有“{label}”操作", code="ACTION_NOT_FOR_TYPE")
    given = {k: v for k, v in (fields or {}).items() if v is not None}
    unknown = sorted(set(given) - set(kind.action_fields.get(action, ())) - set(COMMON_FIELDS.get(action, ())))
    if unknown:
        raise InvalidInput(f"{kind.label}订单的“{label}”不接受这些字段：{', '.join(unknown)}", code="INVALID_FIELD")
    reason = (reason or "").strip()
    if action in REASON_REQUIRED and not reason:
        raise InvalidInput("请填写原因", code="REASON_REQUIRED")
    check_lease(session, order_id=order_id, actor=actor, now=now)
    if action == "cancel":
        return cancel_order(session, order_id=order_id, actor=actor, reason=reason, now=now)
    spec = TRANSITIONS[action]
    if order.status not in spec.sources:
        raise Conflict(f"订单当前状态为“{ORDER_STATUSES[order.status]}”，不能{spec.label}", code="ORDER_STATE_INVALID")
    outcome = kind.on_action(session, order=order, action=action, fields=given, actor=actor, now=now) \
        or ActionOutcome()
    values: dict[str, Any] = dict(outcome.values)
    if fulfilment or outcome.fulfilment:
        values["fulfilment"] = {**(order.fulfilment or {}), **{str(k): v for k, v in (fulfilment or {}).items()},
                                **outcome.fulfilment}
    text_ = "；".join(t for t in (reason, outcome.note) if t)
    if action == "fail":
        _fail(session, order=order, actor=actor, reason=text_, values=values, now=now)
    else:
        transition(session, order_id=order_id, action=action, actor=actor, reason=text_, now=now, values=values,
                   target=outcome.target)
    notes = str(given.get("notes") or "").strip()
    if action == "after_sales":
        aftersales.open_case(session, order_id=order_id, reason=reason, notes=notes, actor=actor, now=now)
    elif action == "resolve":
        aftersales.close_case(session, order_id=order_id, outcome="resolved", note=notes or reason, actor=actor,
                              now=now)
    return get_order(session, order_id=order_id)


#: fields every type's action takes (after-sales: the case's notes)
COMMON_FIELDS: dict[str, tuple[str, ...]] = {"after_sales": ("notes",), "resolve": ("notes",)}


def _fail(session: Session, *, order: ServiceOrder, actor: Actor, reason: str, values: dict[str, Any],
          now: dt.datetime) -> Refund:
    """The order could not be fulfilled (a top-up the provider refused): store what the kind recorded,
    then record the full refund of what is left to refund (→ 退款中); the caller sends it once committed."""
    assert order.id is not None
    res = session.execute(update(ServiceOrder).where(col(ServiceOrder.id) == order.id,
                                                     col(ServiceOrder.status) == order.status)
                          .values(updated_at=now, **values).execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise Conflict("订单状态已变化，请刷新后重试", code="ORDER_STATE_CHANGED")
    mark_stale(session, order.id)
    add_event(session, order_id=order.id, action="fail", actor=actor, reason=reason, now=now)
    return refund_order(session, order_id=order.id, amount_fen=order.paid_fen - order.refunded_fen,
                        reason=f"{ACTION_LABELS['fail']}：{reason}"[:200], actor=actor, now=now)


# --- the order as the API and the staff panel show it --------------------------------------------------

_BY_FOR_USER = {"user": "您", "staff": "平台客服", "system": "系统", "partner": "合作方"}


def order_view(session: Session, *, order: ServiceOrder, for_staff: bool = False) -> dict[str, Any]:
    """API.md "Order": lines, pricing, history, fulfilment, payment and refunds, what its kind adds."""
    assert order.id is not None
    details = dict(order.details or {})
    lines = details.pop("lines", [])
    history = [{
        "action": e.action, "status": e.to_status, "from_status": e.from_status, "at": iso(e.at),
        "by": e.actor_name if for_staff else _BY_FOR_USER.get(e.actor_type, e.actor_type), "reason": e.reason,
    } for e in order_history(session, order_id=order.id)]
    out: dict[str, Any] = {
        "id": order.id, "order_no": order.order_no, "type": order.type, "type_label": ORDER_TYPES[order.type],
        "status": order.status, "status_label": ORDER_STATUSES[order.status], "lines": lines,
        "pricing": order.pricing, "details": details, "fulfilment": order.fulfilment or {}, "history": history,
        "paid_fen": order.paid_fen, "refunded_fen": order.refunded_fen, "created_at": iso(order.created_at),
        "pay_expires_at": iso(order.pay_expires_at) if order.status == "created" else None,
        "paid_at": iso(order.paid_at), "coupon_id": order.coupon_id,
        "refunds": [{**r.to_dict(), **({} if for_staff else {"error": None})}  # provider errors are for staff
                    for r in payments.order_refunds(session, order_id=order.id)],
    }
    out.update(kind_of(order.type).view(session, order=order))
    if for_staff:
        user = session.get(MpUser, order.user_id)
        out.update(user_id=order.user_id, phone_masked=mask_phone(user.phone if user else None), anomaly=order.anomaly,
                   payment=payments.order_payment(session, order_id=order.id),
                   refundable_fen=refundable_fen(session, order=order), city=order.city,
                   claim=lease_of(order), kind_actions=list(kind_of(order.type).actions),
                   case=aftersales.case_view(session, order_id=order.id))
    return out


@dataclasses.dataclass(frozen=True)
class StaffDetail:
    """What the 订单看板 panel shows of one order (formatted by :func:`gc_admin.orders.display.order_detail`)."""

    order: ServiceOrder
    view: dict[str, Any]  # :func:`order_view` for staff
    refund_values: list[int] | None  # per-coupon refund amounts while refundable (None: any amount)


def staff_detail(session: Session, *, order_id: int, scope: Scope) -> StaffDetail:
    """One order for the staff panel, if ``scope`` may see it (else the same "not found" as a missing id)."""
    order = visible_order(session, order_id=order_id, scope=scope)
    view = order_view(session, order=order, for_staff=True)
    values = refund_values(session, order=order) if order.status in REFUNDABLE else None
    return StaffDetail(order, view, values)


# --- processes of several units of work ------------------------------------------------------------------

def cancel(*, order_id: int, actor: Actor, reason: str, user: MpUser | None = None) -> ServiceOrder:
    """:func:`cancel_order` in its own unit of work: a payment WeChat reports instead is committed
    before ``ORDER_ALREADY_PAID`` is raised."""
    return commit_then_raise(
        lambda s: cancel_order(s, order_id=order_id, user=user, actor=actor, reason=reason), OrderAlreadyPaid)


def act(*, order_id: int, action: str, actor: Actor, scope: Scope, reason: str = "",
        fulfilment: dict[str, Any] | None = None, fields: Mapping[str, Any] | None = None) -> ServiceOrder:
    """A staff move (:func:`staff_action`) on an order ``scope`` may see, in its own unit of work (a
    cancel that finds the order paid commits the payment, then raises ``ORDER_ALREADY_PAID``). ``fail``:
    the full refund it recorded is committed, then sent to WeChat Pay in a second unit of work (a failure
    to send leaves it pending for the retry job: the clerk's move stands)."""
    if scope.actions is not None and action not in scope.actions:
        raise Forbidden("当前账号不能执行此操作", code="FORBIDDEN")

    def work(s: Session) -> ServiceOrder:
        visible_order(s, order_id=order_id, scope=scope)
        return staff_action(s, order_id=order_id, action=action, actor=actor, reason=reason, fulfilment=fulfilment,
                            fields=fields)

    order = commit_then_raise(work, OrderAlreadyPaid)
    if action == "fail":
        with session_scope() as s:
            pending = [r.id for r in payments.order_refunds(s, order_id=order_id) if r.status == "pending"]
        for refund_id in pending:
            try:
                send_refund_now(refund_id=refund_id)
            except RefundRefused:
                raise
            except Exception:  # noqa: BLE001 - recorded and committed: the retry job sends it
                log.exception("order %s: sending the refund of a failed order to WeChat Pay failed", order.order_no)
        with session_scope() as s:
            order = get_order(s, order_id=order_id)
    return order


def lease_act(*, order_id: int, action: str, actor: Actor, scope: Scope, override: bool = False) -> ServiceOrder:
    """``claim`` / ``release`` on an order ``scope`` may see, in its own unit of work."""
    if scope.actions is not None:  # a supplier ships; it does not claim
        raise Forbidden("当前账号不能认领订单", code="FORBIDDEN")
    with session_scope() as s:
        visible_order(s, order_id=order_id, scope=scope)
        if action == "claim":
            return claim(s, order_id=order_id, actor=actor)
        if action == "release":
            return release(s, order_id=order_id, actor=actor, override=override)
    raise InvalidInput(f"未知的订单操作：{action}", code="INVALID_ACTION")


@dataclasses.dataclass(frozen=True)
class BulkResult:
    order_id: int
    status: str | None
    error: DomainError | None


def bulk_act(*, order_ids: list[int], action: str, actor: Actor, scope: Scope, reason: str = "",
             fields: Mapping[str, Any] | None = None) -> list[BulkResult]:
    """The same staff action on several orders, each in its own unit of work (one refused — someone else's
    claim, a changed status — never holds up or undoes the others); a result per order, in order."""
    out: list[BulkResult] = []
    for oid in order_ids:
        try:
            if action in ("claim", "release"):
                order = lease_act(order_id=oid, action=action, actor=actor, scope=scope)
            else:
                order = act(order_id=oid, action=action, actor=actor, scope=scope, reason=reason, fields=fields)
            out.append(BulkResult(oid, order.status, None))
        except DomainError as exc:
            out.append(BulkResult(oid, None, exc))
    return out

