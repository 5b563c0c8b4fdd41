"""Service orders: creation, the state machine, cancellation and expiry, staff notices, queries.

Plain functions, session first, keyword-only after; they never commit (the caller's
:func:`gc_admin.db.session_scope` does) and raise typed ``DomainError``s with Chinese messages.

State machine (:data:`TRANSITIONS`, action -> from statuses -> to status, and who may do it):

| action | from | to | by |
|---|---|---|---|
| pay | created | paid | system (payment notify / query) |
| accept | paid | accepted | staff |
| fulfil | accepted | in_fulfilment | staff |
| complete | paid, accepted, in_fulfilment | completed | staff, system (a coupon purchase, once issued) |
| confirm | accepted, in_fulfilment | completed | user (confirms receipt) |
| cancel | created | cancelled | user, staff, system (unpaid timeout) |
| request_refund | paid … completed, after_sales | refund_requested | staff, system (a full refund) |
| refunded | refund_requested | refunded | system (the full refund succeeded) |
| refund_failed | refund_requested | after_sales | system |
| after_sales | paid, accepted, in_fulfilment, completed | after_sales | staff |
| paid_after_cancel | cancelled | after_sales | system (money arrived for a cancelled order) |
| resolve | after_sales | completed | staff |

:func:`transition` checks the table, then changes the row with ``UPDATE ... WHERE id = :id AND
status = <the status it read>``; a row count of 0 means someone else moved the order first and the
caller gets ``ORDER_STATE_CHANGED``. Each transition writes an ``order_event`` (history shown to
user and staff) and an audit row. Side effects (releasing reservations, issuing coupons) run only
in the transaction whose conditional UPDATE won, so they happen exactly once.

Unpaid orders: :func:`cancel_expired_unpaid` (run it every minute from any scheduler, on as many
workers as you like) picks created orders past ``pay_expires_at`` plus
:data:`EXPIRY_GRACE` (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so workers take disjoint orders; on
SQLite two workers may pick the same order — correctness never rested on that lock, see below —
and no write lock is taken up front, so WeChat calls do not hold up every other writer),
closes each at WeChat Pay (an order WeChat reports paid is applied instead of cancelled; other
errors are logged and tolerated), then cancels the rest with one conditional UPDATE and releases
exactly what that UPDATE returned.

Staff notices: a paid order gets one ``order_notice`` row in the payment's transaction;
:func:`send_order_notices` (called after the notify has been answered) sends the "new_order" SMS
to the clerks on duty — ``GC_ONDUTY_PHONES`` or, when empty, every enabled clerk account with a
phone. A failing SMS provider never fails a payment.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
from typing import Any

import polars as pl
from sqlalchemy import case, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from gc_admin.accounts.models import StaffUser
from gc_admin.audit.service import SYSTEM, Actor, record
from gc_admin.config import get_settings
from gc_admin.core.clock import SHANGHAI, fmt_local, iso, utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound, UpstreamError
from gc_admin.core.exports import EXPORT_LIMIT
from gc_admin.core.money import format_fen
from gc_admin.core.phone import mask_phone
from gc_admin.core.sorting import order_by
from gc_admin.coupons.purchase import service as purchase
from gc_admin.coupons.wallet import service as coupons
from gc_admin.coupons.models import Product
from gc_admin.core.bulk import dialect
from gc_admin.db import lock_for_write
from gc_admin.integrations.wechatpay.client import WxPayError
from gc_admin.orders import pricing
from gc_admin.orders.models import ORDER_STATUSES, ORDER_TYPES, OrderEvent, OrderNotice, ServiceOrder
from gc_admin.users.models import MpUser

log = logging.getLogger(__name__)

EXPIRY_GRACE = dt.timedelta(minutes=2)  # lets a notify for a payment made at the last second land first
PAYING_ACTOR = Actor("system", None, "微信支付")


@dataclasses.dataclass(frozen=True)
class Transition:
    sources: tuple[str, ...]
    target: str
    by: tuple[str, ...]  # actor types allowed
    label: str


TRANSITIONS: dict[str, Transition] = {
    "pay": Transition(("created",), "paid", ("system",), "支付"),
    "accept": Transition(("paid",), "accepted", ("staff",), "接单"),
    "fulfil": Transition(("accepted",), "in_fulfilment", ("staff",), "开始履约"),
    "complete": Transition(("paid", "accepted", "in_fulfilment"), "completed", ("staff", "system"), "完成"),
    "confirm": Transition(("accepted", "in_fulfilment"), "completed", ("user",), "确认收货"),
    "cancel": Transition(("created",), "cancelled", ("user", "staff", "system"), "取消"),
    "request_refund": Transition(("paid", "accepted", "in_fulfilment", "completed", "after_sales"),
                                 "refund_requested", ("staff", "system"), "申请退款"),
    "refunded": Transition(("refund_requested",), "refunded", ("system",), "退款完成"),
    "refund_failed": Transition(("refund_requested",), "after_sales", ("system",), "退款失败转售后"),
    "after_sales": Transition(("paid", "accepted", "in_fulfilment", "completed"), "after_sales", ("staff",),
                              "转售后"),
    "paid_after_cancel": Transition(("cancelled",), "after_sales", ("system",), "取消后收到支付"),
    "resolve": Transition(("after_sales",), "completed", ("staff",), "售后完结"),
}
STAFF_ACTIONS = ("accept", "fulfil", "complete", "cancel", "after_sales", "resolve")
REFUNDABLE = TRANSITIONS["request_refund"].sources + ("refund_requested",)
_STAMP = {"paid": "paid_at", "cancelled": "cancelled_at", "completed": "completed_at"}


def _order_ref(order_id: int) -> str:
    return f"order:{order_id}"


def _not_found() -> NotFound:
    return NotFound("订单不存在", code="ORDER_NOT_FOUND")


# --- the state machine ---------------------------------------------------------------------------

def _event(session: Session, *, order_id: int, action: str, from_status: str | None, to_status: str, actor: Actor,
           reason: str, now: dt.datetime) -> None:
    session.add(OrderEvent(order_id=order_id, action=action, from_status=from_status, to_status=to_status,
                           actor_type=actor.type, actor_id=None if actor.id is None else str(actor.id),
                           actor_name=actor.name[:64], reason=(reason or "")[:500], at=now))


def add_event(session: Session, *, order_id: int, action: str, actor: Actor, reason: str = "",
              now: dt.datetime | None = None) -> None:
    """A history line that is not a status change (a partial refund, a fulfilment note)."""
    status = session.exec(select(ServiceOrder.status).where(col(ServiceOrder.id) == order_id)).one()
    _event(session, order_id=order_id, action=action, from_status=status, to_status=status, actor=actor,
           reason=reason, now=now or utcnow())
    session.flush()


def transition(session: Session, *, order_id: int, action: str, actor: Actor, reason: str = "",
               now: dt.datetime | None = None, values: dict[str, Any] | None = None) -> str:
    """Move an order by ``action`` (see :data:`TRANSITIONS`); returns the status it left.

    Raises ``INVALID_ACTION`` / ``ACTION_NOT_ALLOWED`` / ``ORDER_STATE_CHANGED`` (Conflict) when the
    table or a concurrent change forbids it. ``values``: extra columns set in the same UPDATE."""
    now = now or utcnow()
    spec = TRANSITIONS.get(action)
    if spec is None:
        raise InvalidInput(f"未知的订单操作：{action}", code="INVALID_ACTION")
    if actor.type not in spec.by:
        raise Conflict(f"此操作（{spec.label}）不能由当前身份执行", code="ACTION_NOT_ALLOWED")
    current = session.exec(select(ServiceOrder.status).where(col(ServiceOrder.id) == order_id)).first()
    if current is None:
        raise _not_found()
    if current not in spec.sources:
        raise Conflict(f"订单当前状态为“{ORDER_STATUSES[current]}”，不能{spec.label}", code="ORDER_STATE_INVALID")
    vals: dict[str, Any] = {"status": spec.target, "updated_at": now, **(values or {})}
    if spec.target in _STAMP:
        vals.setdefault(_STAMP[spec.target], now)
    res = session.execute(
        update(ServiceOrder).where(col(ServiceOrder.id) == order_id, col(ServiceOrder.status) == current)
        .values(**vals).execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise Conflict("订单状态已变化，请刷新后重试", code="ORDER_STATE_CHANGED")
    _event(session, order_id=order_id, action=action, from_status=current, to_status=spec.target, actor=actor,
           reason=reason, now=now)
    record(session, actor=actor, action=f"order.{action}", target_type="service_order", target_id=order_id,
           summary=f"订单{spec.label}：{ORDER_STATUSES[current]} → {ORDER_STATUSES[spec.target]}"
                   + (f"（{reason}）" if reason else ""),
           before={"status": current}, after={"status": spec.target, **({"reason": reason} if reason else {})})
    _expire(session, order_id)
    return current


def _expire(session: Session, order_id: int) -> None:
    """Core UPDATEs bypass the identity map: make the next ``session.get`` reload the row."""
    obj = session.get(ServiceOrder, order_id)
    if obj is not None:
        session.expire(obj)


# --- creation ----------------------------------------------------------------------------------------

def new_order_no(now: dt.datetime) -> str:
    """``GC`` + the Shanghai date + 10 random digits (20 characters; WeChat's ``out_trade_no``)."""
    return "GC" + now.astimezone(SHANGHAI).strftime("%Y%m%d") + f"{secrets.randbelow(10**10):010d}"


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


def _client():
    from gc_admin.integrations.wechatpay.setup import get_client

    return get_client()


def _description(q: pricing.Quote) -> str:
    text_ = "、".join(f"{ln.name}×{ln.quantity}" for ln in q.lines)
    return text_[:127] or "滚财车主权益订单"


def user_actor(user: MpUser, ip: str | None = None) -> Actor:
    return Actor("user", str(user.id), mask_phone(user.phone) or f"用户#{user.id}", ip)


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
        points_used=q.points_used, stored_value_fen=q.stored_value_fen,
        pay_expires_at=now + dt.timedelta(minutes=get_settings().order_unpaid_minutes),
        created_at=now, updated_at=now,
    )
    session.add(order)
    session.flush()
    assert order.id is not None
    ref = _order_ref(order.id)
    _event(session, order_id=order.id, action="create", from_status=None, to_status="created", actor=actor,
           reason="", now=now)
    record(session, actor=actor, action="order.created", target_type="service_order", target_id=order.id,
           summary=f"下单 {order.order_no}（{ORDER_TYPES[q.type]}）：{_description(q)}，标价 {format_fen(q.list_fen)}，"
                   f"应付 {format_fen(q.payable_fen)}",
           after={"order_no": order.order_no, "type": q.type, "list_fen": q.list_fen, "payable_fen": q.payable_fen,
                  "steps": [s.to_dict() for s in q.steps]})
    if q.type == "coupon_purchase":
        product = session.get(Product, q.product_id)
        assert product is not None
        purchase.reserve_for_order(session, order_id=order.id, user_id=user.id, product=product,
                                   quantity=q.lines[0].quantity, now=now)
    for coupon_id in (q.coupon_id, q.exchange_coupon_id):
        if coupon_id:
            coupons.reserve(session, coupon_id=coupon_id, user=user, ref=ref, actor=actor, now=now)
    from gc_admin.payments import service as payments

    if q.points_used:
        payments.move_points(session, user_id=user.id, delta=-q.points_used, reason=f"订单 {order.order_no} 抵扣",
                             ref=f"{ref}:points", order_id=order.id, now=now)
    if q.stored_value_fen:
        payments.move_stored_value(session, user_id=user.id, delta_fen=-q.stored_value_fen,
                                   reason=f"订单 {order.order_no} 支付", ref=f"{ref}:stored_value", order_id=order.id,
                                   now=now)
    if q.payable_fen == 0:
        mark_paid(session, order_id=order.id, amount_fen=0, paid_at=now, now=now)
    else:
        try:
            order.prepay_id = _client().jsapi_prepay(
                out_trade_no=order.order_no, description=_description(q), amount_fen=q.payable_fen,
                payer_openid=user.openid or "", time_expire=order.pay_expires_at, attach=ref)
        except WxPayError as exc:
            log.warning("order %s: jsapi prepay failed: %s", order.order_no, exc)
            raise UpstreamError("微信支付下单失败，请稍后再试", code="WXPAY_UNAVAILABLE") from exc
        session.add(order)
        session.flush()
    _expire(session, order.id)
    out = session.get(ServiceOrder, order.id)
    assert out is not None
    return out


