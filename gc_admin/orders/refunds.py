"""Refunding an order's WeChat payment, and giving back what a cancelled or refunded order used.

Written once, called by the staff API, the 订单看板, the jobs and the order flows alike. Most take the
caller's session (one unit of work, no commit); :func:`refund`, :func:`send_refund_now` and
:func:`sync_refund_now` own their units of work and commit what must stay on record before they raise.

**Refunds** (:func:`refund_order` then :func:`send_refund`; :func:`refund` is the whole sequence):
the refund is recorded first — a conditional ``UPDATE service_order SET refunded_fen = refunded_fen
+ :a WHERE refunded_fen + :a <= paid_fen`` (never more than paid, whatever runs in parallel) and a
``refund`` row with a fixed ``out_refund_no`` (one in flight per order) — so concurrent refund
requests for one order refund once. Only then, in a second unit of work, is WeChat asked; a retry
(:func:`send_refund` again, the job :func:`retry_pending_refunds`) reuses the same ``out_refund_no``
and WeChat de-duplicates. The result (sync answer, refund notify or :func:`sync_refund`) is applied
once by a conditional UPDATE on the refund's status: success writes the (negative) ledger entry,
revokes the bought coupons it covered and, when the order is fully refunded, returns the coupon used
on it (if still valid), its points and stored value; failure undoes the reservation. For a coupon
purchase whose coupons were delivered, refunds go per coupon (its kind's ``refund_values``);
revealed (used) codes are not refundable.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col

from gc_admin.audit.service import record
from gc_admin.core import tasks
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound, UpstreamError
from gc_admin.core.money import format_fen
from gc_admin.core.principal import SYSTEM, Actor
from gc_admin.coupons.purchase import service as purchase
from gc_admin.db import commit_then_raise, session_scope
from gc_admin.integrations.wechatpay.client import WxPayError
from gc_admin.orders.aftersales import service as aftersales
from gc_admin.orders.kinds import kind_of
from gc_admin.orders.models import ORDER_STATUSES, ServiceOrder
from gc_admin.orders.service import (
    PAYING_ACTOR,
    REFUNDABLE,
    Scope,
    add_event,
    get_order,
    mark_stale,
    order_ref,
    transition,
    visible_order,
)
from gc_admin.payments import balances, ledger
from gc_admin.payments import service as payments
from gc_admin.payments.models import Refund
from gc_admin.payments.service import DEFINITIVE_REFUSAL_STATUSES, PROVIDER, NotifyResult, Rejected

log = logging.getLogger(__name__)


class RefundRefused(UpstreamError):
    """WeChat Pay definitively refused a refund: it is recorded as failed and its reservation undone.
    That outcome is in the session: commit it (see :func:`send_refund_now`), then let the error through."""

    def __init__(self, code: str) -> None:
        super().__init__(f"微信支付拒绝了退款（{code}），退款未执行，已退回可退金额", code="REFUND_REFUSED")


class RefundNotSent(Exception):
    """:func:`refund` recorded the refund (committed) but asking WeChat Pay failed unexpectedly: it stays
    pending and the retry job sends it with the same ``out_refund_no``. ``error``: what went wrong."""

    def __init__(self, refund: Refund, error: BaseException) -> None:
        super().__init__(f"refund {refund.out_refund_no} recorded, not sent: {error!r}")
        self.refund, self.error = refund, error


def give_back_balances(session: Session, *, order_id: int, user_id: int, order_no: str, points: int,
                       stored_value_fen: int, now: dt.datetime) -> None:
    """Return the points and stored value an order used (idempotent: one ref per order, whether the
    order was cancelled unpaid or fully refunded later)."""
    ref = order_ref(order_id)
    if points:
        balances.move_points(session, user_id=user_id, delta=points, reason=f"订单 {order_no} 退回",
                             ref=f"{ref}:points:back", order_id=order_id, now=now)
    if stored_value_fen:
        balances.move_stored_value(session, user_id=user_id, delta_fen=stored_value_fen,
                                   reason=f"订单 {order_no} 退回", ref=f"{ref}:stored_value:back", order_id=order_id,
                                   now=now)


def refund_values(session: Session, *, order: ServiceOrder, now: dt.datetime | None = None) -> list[int] | None:
    """For an order refunded per unit (a coupon purchase with delivered coupons): the refundable amounts
    for 1, 2, … units (``None`` when refunds are not per unit: any amount up to what is left)."""
    return kind_of(order.type).refund_values(session, order=order, now=now)


def refundable_fen(session: Session, *, order: ServiceOrder, now: dt.datetime | None = None) -> int:
    """The most one refund of ``order`` may be now — the figure every view shows as 可退 (staff API
    ``refundable_fen``, 订单看板 detail and refund dialog default): paid − refunded (refunds in flight
    included), and for a coupon purchase with delivered coupons only the value of its coupons still
    unused (:func:`refund_values`); 0 when the order's status allows no refund."""
    if order.status not in REFUNDABLE or order.paid_fen <= 0 or order.source:
        return 0
    left = max(order.paid_fen - order.refunded_fen, 0)
    values = refund_values(session, order=order, now=now)
    if values is None:
        return left
    return min(values[-1], left) if values else 0


