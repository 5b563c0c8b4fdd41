"""Service orders: the state machine, staff notices, who sees which orders, queries.

Plain functions, session first, keyword-only after; they never commit (the caller's
:func:`gc_admin.db.session_scope` does) and raise typed ``DomainError``s with Chinese messages.
What crosses into other features — creating an order with its holds and payment, cancelling it,
applying a payment or a refund to it — is in :mod:`gc_admin.orders.flows`.

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
from sqlmodel import Session, col, select

from gc_admin.accounts.models import StaffUser
from gc_admin.audit.service import record
from gc_admin.config import get_settings
from gc_admin.core.clock import SHANGHAI, fmt_local, iso, utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.core.exports import EXPORT_LIMIT
from gc_admin.core.money import format_fen
from gc_admin.core.phone import mask_phone
from gc_admin.core.principal import Actor
from gc_admin.core.sorting import order_by
from gc_admin.db import Page, paginate
from gc_admin.orders.models import ORDER_STATUSES, ORDER_TYPES, OrderEvent, OrderNotice, ServiceOrder
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
REASON_REQUIRED = ("cancel", "after_sales")  # staff moves that need a reason
_STAMP = {"paid": "paid_at", "cancelled": "cancelled_at", "completed": "completed_at"}


def order_ref(order_id: int) -> str:
    """How other records name an order (coupon reservations, balance movements)."""
    return f"order:{order_id}"


def not_found() -> NotFound:
    """The one "not found" for a missing order and for one the caller may not see."""
    return NotFound("订单不存在", code="ORDER_NOT_FOUND")


# --- the state machine ---------------------------------------------------------------------------

def write_event(session: Session, *, order_id: int, action: str, from_status: str | None, to_status: str,
                actor: Actor, reason: str, now: dt.datetime) -> None:
    """One ``order_event`` row (the order's history)."""
    session.add(OrderEvent(order_id=order_id, action=action, from_status=from_status, to_status=to_status,
                           actor_type=actor.type, actor_id=None if actor.id is None else str(actor.id),
                           actor_name=actor.name[:64], reason=(reason or "")[:500], at=now))


def add_event(session: Session, *, order_id: int, action: str, actor: Actor, reason: str = "",
              now: dt.datetime | None = None) -> None:
    """A history line that is not a status change (a partial refund, a fulfilment note)."""
    status = session.exec(select(ServiceOrder.status).where(col(ServiceOrder.id) == order_id)).one()
    write_event(session, order_id=order_id, action=action, from_status=status, to_status=status, actor=actor,
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
        raise not_found()
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
    write_event(session, order_id=order_id, action=action, from_status=current, to_status=spec.target, actor=actor,
                reason=reason, now=now)
    record(session, actor=actor, action=f"order.{action}", target_type="service_order", target_id=order_id,
           summary=f"订单{spec.label}：{ORDER_STATUSES[current]} → {ORDER_STATUSES[spec.target]}"
                   + (f"（{reason}）" if reason else ""),
           before={"status": current}, after={"status": spec.target, **({"reason": reason} if reason else {})})
    mark_stale(session, order_id)
    return current


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
    if order.status != "created" or not order.prepay_id or (now or utcnow()) >= order.pay_expires_at:
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

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(created_at=iso(self.created_at), paid_at=iso(self.paid_at), type_label=ORDER_TYPES[self.type],
                 status_label=ORDER_STATUSES[self.status])
        return d


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


def _order_row(r: Any) -> OrderRow:
    o, phone = r
    return OrderRow(o.id or 0, o.order_no, o.type, o.status, mask_phone(phone), _summary(o.details), o.list_fen,
                    o.payable_fen, o.paid_fen, o.refunded_fen, o.created_at, o.paid_at, o.anomaly)


def list_orders(session: Session, *, type: str | None = None, status: str | None = None, q: str | None = None,
                types: tuple[str, ...] | None = None, since: dt.datetime | None = None,
                until: dt.datetime | None = None, sort: str | None = None, offset: int = 0,
                limit: int = 50) -> Page[OrderRow]:
    """The staff queue, filtered, with the total. ``q``: an order number or a phone; ``types``: restrict to
    these types (a dispatcher sees driver orders only). Default order: paid orders waiting to be accepted
    first (longest-waiting first), then the rest newest first; ``sort``: one of :data:`ORDER_SORT_KEYS`."""
    stmt = _orders_query(type=type, status=status, q=q, types=types, since=since, until=until)
    order = order_by(sort, ORDER_SORT_KEYS, tie=col(ServiceOrder.id), default=QUEUE_ORDER)
    return paginate(session, stmt, order=order, offset=offset, limit=limit, row=_order_row)


def orders_frame(session: Session, *, type: str | None = None, status: str | None = None, q: str | None = None,
                 types: tuple[str, ...] | None = None, since: dt.datetime | None = None,
                 until: dt.datetime | None = None, sort: str | None = None) -> pl.DataFrame:
    """Every order matching the filters (up to the export limit), in the list's order, for the Excel export:
    Chinese headers, phones masked, money as integer fen plus ``¥`` text."""
    stmt = _orders_query(type=type, status=status, q=q, types=types, since=since, until=until)
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


def scope_for(role: str | None) -> Scope:
    if role not in QUEUE_ROLES:
        return Scope(False, (), False, False, SUPPLIER_NOTE if role == "supplier" else "")
    if role == "dispatcher":
        return Scope(True, ("driver",), True, False, "仅显示代驾订单。")
    return Scope(True, None, True, role in REFUND_ROLES)


def visible_order(session: Session, *, order_id: int, scope: Scope) -> ServiceOrder:
    """The order if this scope may see it; otherwise the same "not found" as a missing id."""
    if not scope.visible:
        raise not_found()
    order = get_order(session, order_id=order_id)
    if scope.types is not None and order.type not in scope.types:
        raise not_found()
    return order


def staff_actions(status: str, scope: Scope) -> list[str]:
    """The state-machine moves a staff member of this scope may make on an order in ``status``."""
    if not scope.can_act:
        return []
    return [a for a in STAFF_ACTIONS if status in TRANSITIONS[a].sources and "staff" in TRANSITIONS[a].by]