def payment_params(order: ServiceOrder, *, now: dt.datetime | None = None) -> dict[str, str] | None:
    """``wx.requestPayment`` parameters for an unpaid order still within its time (freshly signed), else ``None``."""
    if order.status != "created" or not order.prepay_id or (now or utcnow()) >= order.pay_expires_at:
        return None
    return _client().mini_program_pay_params(order.prepay_id)


# --- payment (called by gc_admin.payments) ----------------------------------------------------------

def mark_paid(session: Session, *, order_id: int, amount_fen: int, paid_at: dt.datetime,
              now: dt.datetime | None = None) -> bool:
    """created -> paid, once: consume the coupon used on it, issue bought coupons (and complete a
    coupon purchase), queue the staff notice. False (nothing done) if the order is not ``created``."""
    now = now or utcnow()
    res = session.execute(
        update(ServiceOrder).where(col(ServiceOrder.id) == order_id, col(ServiceOrder.status) == "created")
        .values(status="paid", paid_fen=amount_fen, paid_at=paid_at, updated_at=now)
        .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        return False
    _expire(session, order_id)
    order = session.get(ServiceOrder, order_id)
    assert order is not None
    _event(session, order_id=order_id, action="pay", from_status="created", to_status="paid", actor=PAYING_ACTOR,
           reason=f"实付 {format_fen(amount_fen)}", now=now)
    record(session, actor=PAYING_ACTOR, action="order.pay", target_type="service_order", target_id=order_id,
           summary=f"订单 {order.order_no} 支付成功，实付 {format_fen(amount_fen)}",
           before={"status": "created"}, after={"status": "paid", "paid_fen": amount_fen})
    ref = _order_ref(order_id)
    for coupon_id in (order.coupon_id, order.details.get("exchange_coupon_id")):
        if coupon_id:
            coupons.consume(session, coupon_id=int(coupon_id), ref=ref, actor=PAYING_ACTOR, now=now)
    if order.type == "coupon_purchase":
        user = session.get(MpUser, order.user_id)
        assert user is not None and user.phone
        issued = purchase.issue_for_order(session, order_id=order_id, user_id=order.user_id, phone=user.phone, now=now)
        record(session, actor=PAYING_ACTOR, action="coupon.issued", target_type="service_order", target_id=order_id,
               summary=f"购券订单 {order.order_no} 支付成功，向 {mask_phone(user.phone)} 发放 {len(issued)} 张券",
               after={"coupon_ids": issued, "source": "purchase"})
        transition(session, order_id=order_id, action="complete", actor=SYSTEM, reason=f"已发放 {len(issued)} 张券",
                   now=now)
    ins = (postgresql.insert if dialect(session) == "postgresql" else sqlite.insert)(OrderNotice)
    session.execute(ins.values(order_id=order_id, status="pending", created_at=now).on_conflict_do_nothing())
    session.flush()
    return True


# --- cancelling ---------------------------------------------------------------------------------------

def _close_at_provider(order_no: str) -> str:
    """Close the WeChat Pay order: ``closed``, ``paid`` (WeChat says ORDERPAID) or ``error`` (logged)."""
    try:
        _client().close_order(order_no)
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
    from gc_admin.payments import service as payments

    released = purchase.release_for_orders(session, order_ids=[r[0] for r in won], now=now)
    for oid, order_no, user_id, coupon_id, details, points, stored in won:
        ref = _order_ref(oid)
        for cid in (coupon_id, (details or {}).get("exchange_coupon_id")):
            if cid:
                coupons.release(session, coupon_id=int(cid), ref=ref, actor=actor, now=now)
        give_back_balances(session, order_id=oid, user_id=user_id, order_no=order_no, points=points,
                           stored_value_fen=stored, now=now, payments=payments)
        _event(session, order_id=oid, action="cancel", from_status="created", to_status="cancelled", actor=actor,
               reason=reason, now=now)
        record(session, actor=actor, action="order.cancel", target_type="service_order", target_id=oid,
               summary=f"订单 {order_no} 取消（{reason}）", before={"status": "created"},
               after={"status": "cancelled", "reason": reason})
        _expire(session, oid)
    log.info("cancelled %d orders, %d held coupons released", len(won), released)
    session.flush()
    return sorted(r[0] for r in won)


def give_back_balances(session: Session, *, order_id: int, user_id: int, order_no: str, points: int,
                       stored_value_fen: int, now: dt.datetime, payments: Any = None) -> None:
    """Return the points and stored value an order used (idempotent: one ref per order, whether the
    order was cancelled unpaid or fully refunded later)."""
    if payments is None:
        from gc_admin.payments import service as payments
    ref = _order_ref(order_id)
    if points:
        payments.move_points(session, user_id=user_id, delta=points, reason=f"订单 {order_no} 退回",
                             ref=f"{ref}:points:back", order_id=order_id, now=now)
    if stored_value_fen:
        payments.move_stored_value(session, user_id=user_id, delta_fen=stored_value_fen,
                                   reason=f"订单 {order_no} 退回", ref=f"{ref}:stored_value:back", order_id=order_id,
                                   now=now)


def cancel_order(session: Session, *, order_id: int, actor: Actor, reason: str, user: MpUser | None = None,
                 now: dt.datetime | None = None) -> ServiceOrder:
    """Cancel an unpaid order (user: their own; staff): close it at WeChat Pay, release what it held.

    If WeChat says it has just been paid, the payment is applied instead and ``ORDER_ALREADY_PAID``
    is raised (the applied payment is kept)."""
    now = now or utcnow()
    order = get_user_order(session, user=user, order_id=order_id) if user is not None else get_order(
        session, order_id=order_id)
    if order.status != "created":
        raise Conflict(f"订单当前状态为“{ORDER_STATUSES[order.status]}”，只能取消待支付的订单；已支付订单请联系客服退款",
                       code="ORDER_STATE_INVALID")
    reason = (reason or "").strip() or ("用户取消" if actor.type == "user" else "")
    if not reason:
        raise InvalidInput("请填写取消原因", code="REASON_REQUIRED")
    if order.prepay_id and _close_at_provider(order.order_no) == "paid":
        from gc_admin.payments import service as payments

        payments.sync_payment(session, order_id=order.id or 0, now=now)
        raise Conflict("订单已支付，无法取消", code="ORDER_ALREADY_PAID", keep_changes=True)
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
            from gc_admin.payments import service as payments

            payments.sync_payment(session, order_id=oid, now=now)
            paid_late.append(oid)
            continue
        errors += outcome == "error"
        to_cancel.append(oid)
    cancelled = _cancel_ids(session, ids=to_cancel, actor=SYSTEM,
                            reason=f"超过 {get_settings().order_unpaid_minutes} 分钟未支付，自动取消", now=now)
    return ExpiryResult(cancelled=cancelled, paid_late=paid_late, close_errors=errors)


# --- user and staff actions ---------------------------------------------------------------------------

def confirm_order(session: Session, *, user: MpUser, order_id: int, ip: str | None = None,
                  now: dt.datetime | None = None) -> ServiceOrder:
    """The user confirms receipt (accepted / in fulfilment -> completed)."""
    get_user_order(session, user=user, order_id=order_id)
    transition(session, order_id=order_id, action="confirm", actor=user_actor(user, ip), reason="用户确认收货", now=now)
    return get_order(session, order_id=order_id)


def staff_action(session: Session, *, order_id: int, action: str, actor: Actor, reason: str = "",
                 fulfilment: dict[str, Any] | None = None, now: dt.datetime | None = None) -> ServiceOrder:
    """A clerk / customer-service move (accept, fulfil, complete, cancel, after_sales, resolve);
    ``fulfilment`` (shop, phone, ETA, tracking no. …) is merged into the order's fulfilment info."""
    now = now or utcnow()
    if action not in STAFF_ACTIONS:
        raise InvalidInput(f"未知的订单操作：{action}", code="INVALID_ACTION")
    order = get_order(session, order_id=order_id)
    reason = (reason or "").strip()
    if action in ("cancel", "after_sales") and not reason:
        raise InvalidInput("请填写原因", code="REASON_REQUIRED")
    if action == "cancel":
        return cancel_order(session, order_id=order_id, actor=actor, reason=reason, now=now)
    values: dict[str, Any] = {}
    if fulfilment:
        values["fulfilment"] = {**(order.fulfilment or {}), **{str(k): v for k, v in fulfilment.items()}}
    transition(session, order_id=order_id, action=action, actor=actor, reason=reason, now=now, values=values)
    return get_order(session, order_id=order_id)


# --- staff notices --------------------------------------------------------------------------------------

def onduty_phones(session: Session) -> list[str]:
    """Who gets the "new order" SMS: ``GC_ONDUTY_PHONES``, else enabled clerks with a phone."""
    configured = get_settings().onduty_phones
    if configured:
        return list(dict.fromkeys(configured))
    rows = session.exec(select(StaffUser.phone).where(col(StaffUser.role) == "clerk", col(StaffUser.enabled).is_(True),
                                                      col(StaffUser.phone).is_not(None))
                        .order_by(col(StaffUser.id))).all()
    return list(dict.fromkeys(p for p in rows if p))


def send_order_notices(session: Session, *, limit: int = 20, now: dt.datetime | None = None) -> int:
    """Send pending "new paid order" SMS (claimed with a conditional UPDATE, so each once); returns
    how many notices were processed. Provider failures are recorded on the SMS row and logged."""
    from gc_admin.integrations.sms.service import send_sms

    now = now or utcnow()
    pending = session.exec(select(OrderNotice.order_id).where(col(OrderNotice.status) == "pending")
                           .order_by(col(OrderNotice.order_id)).limit(limit)).all()
    if not pending:
        return 0
    claimed = [r[0] for r in session.execute(
        update(OrderNotice).where(col(OrderNotice.order_id).in_(pending), col(OrderNotice.status) == "pending")
        .values(status="sent", processed_at=now).returning(OrderNotice.order_id)
        .execution_options(synchronize_session=False)).all()]
    phones = onduty_phones(session)
    for order_id in sorted(claimed):
        order = session.get(ServiceOrder, order_id)
        assert order is not None
        sent = failed = 0
        for phone in phones:
            try:
                msg = send_sms(session, phone=phone, template="new_order",
                               params={"order_no": order.order_no, "order_type": ORDER_TYPES[order.type]})
                ok = msg.status != "failed"
            except Exception:  # noqa: BLE001 - a notice must never break anything else
                log.exception("order %s: new_order SMS to a clerk failed", order.order_no)
                ok = False
            sent += ok
            failed += not ok
        if not phones:
            log.warning("order %s paid: no clerk on duty has a phone (set GC_ONDUTY_PHONES)", order.order_no)
        session.execute(update(OrderNotice).where(col(OrderNotice.order_id) == order_id)
                        .values(recipients=len(phones), sent=sent, failed=failed,
                                status="failed" if failed and not sent else "sent")
                        .execution_options(synchronize_session=False))
    session.flush()
    return len(claimed)


def unseen_paid_orders_count(session: Session, *, since: dt.datetime, types: tuple[str, ...] | None = None) -> int:
    """Orders paid after ``since`` still waiting for a clerk (status ``paid``): the dashboard badge.
    ``types``: only these order types (a dispatcher counts driver orders only)."""
    q = select(func.count()).select_from(ServiceOrder).where(col(ServiceOrder.status) == "paid",
                                                             col(ServiceOrder.paid_at) > since)
    if types is not None:
        q = q.where(col(ServiceOrder.type).in_(types))
    return int(session.exec(q).one())


# --- queries ----------------------------------------------------------------------------------------------

def get_order(session: Session, *, order_id: int) -> ServiceOrder:
    order = session.get(ServiceOrder, order_id, populate_existing=True)
    if order is None:
        raise _not_found()
    return order


def get_order_by_no(session: Session, *, order_no: str) -> ServiceOrder:
    order = session.exec(select(ServiceOrder).where(col(ServiceOrder.order_no) == order_no)).first()
    if order is None:
        raise _not_found()
    return order


def get_user_order(session: Session, *, user: MpUser | None, order_id: int) -> ServiceOrder:
    """One of the user's orders; someone else's id raises the same NotFound as a missing one."""
    if user is None or user.id is None:
        raise _not_found()
    order = session.exec(select(ServiceOrder).where(col(ServiceOrder.id) == order_id,
                                                    col(ServiceOrder.user_id) == user.id)
                         .execution_options(populate_existing=True)).first()
    if order is None:
        raise _not_found()
    return order


def order_history(session: Session, *, order_id: int) -> list[OrderEvent]:
    return list(session.exec(select(OrderEvent).where(col(OrderEvent.order_id) == order_id)
                             .order_by(col(OrderEvent.id))).all())


@dataclasses.dataclass(frozen=True)
class OrderRow:
    """A line of the staff order queue."""

    id: int
    order_no: str
    type: str
    status: str
    phone_masked: str
    summary: str
    list_fen: int
    payable_fen: int
    paid_fen: int
    refunded_fen: int
    created_at: dt.datetime
    paid_at: dt.datetime | None
    anomaly: str | None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(created_at=iso(self.created_at), paid_at=iso(self.paid_at), type_label=ORDER_TYPES[self.type],
                 status_label=ORDER_STATUSES[self.status])
        return d


@dataclasses.dataclass(frozen=True)
class OrderPage:
    rows: list[OrderRow]
    total: int


def _summary(details: dict[str, Any] | None) -> str:
    lines = (details or {}).get("lines") or []
    return "、".join(f"{ln.get('name', '')}×{ln.get('quantity', 1)}" for ln in lines)[:120]


# sortable columns of the staff queue (``sort="created_at"`` / ``"-created_at"``, see core.sorting)
ORDER_SORT_KEYS: dict[str, Any] = {
    "order_no": col(ServiceOrder.order_no), "type": col(ServiceOrder.type), "status": col(ServiceOrder.status),
    "payable_fen": col(ServiceOrder.payable_fen), "created_at": col(ServiceOrder.created_at),
    "paid_at": col(ServiceOrder.paid_at),
}
_WAITING = col(ServiceOrder.status) == "paid"
# the queue's default: paid orders nobody has accepted yet first, longest-waiting first; then the rest, newest first
QUEUE_ORDER = (
    case((_WAITING, 0), else_=1),
    case((_WAITING, col(ServiceOrder.paid_at)), else_=None).asc().nulls_last(),
    case((_WAITING, col(ServiceOrder.id)), else_=-col(ServiceOrder.id)),
)


def _orders_query(*, type: str | None, status: str | None, q: str | None, types: tuple[str, ...] | None,
                  since: dt.datetime | None, until: dt.datetime | None):
    if type is not None and type not in ORDER_TYPES:
        raise InvalidInput("未知的订单类型", code="INVALID_ORDER_TYPE")
    if status is not None and status not in ORDER_STATUSES:
        raise InvalidInput("未知的订单状态", code="INVALID_STATUS")
    stmt = select(ServiceOrder, MpUser.phone).join(MpUser, col(MpUser.id) == col(ServiceOrder.user_id))
    if type:
        stmt = stmt.where(col(ServiceOrder.type) == type)
    if types is not None:
        stmt = stmt.where(col(ServiceOrder.type).in_(types))
    if status:
        stmt = stmt.where(col(ServiceOrder.status) == status)
    if q:
        term = "".join(ch for ch in q.strip() if ch.isascii() and ch.isalnum())[:32]
        if term:
            stmt = stmt.where(or_(col(ServiceOrder.order_no) == term.upper(), col(MpUser.phone) == term))
    if since:
        stmt = stmt.where(col(ServiceOrder.created_at) >= since)
    if until:
        stmt = stmt.where(col(ServiceOrder.created_at) < until)
    return stmt


def _order_rows(rows) -> list[OrderRow]:
    return [OrderRow(o.id or 0, o.order_no, o.type, o.status, mask_phone(phone), _summary(o.details), o.list_fen,
                     o.payable_fen, o.paid_fen, o.refunded_fen, o.created_at, o.paid_at, o.anomaly)
            for o, phone in rows]


def list_orders(session: Session, *, type: str | None = None, status: str | None = None, q: str | None = None,
                types: tuple[str, ...] | None = None, since: dt.datetime | None = None,
                until: dt.datetime | None = None, sort: str | None = None, offset: int = 0,
                limit: int = 50) -> OrderPage:
    """The staff queue, filtered, with the total. ``q``: an order number or a phone; ``types``: restrict to
    these types (a dispatcher sees driver orders only). Default order: paid orders waiting to be accepted
    first (longest-waiting first), then the rest newest first; ``sort``: one of :data:`ORDER_SORT_KEYS`."""
    stmt = _orders_query(type=type, status=status, q=q, types=types, since=since, until=until)
    order = order_by(sort, ORDER_SORT_KEYS, tie=col(ServiceOrder.id), default=QUEUE_ORDER)
    total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    rows = session.exec(stmt.order_by(*order).offset(max(offset, 0)).limit(min(max(limit, 1), 200))).all()
    return OrderPage(_order_rows(rows), int(total))


def orders_frame(session: Session, *, type: str | None = None, status: str | None = None, q: str | None = None,
                 types: tuple[str, ...] | None = None, since: dt.datetime | None = None,
                 until: dt.datetime | None = None, sort: str | None = None) -> pl.DataFrame:
    """Every order matching the filters (up to the export limit), in the list's order, for the Excel export:
    Chinese headers, phones masked, money as integer fen plus ``¥`` text."""
    stmt = _orders_query(type=type, status=status, q=q, types=types, since=since, until=until)
    order = order_by(sort, ORDER_SORT_KEYS, tie=col(ServiceOrder.id), default=QUEUE_ORDER)
    rows = _order_rows(session.exec(stmt.order_by(*order).limit(EXPORT_LIMIT)).all())
    fen = lambda values: pl.Series(values, dtype=pl.Int64)  # noqa: E731
    return pl.DataFrame({
        "订单号": [r.order_no for r in rows],
        "类型": [ORDER_TYPES.get(r.type, r.type) for r in rows],
        "状态": [ORDER_STATUSES.get(r.status, r.status) for r in rows],
        "用户手机号": [r.phone_masked for r in rows],
        "商品": [r.summary for r in rows],
        "标价（分）": fen([r.list_fen for r in rows]),
        "应付（分）": fen([r.payable_fen for r in rows]),
        "应付": [format_fen(r.payable_fen) for r in rows],
        "已付（分）": fen([r.paid_fen for r in rows]),
        "已退（分）": fen([r.refunded_fen for r in rows]),
        "下单时间": [fmt_local(r.created_at) for r in rows],
        "支付时间": [fmt_local(r.paid_at) for r in rows],
        "异常": [r.anomaly or "" for r in rows],
    })


def list_user_orders(session: Session, *, user: MpUser, status: str | None = None, offset: int = 0,
                     limit: int = 50) -> list[ServiceOrder]:
    """The user's orders, newest first."""
    if status is not None and status not in ORDER_STATUSES:
        raise InvalidInput("未知的订单状态", code="INVALID_STATUS")
    stmt = select(ServiceOrder).where(col(ServiceOrder.user_id) == user.id)
    if status:
        stmt = stmt.where(col(ServiceOrder.status) == status)
    return list(session.exec(stmt.order_by(col(ServiceOrder.id).desc()).offset(max(offset, 0))
                             .limit(min(max(limit, 1), 100))).all())


_BY_FOR_USER = {"user": "您", "staff": "平台客服", "system": "系统", "partner": "合作方"}


def order_view(session: Session, *, order: ServiceOrder, for_staff: bool = False) -> dict[str, Any]:
    """API.md "Order": lines, pricing, history, fulfilment, payment and refunds, bought coupons."""
    from gc_admin.payments import service as payments

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
    if order.type == "coupon_purchase":
        out["coupon_ids"] = purchase.order_coupon_ids(session, order_id=order.id)
    if for_staff:
        user = session.get(MpUser, order.user_id)
        out.update(user_id=order.user_id, phone_masked=mask_phone(user.phone if user else None), anomaly=order.anomaly,
                   payment=payments.order_payment(session, order_id=order.id),
                   refundable_fen=payments.refundable_fen(session, order=order))
    return out