def check_refund(session: Session, *, order: ServiceOrder, amount_fen: int, now: dt.datetime | None = None) -> int:
    """Would :func:`refund_order` accept ``amount_fen`` for ``order`` now? Returns how many bought coupons
    it takes back (0 when refunds are not per coupon); raises the same errors refund_order raises, so
    the dashboard's form and the API say the same thing (``ORDER_STATE_INVALID``, ``NOTHING_TO_REFUND``,
    ``REFUND_EXCEEDS_PAID``, ``COUPONS_USED``, ``REFUND_PER_COUPON``)."""
    if order.status not in REFUNDABLE:
        raise Conflict(f"订单当前状态为“{ORDER_STATUSES[order.status]}”，不能退款", code="ORDER_STATE_INVALID")
    if order.source:  # an imported channel order: the channel has the money
        raise Conflict(f"该订单自渠道 {order.source} 导入，款项由渠道收取，请在原渠道办理退款", code="CHANNEL_ORDER")
    if order.paid_fen <= 0:
        raise Conflict("该订单没有可退的微信支付金额", code="NOTHING_TO_REFUND")
    if amount_fen > order.paid_fen - order.refunded_fen:
        raise Conflict(f"退款金额超过可退金额 {format_fen(refundable_fen(session, order=order, now=now))}",
                       code="REFUND_EXCEEDS_PAID")
    values = refund_values(session, order=order, now=now)
    if values is None:
        return 0
    if not values:
        raise Conflict("该订单购买的券已全部使用或已退，不能再退款", code="COUPONS_USED")
    if amount_fen not in values:
        shown = "、".join(f"{k} 张 {format_fen(v)}" for k, v in enumerate(values, 1))
        raise InvalidInput(f"购券订单按张退款（已使用的券不可退），可退：{shown}", code="REFUND_PER_COUPON")
    return values.index(amount_fen) + 1


def refund_order(session: Session, *, order_id: int, amount_fen: int, reason: str, actor: Actor,
                 now: dt.datetime | None = None) -> Refund:
    """Record a staff refund (full or partial) of an order's WeChat payment; :func:`send_refund` then
    asks WeChat. Never more than paid − refunded; one refund in flight per order (see module docstring)."""
    now = now or utcnow()
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
        raise InvalidInput("退款金额需为大于 0 的整数（分）", code="INVALID_AMOUNT")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("请填写退款原因", code="REASON_REQUIRED")
    if len(reason) > 200:
        raise InvalidInput("退款原因不超过 200 个字", code="REASON_TOO_LONG")
    order = get_order(session, order_id=order_id)
    assert order.id is not None
    coupons_back = check_refund(session, order=order, amount_fen=amount_fen, now=now)
    won = session.execute(
        update(ServiceOrder).where(col(ServiceOrder.id) == order.id, col(ServiceOrder.status).in_(REFUNDABLE),
                                   col(ServiceOrder.refunded_fen) + amount_fen <= col(ServiceOrder.paid_fen))
        .values(refunded_fen=col(ServiceOrder.refunded_fen) + amount_fen, updated_at=now)
        .returning(ServiceOrder.refunded_fen, ServiceOrder.paid_fen)
        .execution_options(synchronize_session=False)).first()
    if won is None:
        raise Conflict("退款金额超过可退金额或订单状态已变化，请刷新后重试", code="REFUND_EXCEEDS_PAID")
    full = int(won[0]) == int(won[1])
    refund = payments.record_refund(session, order_id=order.id, order_no=order.order_no, amount_fen=amount_fen,
                                    coupons=coupons_back, full=full, reason=reason, actor=actor, now=now)
    if refund is None:
        raise Conflict("该订单有一笔退款正在处理中，请稍后再试", code="REFUND_IN_PROGRESS")
    out_refund_no = refund.out_refund_no
    ref = f"refund:{out_refund_no}"
    if coupons_back:
        purchase.hold_for_refund(session, order_id=order.id, count=coupons_back, ref=ref, now=now)
    text_ = f"退款 {format_fen(amount_fen)}" + (f"（收回 {coupons_back} 张券）" if coupons_back else "") + f"：{reason}"
    if full:
        # refunds are money moves guarded by refunded_fen, not fulfilment: customer service refunds an order
        # a clerk holds (after-sales) without waiting for the lease
        transition(session, order_id=order.id, action="request_refund", actor=actor, reason=text_, now=now,
                   lease=False)
    else:
        add_event(session, order_id=order.id, action="refund_partial", actor=actor, reason=text_, now=now)
    record(session, actor=actor, action="refund.requested", target_type="service_order", target_id=order.id,
           summary=f"订单 {order.order_no} 申请{'全额' if full else '部分'}{text_}",
           after={"out_refund_no": out_refund_no, "amount_fen": amount_fen, "coupons": coupons_back, "full": full})
    return payments.get_refund(session, refund_id=refund.id or 0)


