"""Service orders: the state machine, staff notices, who sees which orders, queries.

Plain functions, session first, keyword-only after; they never commit (the caller's
:func:`gc_admin.db.session_scope` does) and raise typed ``DomainError``s with Chinese messages.
What crosses into other features — creating an order with its holds and payment, cancelling it,
applying a payment to it — is in :mod:`gc_admin.orders.flows`; refunding it in :mod:`gc_admin.orders.refunds`.

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

Staff notices: a paid order gets one ``order_notice`` row in the payment's transaction;
:func:`send_order_notices` (called after the notify has been answered) sends the "new_order" SMS
to the clerks on duty — ``GC_ONDUTY_PHONES`` or, when empty, every enabled clerk account with a
phone. A failing SMS provider never fails a payment.

Who sees what (:func:`scope_for`, the one rule the staff API and the 订单看板 both apply): admin,
manager, clerk, service: every order; a dispatcher: driver (代驾) orders only; a supplier: nothing
yet — orders do not record their supplier until goods (实物) fulfilment exists, so the page says so
instead of showing everyone's orders. Refunds: admin, manager, service (customer service:
after-sales) and clerk (failed top-ups) — the roles that deal with the user about money.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
from typing import Any

import polars as pl
from sqlalchemy import case, func, or_, update
from sqlalchemy import delete as sql_delete
from sqlmodel import Session, col, select

from gc_admin.accounts.models import StaffUser
from gc_admin.audit.service import record
from gc_admin.config import get_settings
from gc_admin.core.bulk import dialect
from gc_admin.core.clock import SHANGHAI, fmt_local, iso, utcnow
from gc_admin.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from gc_admin.core.export_jobs import Filters, register_export
from gc_admin.core.exports import EXPORT_LIMIT
from gc_admin.core.money import format_fen
from gc_admin.core.phone import mask_phone
from gc_admin.core.principal import Actor
from gc_admin.core.sorting import order_by
from gc_admin.db import Page, lock_for_write, paginate
from gc_admin.orders.kinds.base import DEFAULT_ACTIONS
from gc_admin.orders.models import ORDER_STATUSES, ORDER_TYPES, OrderChange, OrderEvent, OrderNotice, ServiceOrder
from gc_admin.payments import service as payments
from gc_admin.users.models import MpUser

log = logging.getLogger(__name__)

PAYING_ACTOR = Actor("system", None, "微信支付")


@dataclasses.dataclass(frozen=True)
class Transition:
    sources: tuple[str, ...]
    target: str
    by: tuple[str, ...]  # actor types allowed
    label: str
    alt_targets: tuple[str, ...] = ()  # other targets a kind's on_action may choose (set_fee)


_LIVE = ("paid", "accepted", "arrived", "in_fulfilment", "shipped", "awaiting_payment")  # paid, not finished
TRANSITIONS: dict[str, Transition] = {
    "pay": Transition(("created",), "paid", ("system",), "支付"),
    "accept": Transition(("paid",), "accepted", ("staff",), "接单"),
    "assign_driver": Transition(("paid", "accepted"), "accepted", ("staff",), "指派司机"),
    "hand_off": Transition(("paid",), "accepted", ("staff",), "转第三方平台"),
    "arrive": Transition(("accepted",), "arrived", ("staff", "system"), "司机到达"),
    "start": Transition(("accepted", "arrived"), "in_fulfilment", ("staff", "system"), "开始服务"),
    "fulfil": Transition(("accepted",), "in_fulfilment", ("staff",), "开始履约"),
    "ship": Transition(("paid", "accepted"), "shipped", ("staff",), "发货"),
    "set_fee": Transition(("in_fulfilment",), "awaiting_payment", ("staff", "system"), "结算费用",
                          alt_targets=("completed",)),
    "pay_remainder": Transition(("awaiting_payment",), "completed", ("system",), "补款完成"),
    "complete": Transition(("paid", "accepted", "arrived", "in_fulfilment", "shipped"), "completed",
                           ("staff", "system"), "完成"),
    "confirm": Transition(("accepted", "in_fulfilment", "shipped"), "completed", ("user",), "确认收货"),
    "cancel": Transition(("created",), "cancelled", ("user", "staff", "system"), "取消"),
    # a free booking cancelled before it is served (driver: before the driver arrives; Kind.cancel_paid)
    "cancel_booking": Transition(("paid", "accepted"), "cancelled", ("user", "staff"), "取消预约"),
    # a failed top-up: the full refund is requested (flows.staff_action → refund_order)
    "fail": Transition(("paid", "accepted", "in_fulfilment"), "refund_requested", ("staff",), "标记失败并退款"),
    "request_refund": Transition((*_LIVE, "completed", "after_sales"), "refund_requested", ("staff", "system"),
                                 "申请退款"),
    "refunded": Transition(("refund_requested",), "refunded", ("system",), "退款完成"),
    "refund_failed": Transition(("refund_requested",), "after_sales", ("system",), "退款失败转售后"),
    "after_sales": Transition((*_LIVE, "completed"), "after_sales", ("staff",), "转售后"),
    "paid_after_cancel": Transition(("cancelled",), "after_sales", ("system",), "取消后收到支付"),
    "resolve": Transition(("after_sales",), "completed", ("staff",), "售后完结"),
}
#: staff moves of the state machine (a kind allows a subset: ``Kind.actions``)
STAFF_ACTIONS = ("accept", "assign_driver", "hand_off", "arrive", "start", "fulfil", "ship", "set_fee", "complete",
                 "fail", "cancel", "after_sales", "resolve")
#: staff actions that are not moves: the claim lease, and refunds (any amount up to what is left)
LEASE_ACTIONS = ("claim", "release")
ACTION_LABELS = {**{a: t.label for a, t in TRANSITIONS.items()}, "claim": "认领", "release": "放弃认领",
                 "refund": "退款"}
REFUNDABLE = TRANSITIONS["request_refund"].sources + ("refund_requested",)
REASON_REQUIRED = ("cancel", "after_sales", "fail")  # staff moves that need a reason
CLAIMABLE = (*_LIVE, "after_sales", "refund_requested")  # orders someone still works on
_STAMP = {"paid": "paid_at", "cancelled": "cancelled_at", "completed": "completed_at"}
_TERMINAL = ("completed", "cancelled", "refunded")


def order_ref(order_id: int) -> str:
    """How other records name an order (coupon reservations, balance movements)."""
    return f"order:{order_id}"


def not_found() -> NotFound:
    """The one "not found" for a missing order and for one the caller may not see."""
    return NotFound("订单不存在", code="ORDER_NOT_FOUND")


# --- the state machine ---------------------------------------------------------------------------

def write_event(session: Session, *, order_id: int, action: str, from_status: str | None, to_status: str,
                actor: Actor, reason: str, now: dt.datetime) -> None:
    """One ``order_event`` row (the order's history), and one ``order_change`` for the live boards."""
    session.add(OrderEvent(order_id=order_id, action=action, from_status=from_status, to_status=to_status,
                           actor_type=actor.type, actor_id=None if actor.id is None else str(actor.id),
                           actor_name=actor.name[:64], reason=(reason or "")[:500], at=now))
    note_change(session, order_id=order_id, what=action, now=now)


def note_change(session: Session, *, order_id: int, what: str, now: dt.datetime | None = None) -> None:
    """Tell the open 订单看板 boards that ``order_id`` changed (an ``order_change`` row, in this transaction)."""
    session.add(OrderChange(order_id=order_id, what=what[:32], at=now or utcnow()))


def add_event(session: Session, *, order_id: int, action: str, actor: Actor, reason: str = "",
              now: dt.datetime | None = None) -> None:
    """A history line that is not a status change (a partial refund, a fulfilment note, a claim)."""
    status = session.exec(select(ServiceOrder.status).where(col(ServiceOrder.id) == order_id)).one()
    write_event(session, order_id=order_id, action=action, from_status=status, to_status=status, actor=actor,
                reason=reason, now=now or utcnow())
    session.flush()


def lease_length() -> dt.timedelta:
    return dt.timedelta(minutes=get_settings().order_lease_minutes)


def _lease_free(actor: Actor, now: dt.datetime):
    """SQL: the order is nobody else's right now (no live lease, or the lease is ``actor``'s)."""
    return or_(col(ServiceOrder.claimed_until).is_(None), col(ServiceOrder.claimed_until) <= now,
               col(ServiceOrder.claimed_by) == str(actor.id))


def claimed_by_other(*, holder_name: str | None, until: dt.datetime | None) -> Conflict:
    """``ORDER_CLAIMED_BY_OTHER``, naming who holds the order and until when (Asia/Shanghai)."""
    name = holder_name or "其他同事"
    when = fmt_local(until)[-5:] if until else ""
    return Conflict(f"该订单已由{name}认领处理中" + (f"（至 {when}）" if when else "") + "，请处理其他订单",
                    code="ORDER_CLAIMED_BY_OTHER", details={"claimed_by": name, "claimed_until": iso(until)})


def _lease_row(session: Session, order_id: int):
    return session.exec(select(ServiceOrder.status, ServiceOrder.claimed_by, ServiceOrder.claimed_by_name,
                               ServiceOrder.claimed_until).where(col(ServiceOrder.id) == order_id)).first()


def check_lease(session: Session, *, order_id: int, actor: Actor, now: dt.datetime | None = None) -> None:
    """Refuse (``ORDER_CLAIMED_BY_OTHER``) a staff member acting on an order another clerk holds."""
    if actor.type != "staff":
        return
    row = _lease_row(session, order_id)
    if row is None:
        raise not_found()
    _, by, name, until = row
    if until is not None and until > (now or utcnow()) and by != str(actor.id):
        raise claimed_by_other(holder_name=name, until=until)


def transition(session: Session, *, order_id: int, action: str, actor: Actor, reason: str = "",
               now: dt.datetime | None = None, values: dict[str, Any] | None = None,
               target: str | None = None, lease: bool = True) -> str:
    """Move an order by ``action`` (see :data:`TRANSITIONS`); returns the status it left.

    Raises ``INVALID_ACTION`` / ``ACTION_NOT_ALLOWED`` / ``ORDER_STATE_INVALID`` / ``ORDER_STATE_CHANGED``
    when the table or a concurrent change forbids it. ``values``: extra columns set in the same UPDATE;
    ``target``: one of the transition's ``alt_targets``. A staff move is refused with
    ``ORDER_CLAIMED_BY_OTHER`` while another clerk's lease runs, and takes (or renews) the mover's own
    lease in the same conditional UPDATE — so of two clerks accepting at once, the loser is told who won.
    ``lease=False``: a move that ignores leases (a refund: money, guarded by its own conditional UPDATE)."""
    now = now or utcnow()
    spec = TRANSITIONS.get(action)
    if spec is None:
        raise InvalidInput(f"未知的订单操作：{action}", code="INVALID_ACTION")
    if actor.type not in spec.by:
        raise Conflict(f"此操作（{spec.label}）不能由当前身份执行", code="ACTION_NOT_ALLOWED")
    to = target or spec.target
    if to != spec.target and to not in spec.alt_targets:
        raise InvalidInput(f"此操作（{spec.label}）不能转到“{ORDER_STATUSES.get(to, to)}”", code="INVALID_ACTION")
    row = _lease_row(session, order_id)
    if row is None:
        raise not_found()
    current = row[0]
    staff = actor.type == "staff" and lease
    if staff:  # before the state: a clerk who lost a race to a colleague's move is told who has the order
        check_lease(session, order_id=order_id, actor=actor, now=now)
    if current not in spec.sources:
        raise Conflict(f"订单当前状态为“{ORDER_STATUSES[current]}”，不能{spec.label}", code="ORDER_STATE_INVALID")
    vals: dict[str, Any] = {"status": to, "updated_at": now, **(values or {})}
    if to in _STAMP:
        vals.setdefault(_STAMP[to], now)
    where = [col(ServiceOrder.id) == order_id, col(ServiceOrder.status) == current]
    if staff:
        where.append(_lease_free(actor, now))
        # the mover works on it now: the lease is theirs (renewed), and ends with the order
        vals.update(claimed_by=str(actor.id), claimed_by_name=actor.name[:64],
                    claimed_until=None if to in _TERMINAL else now + lease_length())
    res = session.execute(update(ServiceOrder).where(*where).values(**vals)
                          .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        if staff:
            check_lease(session, order_id=order_id, actor=actor, now=now)  # lost to a clerk: say who
        raise Conflict("订单状态已变化，请刷新后重试", code="ORDER_STATE_CHANGED")
    write_event(session, order_id=order_id, action=action, from_status=current, to_status=to, actor=actor,
                reason=reason, now=now)
    record(session, actor=actor, action=f"order.{action}", target_type="service_order", target_id=order_id,
           summary=f"订单{spec.label}：{ORDER_STATUSES[current]} → {ORDER_STATUSES[to]}"
                   + (f"（{reason}）" if reason else ""),
           before={"status": current}, after={"status": to, **({"reason": reason} if reason else {})})
    mark_stale(session, order_id)
    return current


# --- the claim lease -------------------------------------------------------------------------------------

def claim(session: Session, *, order_id: int, actor: Actor, now: dt.datetime | None = None) -> ServiceOrder:
    """``actor`` takes (or renews) the lease on an order still being worked on: for
    ``GC_ORDER_LEASE_MINUTES`` other clerks' actions on it are refused with ``ORDER_CLAIMED_BY_OTHER``.
    One conditional UPDATE decides between two clerks claiming at once; the loser is told who won."""
    now = now or utcnow()
    row = _lease_row(session, order_id)
    if row is None:
        raise not_found()
    if row[0] not in CLAIMABLE:
        raise Conflict(f"订单当前状态为“{ORDER_STATUSES[row[0]]}”，无需认领", code="ORDER_STATE_INVALID")
    check_lease(session, order_id=order_id, actor=actor, now=now)
    until = now + lease_length()
    res = session.execute(
        update(ServiceOrder).where(col(ServiceOrder.id) == order_id, col(ServiceOrder.status).in_(CLAIMABLE),
                                   _lease_free(actor, now))
        .values(claimed_by=str(actor.id), claimed_by_name=actor.name[:64], claimed_until=until)
        .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        check_lease(session, order_id=order_id, actor=actor, now=now)
        raise Conflict("订单状态已变化，请刷新后重试", code="ORDER_STATE_CHANGED")
    _claimed(session, order_id=order_id, actor=actor, now=now, until=until)
    return get_order(session, order_id=order_id)


def _claimed(session: Session, *, order_id: int, actor: Actor, now: dt.datetime, until: dt.datetime) -> None:
    add_event(session, order_id=order_id, action="claim", actor=actor, reason=f"认领至 {fmt_local(until)[-5:]}",
              now=now)
    record(session, actor=actor, action="order.claim", target_type="service_order", target_id=order_id,
           summary=f"认领订单（至 {fmt_local(until)}）", after={"claimed_until": iso(until)})
    mark_stale(session, order_id)


def release(session: Session, *, order_id: int, actor: Actor, override: bool = False,
            now: dt.datetime | None = None) -> ServiceOrder:
    """Give an order back before the lease ends (its holder; ``override``: a manager freeing it)."""
    now = now or utcnow()
    if not override:
        check_lease(session, order_id=order_id, actor=actor, now=now)
    row = _lease_row(session, order_id)
    if row is None:
        raise not_found()
    if row[3] is None or row[3] <= now:
        raise Conflict("该订单当前没有人认领", code="ORDER_NOT_CLAIMED")
    where = [col(ServiceOrder.id) == order_id, col(ServiceOrder.claimed_until) > now]
    if not override:
        where.append(col(ServiceOrder.claimed_by) == str(actor.id))
    res = session.execute(update(ServiceOrder).where(*where).values(claimed_by=None, claimed_by_name=None,
                                                                    claimed_until=None)
                          .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise Conflict("订单认领状态已变化，请刷新后重试", code="ORDER_STATE_CHANGED")
    holder = row[2] or ""
    add_event(session, order_id=order_id, action="release", actor=actor,
              reason="放弃认领" if row[1] == str(actor.id) else f"解除{holder}的认领", now=now)
    record(session, actor=actor, action="order.release", target_type="service_order", target_id=order_id,
           summary=f"解除订单认领（原认领人 {holder}）", before={"claimed_by": row[1]})
    mark_stale(session, order_id)
    return get_order(session, order_id=order_id)


def claim_next(session: Session, *, actor: Actor, types: tuple[str, ...] | None = None,
               now: dt.datetime | None = None) -> ServiceOrder | None:
    """"下一单": the oldest paid order nobody holds, claimed for ``actor`` (``None`` when there is none).

    PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` — clerks pressing it at once skip each other's
    candidates and get different orders; SQLite: the unit of work takes the write lock first
    (``BEGIN IMMEDIATE``), so the pick and the claim are one step. Either way the claim itself is a
    conditional UPDATE (the lease still free), so a candidate taken meanwhile is skipped, never shared."""
    now = now or utcnow()
    lock_for_write(session)
    for _ in range(5):
        q = (select(ServiceOrder.id).where(col(ServiceOrder.status) == "paid",
                                           or_(col(ServiceOrder.claimed_until).is_(None),
                                               col(ServiceOrder.claimed_until) <= now))
             .order_by(col(ServiceOrder.paid_at), col(ServiceOrder.id)).limit(1))
        if types is not None:
            q = q.where(col(ServiceOrder.type).in_(types))
        if dialect(session) == "postgresql":
            q = q.with_for_update(skip_locked=True)
        order_id = session.exec(q).first()
        if order_id is None:
            return None
        until = now + lease_length()
        res = session.execute(
            update(ServiceOrder).where(col(ServiceOrder.id) == order_id, col(ServiceOrder.status) == "paid",
                                       or_(col(ServiceOrder.claimed_until).is_(None),
                                           col(ServiceOrder.claimed_until) <= now))
            .values(claimed_by=str(actor.id), claimed_by_name=actor.name[:64], claimed_until=until)
            .execution_options(synchronize_session=False))
        if res.rowcount == 1:
            _claimed(session, order_id=order_id, actor=actor, now=now, until=until)
            return get_order(session, order_id=order_id)
    return None


def lease_of(order: ServiceOrder, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The order's claim as views show it: ``{by, until, live}`` (``by`` stays as the assignee)."""
    until = order.claimed_until
    return {"by_id": order.claimed_by, "by": order.claimed_by_name, "until": iso(until),
            "live": bool(until and until > (now or utcnow()))}


# --- the live boards' feed -------------------------------------------------------------------------------

CHANGE_WINDOW = 500  # ids below the highest seen that a late commit may still fill in


def change_mark(session: Session) -> tuple[int, int]:
    """A signature of the ``order_change`` feed: ``(highest id, rows among the last CHANGE_WINDOW ids)``.
    It changes whenever any transaction that touched an order commits — also one whose id is lower than
    an id already seen (PostgreSQL hands out sequence values before commit), which a bare ``max(id)``
    would miss. Two index lookups, whatever the size of the table."""
    top = session.exec(select(func.max(OrderChange.id))).one() or 0
    n = session.exec(select(func.count()).select_from(OrderChange)
                     .where(col(OrderChange.id) > top - CHANGE_WINDOW)).one()
    return int(top), int(n)


def prune_changes(session: Session, *, older_than: dt.timedelta = dt.timedelta(days=1),
                  now: dt.datetime | None = None) -> int:
    """Drop feed rows no board needs any more (a job may run it daily)."""
    cutoff = (now or utcnow()) - older_than
    res = session.execute(sql_delete(OrderChange).where(col(OrderChange.at) < cutoff))
    return int(res.rowcount or 0)


def mark_stale(session: Session, order_id: int) -> None:
    """Core UPDATEs bypass the identity map: make the next ``session.get`` reload the row."""
    obj = session.get(ServiceOrder, order_id)
    if obj is not None:
        session.expire(obj)


# --- creation and payment ------------------------------------------------------------------------------

def new_order_no(now: dt.datetime) -> str:
    """``GC`` + the Shanghai date + 10 random digits (20 characters; WeChat's ``out_trade_no``)."""
    return "GC" + now.astimezone(SHANGHAI).strftime("%Y%m%d") + f"{secrets.randbelow(10**10):010d}"


def user_actor(user: MpUser, ip: str | None = None) -> Actor:
    return Actor("user", str(user.id), mask_phone(user.phone) or f"用户#{user.id}", ip)


def payment_params(order: ServiceOrder, *, now: dt.datetime | None = None) -> dict[str, str] | None:
    """``wx.requestPayment`` parameters for an unpaid order still within its time (freshly signed), else ``None``."""
    if order.status not in ("created", "awaiting_payment") or not order.prepay_id or (now or utcnow()) >= order.pay_expires_at:
        return None
    return payments.pay_params(order.prepay_id)


# --- user and staff actions ---------------------------------------------------------------------------

def confirm_order(session: Session, *, user: MpUser, order_id: int, ip: str | None = None,
                  now: dt.datetime | None = None) -> ServiceOrder:
    """The user confirms receipt (accepted / in fulfilment -> completed)."""
    get_user_order(session, user=user, order_id=order_id)
    transition(session, order_id=order_id, action="confirm", actor=user_actor(user, ip), reason="用户确认收货", now=now)
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


def unseen_paid_orders_count(session: Session, *, since: dt.datetime, types: tuple[str, ...] | None = None,
                             supplier: str | None = None) -> int:
    """Orders paid after ``since`` still waiting for a clerk (status ``paid``): the dashboard badge.
    ``types``: only these order types (a dispatcher counts driver orders only)."""
    q = select(func.count()).select_from(ServiceOrder).where(col(ServiceOrder.status) == "paid",
                                                             col(ServiceOrder.paid_at) > since)
    if types is not None:
        q = q.where(col(ServiceOrder.type).in_(types))
    if supplier is not None:
        q = q.where(col(ServiceOrder.supplier_code) == supplier)
    return int(session.exec(q).one())


# --- queries ----------------------------------------------------------------------------------------------

def get_order(session: Session, *, order_id: int) -> ServiceOrder:
    order = session.get(ServiceOrder, order_id, populate_existing=True)
    if order is None:
        raise not_found()
    return order


def get_order_by_no(session: Session, *, order_no: str) -> ServiceOrder:
    order = session.exec(select(ServiceOrder).where(col(ServiceOrder.order_no) == order_no)).first()
    if order is None:
        raise not_found()
    return order


def get_user_order(session: Session, *, user: MpUser | None, order_id: int) -> ServiceOrder:
    """One of the user's orders; someone else's id raises the same NotFound as a missing one."""
    if user is None or user.id is None:
        raise not_found()
    order = session.exec(select(ServiceOrder).where(col(ServiceOrder.id) == order_id,
                                                    col(ServiceOrder.user_id) == user.id)
                         .execution_options(populate_existing=True)).first()
    if order is None:
        raise not_found()
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
    city: str | None = None
    assignee: str | None = None  # the claim's holder or last assignee (name)
    claimed_until: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(created_at=iso(self.created_at), paid_at=iso(self.paid_at), claimed_until=iso(self.claimed_until),
                 type_label=ORDER_TYPES[self.type],
                 status_label=ORDER_STATUSES[self.status])
        return d


def line_summary(details: dict[str, Any] | None) -> str:
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
                  since: dt.datetime | None, until: dt.datetime | None, city: str | None = None,
                  assignee: str | None = None, supplier: str | None = None):
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
    if supplier is not None:
        stmt = stmt.where(col(ServiceOrder.supplier_code) == supplier)
    if q:
        term = "".join(ch for ch in q.strip() if ch.isascii() and ch.isalnum())[:32]
        if term:
            stmt = stmt.where(or_(col(ServiceOrder.order_no) == term.upper(), col(MpUser.phone) == term))
    if since:
        stmt = stmt.where(col(ServiceOrder.created_at) >= since)
    if until:
        stmt = stmt.where(col(ServiceOrder.created_at) < until)
    if city:
        stmt = stmt.where(col(ServiceOrder.city) == city.strip().removesuffix("市"))
    if assignee == "none":
        stmt = stmt.where(col(ServiceOrder.claimed_by).is_(None))
    elif assignee:
        stmt = stmt.where(col(ServiceOrder.claimed_by) == assignee)
    return stmt


def _order_row(r: Any) -> OrderRow:
    o, phone = r
    return OrderRow(o.id or 0, o.order_no, o.type, o.status, mask_phone(phone), line_summary(o.details), o.list_fen,
                    o.payable_fen, o.paid_fen, o.refunded_fen, o.created_at, o.paid_at, o.anomaly, o.city,
                    o.claimed_by_name, o.claimed_until)


def list_orders(session: Session, *, type: str | None = None, status: str | None = None, q: str | None = None,
                types: tuple[str, ...] | None = None, since: dt.datetime | None = None,
                until: dt.datetime | None = None, sort: str | None = None, offset: int = 0,
                limit: int = 50, city: str | None = None, assignee: str | None = None,
                supplier: str | None = None) -> Page[OrderRow]:
    """The staff queue, filtered, with the total. ``q``: an order number or a phone; ``types``: restrict to
    these types (a dispatcher sees driver orders only); ``city``: where it is fulfilled; ``assignee``: a staff
    id (the claim's holder or last assignee) or ``"none"``; ``since`` / ``until``: created in that range.
    Default order: paid orders waiting to be accepted first (longest-waiting first), then the rest newest
    first; ``sort``: one of :data:`ORDER_SORT_KEYS`."""
    stmt = _orders_query(type=type, status=status, q=q, types=types, since=since, until=until, city=city,
                         assignee=assignee, supplier=supplier)
    order = order_by(sort, ORDER_SORT_KEYS, tie=col(ServiceOrder.id), default=QUEUE_ORDER)
    return paginate(session, stmt, order=order, offset=offset, limit=limit, row=_order_row)


def orders_frame(session: Session, *, type: str | None = None, status: str | None = None, q: str | None = None,
                 types: tuple[str, ...] | None = None, since: dt.datetime | None = None,
                 until: dt.datetime | None = None, sort: str | None = None,
                 supplier: str | None = None) -> pl.DataFrame:
    """Every order matching the filters (up to the export limit), in the list's order, for the Excel export:
    Chinese headers, phones masked, money as integer fen plus ``¥`` text."""
    stmt = _orders_query(type=type, status=status, q=q, types=types, since=since, until=until, supplier=supplier)
    order = order_by(sort, ORDER_SORT_KEYS, tie=col(ServiceOrder.id), default=QUEUE_ORDER)
    rows = [_order_row(r) for r in session.exec(stmt.order_by(*order).limit(EXPORT_LIMIT)).all()]
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


def export_orders(session: Session, who: Any, filters: dict[str, Any]) -> pl.DataFrame:
    """The ``orders`` export (``exports.build``): :func:`orders_frame` of the page's filters (type, status, q,
    sort) within the asker's scope — a dispatcher's driver orders, a supplier's own goods orders — taken from
    ``who`` (the export row), never from the filters."""
    scope = scope_of(who)
    if not scope.visible:
        raise Forbidden("没有可导出的订单", code="NO_ORDERS")
    f = Filters(filters)
    type_ = f.text("type", limit=16)
    if type_ is not None and scope.types is not None and type_ not in scope.types:
        type_ = None
    return orders_frame(session, type=type_, status=f.text("status", limit=16), q=f.text("q", limit=32),
                        sort=f.text("sort", limit=32), types=scope.types, supplier=scope.supplier)


ORDERS_EXPORT = register_export("orders", "订单", export_orders, section="orders")


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


# --- who sees what ---------------------------------------------------------------------------------------

QUEUE_ROLES = ("admin", "manager", "clerk", "service", "dispatcher")  # the order queue and its moves
REFUND_ROLES = ("admin", "manager", "service", "clerk")
SUPPLIER_NOTE = ("供货商账号暂不显示订单：实物订单记录供货商之后，这里将只显示由您供货的订单。"
                 "如需查看订单，请联系内勤。")


@dataclasses.dataclass(frozen=True)
class Scope:
    """What a role may see and do with orders (staff API and 订单看板 alike)."""

    visible: bool  # sees any orders at all
    types: tuple[str, ...] | None  # restricted to these order types (None: all)
    can_act: bool  # accept / fulfil / complete / cancel / after-sales / resolve
    can_refund: bool
    note: str = ""  # shown above the queue
    supplier: str | None = None  # a supplier account: only the goods orders it ships (service_order.supplier_code)
    actions: tuple[str, ...] | None = None  # the only staff moves it may make (None: every move of the kind)


SUPPLIER_ACTIONS = ("ship",)


def scope_for(role: str | None, *, supplier_code: str | None = None) -> Scope:
    """A role's order scope; a supplier account linked to its supplier (``supplier_code``) sees and ships
    that supplier's goods orders only (without a link it sees nothing)."""
    if role == "supplier" and supplier_code:
        return Scope(True, ("goods",), True, False, "仅显示由您供货的实物订单。", supplier=supplier_code,
                     actions=SUPPLIER_ACTIONS)
    if role not in QUEUE_ROLES:
        return Scope(False, (), False, False, SUPPLIER_NOTE if role == "supplier" else "")
    if role == "dispatcher":
        return Scope(True, ("driver",), True, False, "仅显示代驾订单。")
    return Scope(True, None, True, role in REFUND_ROLES)


def scope_of(p: Any) -> Scope:
    """The order scope of a signed-in member (a :class:`~gc_admin.core.principal.Principal`)."""
    return scope_for(p.role, supplier_code=getattr(p, "supplier_code", None))


def visible_order(session: Session, *, order_id: int, scope: Scope) -> ServiceOrder:
    """The order if this scope may see it; otherwise the same "not found" as a missing id."""
    if not scope.visible:
        raise not_found()
    order = get_order(session, order_id=order_id)
    if scope.types is not None and order.type not in scope.types:
        raise not_found()
    if scope.supplier is not None and order.supplier_code != scope.supplier:
        raise not_found()
    return order


def staff_actions(status: str, scope: Scope, allowed: tuple[str, ...] = DEFAULT_ACTIONS) -> list[str]:
    """The state-machine moves a staff member of this scope may make on an order in ``status``;
    ``allowed``: what the order's kind permits (``Kind.actions``)."""
    if not scope.can_act:
        return []
    return [a for a in STAFF_ACTIONS
            if a in allowed and (scope.actions is None or a in scope.actions) and status in TRANSITIONS[a].sources and "staff" in TRANSITIONS[a].by]
