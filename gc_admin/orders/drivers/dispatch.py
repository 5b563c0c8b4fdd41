"""Dispatching a designated-driver order and settling its fee (the driver kind's staff actions).

Order life (statuses of :mod:`gc_admin.orders.service`; ``fulfilment`` is what the user sees):

| step | status | how |
|---|---|---|
| booked (free) | ``paid`` 待派单 | the mini-program; the 代驾 coupon is used on it |
| a driver is on it | ``accepted`` | ``assign_driver {driver_id}`` (own roster: the driver becomes busy), or ``hand_off {platform}`` (the platform's order is opened; its ``accepted`` callback names the driver) |
| the driver is at the pickup | ``arrived`` | ``arrive`` (own driver) / the platform's ``arrived`` callback |
| driving | ``in_fulfilment`` 服务中 | ``start`` / ``in_service`` |
| fee set | ``awaiting_payment`` or ``completed`` | ``set_fee {fee_fen}`` / ``completed`` with ``fee_fen``: the coupon covers up to its face (:func:`settlement`); the rest is a WeChat Pay JSAPI order the user pays in the mini-program; nothing left → completed at once |
| remainder paid | ``completed`` | the WeChat Pay notify (``pay_remainder``) |

The own driver is freed when the fee is set (the drive is over) or the order is cancelled. Staff do not
move a handed-off order's steps by hand (``PLATFORM_ORDER``): its platform does, by signed callbacks
(:mod:`gc_admin.orders.drivers.callbacks`).

**Cancellation** (documented rule; SPEC.md is silent): before a driver has arrived — ``paid`` (none
assigned) or ``accepted`` (assigned / handed off) — the user (mini-program) or staff cancel free of
charge: the driver is freed, the platform's order is cancelled there, the coupon goes back to the user.
Once the driver has arrived the order can no longer be cancelled (``DRIVER_ALREADY_ARRIVED``): the
dispatcher ends it with ``set_fee`` — the fare driven, or a waiting fee agreed with the user — which the
coupon covers first like any fee.

The platform's order is opened inside the action's transaction; the platform de-duplicates by our
order number (``out_order_no``), so a rolled-back hand-off retried later finds the same platform order.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, col, select

from gc_admin.core.clock import iso, utcnow
from gc_admin.core.errors import Conflict, InvalidInput, UpstreamError
from gc_admin.core.money import format_fen
from gc_admin.core.principal import Actor
from gc_admin.coupons.models import Coupon, Product
from gc_admin.coupons.purchase import service as purchase
from gc_admin.integrations.driver import setup as platform
from gc_admin.integrations.driver.client import DriverPlatformError
from gc_admin.integrations.wechatpay.client import WxPayError
from gc_admin.orders.drivers import service as roster
from gc_admin.orders.kinds.base import ActionOutcome
from gc_admin.orders.models import ServiceOrder
from gc_admin.orders import service as orders  # a module: orders.service imports the kinds, which import this
from gc_admin.payments import service as payments
from gc_admin.users.models import MpUser

log = logging.getLogger(__name__)

MAX_FEE_FEN = 200_000  # ¥2,000: more than any designated-driver fare; a typo guard
REMAINDER_PAY_DAYS = 7  # the user has this long to pay the remainder in the mini-program
ACTIONS = ("assign_driver", "hand_off", "arrive", "start", "set_fee", "cancel", "after_sales", "resolve")
ACTION_FIELDS = {"assign_driver": ("driver_id",), "hand_off": ("platform",), "set_fee": ("fee_fen",)}
PLATFORM_STEPS = ("pending", "accepted", "arrived", "in_service", "completed")  # the platform's order life


def _int(value: Any, label: str, *, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidInput(f"{label}需为 {lo}–{hi} 之间的整数", code="INVALID_FIELD")
    return value


def handed_off(order: ServiceOrder) -> bool:
    """Is a third-party platform serving this order (not cancelled by it)?"""
    f = order.fulfilment or {}
    return bool(f.get("platform")) and f.get("platform_status") != "cancelled"


# --- the fee ------------------------------------------------------------------------------------------

def settlement(session: Session, *, order: ServiceOrder, fee_fen: int, now: dt.datetime) -> tuple[dict[str, Any], int, int]:
    """``(pricing, covered, due)`` for a fee: the order's coupon covers ``min(face, fee)`` (a percent-off
    coupon its percentage of the fee), the user owes the rest. ``pricing`` replaces the booking's
    breakdown (list price 0) with the settled one, in the same shape (API.md "Order.pricing")."""
    covered, steps = 0, []
    if order.coupon_id:
        row = session.exec(select(Coupon, Product).join(Product, col(Product.id) == col(Coupon.product_id))
                           .where(col(Coupon.id) == order.coupon_id)).first()
        if row is not None:
            coupon, product = row
            want = fee_fen * product.percent_off // 100 if product.percent_off else (coupon.face_fen or product.face_fen)
            covered = min(max(want, 0), fee_fen)
            if covered:
                steps.append({"kind": "coupon", "label": "平台优惠券", "amount_fen": covered,
                              "funded_by": product.funded_by, "ref": f"coupon:{coupon.id}"})
    due = fee_fen - covered
    return {"list_fen": fee_fen, "steps": steps, "payable_fen": due, "settled_at": iso(now)}, covered, due


def settle(session: Session, *, order: ServiceOrder, fee_fen: int, now: dt.datetime) -> ActionOutcome:
    """What setting the fee stores: the settled pricing; with something due, a WeChat Pay order for it
    (``prepay_id``: the user pays in the mini-program) and ``awaiting_payment``, else ``completed``.
    The own driver is free again either way (the drive is over)."""
    assert order.id is not None
    pricing, covered, due = settlement(session, order=order, fee_fen=fee_fen, now=now)
    values: dict[str, Any] = {"list_fen": fee_fen, "payable_fen": due, "pricing": pricing}
    if due:
        user = session.get(MpUser, order.user_id)
        if user is None or not user.openid:
            raise Conflict("用户未使用微信登录，无法在小程序补付车费", code="WECHAT_LOGIN_REQUIRED")
        expires = now + dt.timedelta(days=REMAINDER_PAY_DAYS)
        try:
            values["prepay_id"] = payments.prepay(out_trade_no=order.order_no, description="代驾服务费",
                                                  amount_fen=due, payer_openid=user.openid, time_expire=expires,
                                                  attach=orders.order_ref(order.id))
        except WxPayError as exc:
            log.warning("driver order %s: jsapi prepay for the fee failed: %s", order.order_no, exc.code)
            raise UpstreamError("微信支付下单失败，费用未结算，请稍后再试", code="WXPAY_UNAVAILABLE") from exc
        values["pay_expires_at"] = expires
    roster.free_driver(session, order_id=order.id, now=now)
    note = f"车费 {format_fen(fee_fen)}" + (f"，优惠券抵扣 {format_fen(covered)}" if covered else "") + (
        f"，待用户补付 {format_fen(due)}" if due else "，无需补付")
    return ActionOutcome(fulfilment={"fee_fen": fee_fen, "covered_fen": covered, "due_fen": due},
                         target=None if due else "completed", values=values, note=note)


# --- the kind's staff actions ------------------------------------------------------------------------

def _assign(session: Session, *, order: ServiceOrder, fields: Mapping[str, Any], now: dt.datetime) -> ActionOutcome:
    assert order.id is not None
    if handed_off(order):
        raise Conflict("该订单已转第三方代驾平台，不能再指派自有司机", code="PLATFORM_ORDER")
    driver_id = _int(fields.get("driver_id"), "司机编号", lo=1, hi=2**31 - 1)
    current = (order.fulfilment or {}).get("driver_id")
    if current == driver_id:
        raise Conflict("该司机已在服务此订单", code="DRIVER_ALREADY_ASSIGNED")
    roster.free_driver(session, order_id=order.id, now=now)  # re-assigning before arrival: the first is free again
    d = roster.take_driver(session, driver_id=driver_id, order_id=order.id, now=now)
    return ActionOutcome(fulfilment={"dispatch": "own", "driver_id": d.id, "driver_name": d.name,
                                     "driver_phone": d.phone, "platform": None, "platform_order_id": None,
                                     "platform_status": None},
                         note=f"指派司机 {d.name}" + ("（改派）" if current else ""))


def _hand_off(order: ServiceOrder, *, fields: Mapping[str, Any]) -> ActionOutcome:
    code = platform.platform_code()
    if fields.get("platform") != code:
        raise InvalidInput(f"未知的代驾平台（可用：{code}）", code="UNKNOWN_PLATFORM")
    d = order.details or {}
    try:
        answer = platform.get_client().create_order(
            out_order_no=order.order_no, pickup=d.get("pickup") or {}, destination=d.get("destination") or {},
            at=str(d.get("at") or ""), contact_phone=str(d.get("contact_phone") or ""), plate_no=d.get("plate_no"),
            callback_url=platform.callback_url())
    except DriverPlatformError as exc:
        log.warning("driver order %s: hand-off to %s failed: %s (%s)", order.order_no, code, exc.code, exc)
        raise UpstreamError("第三方代驾平台暂时无法接单，请稍后再试或指派自有司机", code="DRIVER_PLATFORM_UNAVAILABLE") from exc
    return ActionOutcome(fulfilment={"dispatch": "platform", "platform": code,
                                     "platform_order_id": answer["platform_order_id"],
                                     "platform_status": str(answer.get("status") or "pending")},
                         note=f"转第三方代驾平台 {code}（平台单号 {answer['platform_order_id']}）")


def on_action(session: Session, *, order: ServiceOrder, action: str, fields: Mapping[str, Any], actor: Actor,
              now: dt.datetime | None = None) -> ActionOutcome | None:
    """The driver kind's ``on_action`` (see :class:`gc_admin.orders.kinds.base.Kind`)."""
    now = now or utcnow()
    if action in ("arrive", "start", "set_fee") and actor.type == "staff" and handed_off(order):
        raise Conflict("该订单由第三方代驾平台服务，状态以平台回传为准", code="PLATFORM_ORDER")
    if action == "assign_driver":
        return _assign(session, order=order, fields=fields, now=now)
    if action == "hand_off":
        return _hand_off(order, fields=fields)
    if action == "set_fee":
        return settle(session, order=order, fee_fen=_int(fields.get("fee_fen"), "车费（分）", lo=0, hi=MAX_FEE_FEN),
                      now=now)
    return None