def send_refund(session: Session, *, refund_id: int, now: dt.datetime | None = None) -> Refund:
    """Ask WeChat Pay for a recorded refund (first time or retry, same ``out_refund_no``) and apply
    the answer. A definitive refusal fails the refund and raises :class:`RefundRefused` with that
    outcome in the session (commit it: :func:`send_refund_now`); a transport / server error leaves it
    pending for a retry."""
    now = now or utcnow()
    refund = payments.get_refund(session, refund_id=refund_id)
    if refund.status == "processing":  # WeChat has it already: ask for its state instead
        return sync_refund(session, refund_id=refund_id, now=now)
    if refund.status != "pending":
        return refund
    order = get_order(session, order_id=refund.order_id)
    try:
        data = payments.submit_refund(session, refund=refund, out_trade_no=order.order_no, total_fen=order.paid_fen,
                                      now=now)
    except WxPayError as exc:
        if exc.status in DEFINITIVE_REFUSAL_STATUSES:
            _refund_failed(session, refund_id=refund_id, provider_status=exc.code[:16],
                           error=f"{exc.code}: {exc.wx_message}"[:200], now=now)
            raise RefundRefused(exc.code) from exc
        payments.note_refund_error(session, refund_id=refund_id, error=f"{exc.code}: {exc}")
        log.warning("refund %s: WeChat Pay unreachable (%s); left pending for a retry", refund.out_refund_no, exc.code)
        return payments.get_refund(session, refund_id=refund_id)
    _apply_refund_state(session, refund_id=refund_id, data=data, now=now)
    return payments.get_refund(session, refund_id=refund_id)


def _apply_refund_state(session: Session, *, refund_id: int, data: Mapping[str, Any], now: dt.datetime) -> str:
    status = str(data.get("status") or data.get("refund_status") or "")
    wx_refund_id = str(data.get("refund_id") or "")[:64] or None
    if status == "SUCCESS":
        done = _refund_succeeded(session, refund_id=refund_id, wx_refund_id=wx_refund_id,
                                 success_time=payments.parse_time(data.get("success_time"), now), now=now)
        return "applied" if done else "replay"
    if status in ("ABNORMAL", "CLOSED"):
        done = _refund_failed(session, refund_id=refund_id, provider_status=status, error=f"退款{status}", now=now,
                              wx_refund_id=wx_refund_id)
        return "applied" if done else "replay"
    payments.mark_refund_processing(session, refund_id=refund_id, provider_status=status, wx_refund_id=wx_refund_id,
                                    now=now)
    return "applied"


def _refund_succeeded(session: Session, *, refund_id: int, wx_refund_id: str | None, success_time: dt.datetime,
                      now: dt.datetime) -> bool:
    refund = payments.settle_refund_succeeded(session, refund_id=refund_id, wx_refund_id=wx_refund_id,
                                              success_time=success_time, now=now)
    if refund is None:
        return False
    order = get_order(session, order_id=refund.order_id)
    assert order.id is not None
    ref = f"refund:{refund.out_refund_no}"
    ledger.add_ledger(session, kind="refund", amount_fen=-refund.amount_fen, ref=ref, provider=PROVIDER,
                      provider_ref=wx_refund_id, order_id=order.id, user_id=order.user_id, occurred_at=success_time,
                      note=f"订单 {order.order_no} 退款：{refund.reason}")
    revoked = purchase.revoke_held(session, order_id=order.id, ref=ref, now=now)
    returned: list[int] = []
    if refund.full:
        transition(session, order_id=order.id, action="refunded", actor=SYSTEM,
                   reason=f"已退款 {format_fen(order.refunded_fen)}", now=now)
        kind_of(order.type).on_refunded(session, order=order)  # e.g. unshipped goods: their stock, once
        ref_of_order = order_ref(order.id)
        for cid in (order.coupon_id, (order.details or {}).get("exchange_coupon_id")):
            if cid and purchase.return_used_coupon(session, coupon_id=int(cid), ref=ref_of_order, now=now):
                returned.append(int(cid))
        give_back_balances(session, order_id=order.id, user_id=order.user_id, order_no=order.order_no,
                           points=order.points_used, stored_value_fen=order.stored_value_fen, now=now)
        aftersales.close_case(session, order_id=order.id, outcome="refunded", note=refund.reason, actor=SYSTEM,
                              now=now)
    else:
        add_event(session, order_id=order.id, action="refund_succeeded", actor=SYSTEM,
                  reason=f"部分退款 {format_fen(refund.amount_fen)} 已到账", now=now)
    record(session, actor=PAYING_ACTOR, action="refund.succeeded", target_type="service_order",
           target_id=order.id,
           summary=f"订单 {order.order_no} 退款 {format_fen(refund.amount_fen)} 成功"
                   + (f"，收回 {len(revoked)} 张券" if revoked else "")
                   + (f"，退回 {len(returned)} 张已用优惠券" if returned else ""),
           after={"out_refund_no": refund.out_refund_no, "refund_id": wx_refund_id, "revoked_coupons": revoked,
                  "returned_coupons": returned})
    return True


def _refund_failed(session: Session, *, refund_id: int, provider_status: str, error: str, now: dt.datetime,
                   wx_refund_id: str | None = None) -> bool:
    refund = payments.settle_refund_failed(session, refund_id=refund_id, provider_status=provider_status, error=error,
                                           now=now, wx_refund_id=wx_refund_id)
    if refund is None:
        return False
    session.execute(update(ServiceOrder).where(col(ServiceOrder.id) == refund.order_id,
                                               col(ServiceOrder.refunded_fen) >= refund.amount_fen)
                    .values(refunded_fen=col(ServiceOrder.refunded_fen) - refund.amount_fen, updated_at=now)
                    .execution_options(synchronize_session=False))
    mark_stale(session, refund.order_id)
    order = get_order(session, order_id=refund.order_id)
    back = purchase.unhold(session, order_id=refund.order_id, ref=f"refund:{refund.out_refund_no}", now=now)
    text_ = f"退款 {format_fen(refund.amount_fen)} 失败（{error}）"
    if refund.full and order.status == "refund_requested":
        transition(session, order_id=refund.order_id, action="refund_failed", actor=SYSTEM, reason=text_, now=now)
    else:
        add_event(session, order_id=refund.order_id, action="refund_failed", actor=SYSTEM, reason=text_, now=now)
    record(session, actor=PAYING_ACTOR, action="refund.failed", target_type="service_order",
           target_id=refund.order_id, summary=f"订单 {order.order_no} {text_}",
           after={"out_refund_no": refund.out_refund_no, "coupons_back": back})
    return True


def sync_refund(session: Session, *, refund_id: int, now: dt.datetime | None = None) -> Refund:
    """Ask WeChat Pay about a refund still in flight and apply its state (one that never reached WeChat
    is sent now: :func:`send_refund`, with its :class:`RefundRefused`)."""
    now = now or utcnow()
    refund = payments.get_refund(session, refund_id=refund_id)
    if refund.status in ("pending", "processing"):
        try:
            data = payments.query_refund(refund)
        except WxPayError as exc:
            if exc.status == 404 and refund.status == "pending":
                return send_refund(session, refund_id=refund_id, now=now)  # never reached WeChat: send it now
            log.warning("refund %s: query failed: %s", refund.out_refund_no, exc.code)
            return refund
        _apply_refund_state(session, refund_id=refund_id, data=data, now=now)
    return payments.get_refund(session, refund_id=refund_id)


def retry_pending_refunds(session: Session, *, older_than: dt.timedelta = dt.timedelta(minutes=1),
                          now: dt.datetime | None = None, limit: int = 50) -> int:
    """Job: settle refunds left in flight — re-send those WeChat never accepted (same ``out_refund_no``),
    query those still processing (a lost refund notify); returns how many were looked at. A refusal is
    recorded as failed in this unit of work, which the job commits."""
    now = now or utcnow()
    ids = payments.refunds_in_flight(session, older_than=older_than, now=now, limit=limit)
    for rid in ids:
        try:
            send_refund(session, refund_id=rid, now=now)
        except RefundRefused:
            pass  # recorded as failed by send_refund
    return len(ids)