# --- cancelling --------------------------------------------------------------------------------------

CANCELLABLE = ("paid", "accepted")  # before the driver has arrived


def cancel_paid(session: Session, *, order: ServiceOrder, actor: Actor, reason: str,
                now: dt.datetime | None = None) -> None:
    """Cancel a booked driver order before the driver has arrived (the rule in the module docstring), in the
    caller's transaction: free the own driver or cancel the platform's order, move it ``cancelled`` (one
    conditional UPDATE: of a cancel and an arrival at once, one wins), give the coupon back."""
    now = now or utcnow()
    assert order.id is not None
    if order.paid_fen > 0:  # money was received for it: only a refund undoes that
        raise Conflict("该订单已收款，不能直接取消，请走退款", code="ORDER_STATE_INVALID")
    if order.status not in CANCELLABLE:
        raise Conflict("司机已到达或正在服务，不能取消；如需结束请联系调度结算费用", code="DRIVER_ALREADY_ARRIVED")
    f = order.fulfilment or {}
    if handed_off(order) and f.get("platform_order_id"):  # before any write: no lock is held while it is asked
        try:
            platform.get_client().cancel_order(str(f["platform_order_id"]), reason="用户或调度取消")
        except DriverPlatformError as exc:
            if exc.code == "ORDER_IN_SERVICE":
                raise Conflict("代驾平台的司机已到达，不能取消", code="DRIVER_ALREADY_ARRIVED") from exc
            raise UpstreamError("第三方代驾平台暂时无法取消订单，请稍后再试", code="DRIVER_PLATFORM_UNAVAILABLE") from exc
    roster.free_driver(session, order_id=order.id, now=now)
    orders.transition(session, order_id=order.id, action="cancel_booking", actor=actor, reason=reason, now=now,
               values={"fulfilment": {**f, "platform_status": "cancelled"} if handed_off(order) else f})
    if order.coupon_id:
        purchase.return_used_coupon(session, coupon_id=order.coupon_id, ref=orders.order_ref(order.id), now=now)