def handle_refund_notify(session: Session, *, headers: Mapping[str, str], body: bytes,
                         now: dt.datetime | None = None) -> NotifyResult:
    """``POST /pay/wechat/refund-notify``: verify, match the refund, apply its final state once."""
    now = now or utcnow()
    event = payments.read_notify(session, kind="refund", headers=headers, body=body, now=now)
    if isinstance(event, NotifyResult):
        return event
    resource = event["resource"]
    try:
        if not str(event["event_type"]).startswith("REFUND."):
            raise Rejected(f"event_type {event['event_type']} on the refund route")
        payments.check_merchant(resource)
        out_refund_no = resource.get("out_refund_no")
        refund = payments.refund_by_no(session, out_refund_no=out_refund_no) if isinstance(
            out_refund_no, str) else None
        if refund is None:
            raise Rejected(f"unknown out_refund_no {out_refund_no}", 404)
        order = get_order(session, order_id=refund.order_id)
        amount = resource.get("amount") if isinstance(resource.get("amount"), dict) else {}
        if resource.get("out_trade_no") != order.order_no or amount.get("refund") != refund.amount_fen:
            raise Rejected("out_trade_no / amount.refund do not match the refund")
    except Rejected as rej:
        payments.log_notify(session, kind="refund", outcome="rejected", reason=rej.reason, body=body, now=now,
                            event=event, resource=resource)
        return NotifyResult(rej.status, "rejected", {404: "退款单不存在"}.get(rej.status, "通知内容与退款单不符"))
    outcome = _apply_refund_state(session, refund_id=refund.id or 0, data=resource, now=now)
    payments.log_notify(session, kind="refund", outcome=outcome, reason=str(resource.get("refund_status") or ""),
                        body=body, now=now, event=event, resource=resource)
    return NotifyResult(204, outcome, "", refund.order_id)


def send_refund_now(*, refund_id: int) -> Refund:
    """:func:`send_refund` in its own unit of work: a refusal is committed (refund failed, reservation
    undone), then :class:`RefundRefused` is raised."""
    return commit_then_raise(lambda s: send_refund(s, refund_id=refund_id), RefundRefused)


def sync_refund_now(*, refund_id: int, order_id: int | None = None, scope: Scope | None = None) -> Refund:
    """:func:`sync_refund` in its own unit of work (a refusal committed, then raised). With ``order_id``:
    only a refund of that order (and, with ``scope``, one the caller may see)."""
    def work(s: Session) -> Refund:
        if order_id is not None:
            if scope is not None:
                visible_order(s, order_id=order_id, scope=scope)
            if payments.get_refund(s, refund_id=refund_id).order_id != order_id:
                raise NotFound("退款不存在", code="REFUND_NOT_FOUND")
        return sync_refund(s, refund_id=refund_id)

    return commit_then_raise(work, RefundRefused)


def refund(*, order_id: int, amount_fen: int, reason: str, actor: Actor, scope: Scope | None = None) -> Refund:
    """The refund sequence, written once: record it (:func:`refund_order`, on an order ``scope`` may see)
    and commit — the refundable remainder is reserved and the refund number on record — then, in a
    second unit of work, ask WeChat Pay (:func:`send_refund_now`).

    Raises what recording raises (nothing recorded); :class:`RefundRefused` (committed as failed);
    :class:`RefundNotSent` when sending failed otherwise (the refund stays pending: the retry job sends it)."""
    def record_it(s: Session) -> Refund:
        if scope is not None:
            visible_order(s, order_id=order_id, scope=scope)
        return refund_order(s, order_id=order_id, amount_fen=amount_fen, reason=reason, actor=actor)

    with session_scope() as s:
        recorded = record_it(s)
    try:
        sent = send_refund_now(refund_id=recorded.id or 0)
    except RefundRefused:
        raise
    except Exception as exc:
        log.exception("refund %s: sending to WeChat Pay failed", recorded.out_refund_no)
        _retry_refund(recorded)
        raise RefundNotSent(recorded, exc) from exc
    if sent.status == "pending":  # WeChat Pay unreachable: the task queue sends it again, with backoff
        _retry_refund(sent)
    return sent


def _retry_refund(refund: Refund) -> None:
    """Queue ``payments.refund_send`` for a refund WeChat Pay has not taken (one job per refund number);
    should the queue be down too, the periodic ``payments.refunds`` sweep finds the pending refund."""
    try:
        tasks.defer("payments.refund_send", key=f"refund:{refund.out_refund_no}", delay_seconds=5,
                    refund_id=refund.id)
    except Exception:  # noqa: BLE001 - the refund is on record; the sweep sends it
        log.exception("refund %s: queueing the retry failed", refund.out_refund_no)
