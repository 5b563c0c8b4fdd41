"""Demo orders (SPEC.md §10): coupon purchases and phone top-ups in every status of the board, with their
history, claims, SLA ages (some near, some past the limit), provider references, an after-sales case with
its call log — so every column of the 订单看板 is alive on first start.

Rows are written directly (as an import would), not paid through WeChat Pay: no payment or ledger entries
stand behind them, and the coupons of the demo purchases are not issued.
"""

from __future__ import annotations

import datetime as dt
import random

from sqlmodel import Session, col, select

from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.core.principal import SYSTEM, Actor
from gc_admin.orders.aftersales.models import OrderCase, OrderCaseCall
from gc_admin.orders.models import OrderEvent, ServiceOrder
from gc_admin.users.models import MpUser

CLERK = Actor("staff", "3", "陈静")
SERVICE = Actor("staff", "4", "刘洋")
# (type, status, minutes since paid, claimed?, extra)
PLAN: tuple[tuple[str, str, int, bool], ...] = (
    ("topup", "created", 0, False), ("topup", "paid", 5, False), ("topup", "paid", 26, False),
    ("topup", "paid", 55, False), ("topup", "paid", 12, True), ("topup", "accepted", 20, True),
    ("topup", "in_fulfilment", 40, True), ("topup", "completed", 300, False), ("topup", "completed", 900, False),
    ("topup", "refund_requested", 60, False), ("topup", "refunded", 2000, False), ("topup", "after_sales", 180, True),
    ("topup", "cancelled", 0, False),
    ("coupon_purchase", "created", 0, False), ("coupon_purchase", "completed", 30, False),
    ("coupon_purchase", "completed", 4000, False), ("coupon_purchase", "refunded", 3000, False),
    ("coupon_purchase", "after_sales", 500, True), ("coupon_purchase", "cancelled", 0, False),
)
PATHS = {
    "created": [], "paid": [("pay", "created", "paid", SYSTEM)],
    "accepted": [("pay", "created", "paid", SYSTEM), ("accept", "paid", "accepted", CLERK)],
    "in_fulfilment": [("pay", "created", "paid", SYSTEM), ("accept", "paid", "accepted", CLERK),
                      ("fulfil", "accepted", "in_fulfilment", CLERK)],
    "completed": [("pay", "created", "paid", SYSTEM), ("complete", "paid", "completed", CLERK)],
    "refund_requested": [("pay", "created", "paid", SYSTEM), ("fail", "paid", "paid", CLERK),
                         ("request_refund", "paid", "refund_requested", CLERK)],
    "refunded": [("pay", "created", "paid", SYSTEM), ("fail", "paid", "paid", CLERK),
                 ("request_refund", "paid", "refund_requested", CLERK), ("refunded", "refund_requested", "refunded",
                                                                         SYSTEM)],
    "after_sales": [("pay", "created", "paid", SYSTEM), ("after_sales", "paid", "after_sales", SERVICE)],
    "cancelled": [("cancel", "created", "cancelled", SYSTEM)],
}


def load(session: Session, rng: random.Random) -> None:
    now = utcnow()
    users = session.exec(select(MpUser).where(col(MpUser.phone).is_not(None), col(MpUser.openid).is_not(None))
                         .order_by(col(MpUser.id)).limit(len(PLAN))).all()
    for i, ((type_, status, minutes, claimed), user) in enumerate(zip(PLAN, users, strict=False)):
        face = rng.choice((5_000, 10_000))
        paid_at = now - dt.timedelta(minutes=minutes) if status not in ("created", "cancelled") else None
        created = (paid_at or now - dt.timedelta(minutes=rng.randrange(5, 40))) - dt.timedelta(minutes=1)
        if type_ == "topup":
            name, details = f"话费充值 {face // 100} 元", {"mobile": user.phone, "face_fen": face}
            price = face
        else:
            name, details, price = "淘票票 50 元电影券", {"product_code": "tpp50", "quantity": 1}, 4_500
        fulfilment: dict = {}
        if type_ == "topup" and status == "completed":
            fulfilment = {"provider_ref": f"ALI{created.astimezone(SHANGHAI):%Y%m%d}{i:06d}"}
        if status in ("refund_requested", "refunded") and type_ == "topup":
            fulfilment = {"failed": True}
        order = ServiceOrder(
            order_no=f"GC{created.astimezone(SHANGHAI):%Y%m%d}{9_000_000_000 + i:010d}", type=type_, status=status,
            user_id=user.id or 0, list_fen=price, payable_fen=price, paid_fen=price if paid_at else 0,
            refunded_fen=price if status in ("refund_requested", "refunded") else 0,
            pricing={"list_fen": price, "steps": [], "payable_fen": price},
            details={"lines": [{"code": type_, "name": name, "quantity": 1, "unit_fen": price, "amount_fen": price}],
                     **details},
            fulfilment=fulfilment, pay_expires_at=created + dt.timedelta(minutes=30), created_at=created,
            updated_at=paid_at or created, paid_at=paid_at, city=user.city or None,
            cancelled_at=created + dt.timedelta(minutes=30) if status == "cancelled" else None,
            completed_at=paid_at + dt.timedelta(minutes=5) if status == "completed" and paid_at else None,
            claimed_by=(SERVICE.id if status == "after_sales" else CLERK.id) if claimed else None,
            claimed_by_name=(SERVICE.name if status == "after_sales" else CLERK.name) if claimed else None,
            claimed_until=now + dt.timedelta(minutes=10) if claimed else None,
        )
        session.add(order)
        session.flush()
        at = created
        session.add(OrderEvent(order_id=order.id or 0, action="create", from_status=None, to_status="created",
                               actor_type="user", actor_id=str(user.id), actor_name="用户", at=at))
        for action, src, dst, actor in PATHS[status]:
            at = paid_at if action == "pay" and paid_at else at + dt.timedelta(minutes=2)
            reason = {"fail": "运营商系统维护，充值失败", "after_sales": "用户来电反映问题"}.get(action, "")
            session.add(OrderEvent(order_id=order.id or 0, action=action, from_status=src, to_status=dst,
                                   actor_type=actor.type, actor_id=actor.id, actor_name=actor.name, reason=reason,
                                   at=min(at, now)))
        if status == "after_sales":
            case = OrderCase(order_id=order.id or 0, reason="用户来电反映问题", notes="用户称未收到，需核实",
                             opened_by=SERVICE.name, opened_at=min(at, now))
            session.add(case)
            session.flush()
            session.add(OrderCaseCall(case_id=case.id or 0, called_at=min(at, now), outcome="no_answer",
                                      by_name=SERVICE.name, created_at=min(at, now)))
            order.fulfilment = {"case": {"status": "open", "status_label": "处理中", "outcome": None,
                                         "outcome_label": "", "opened_at": None, "closed_at": None}}
            session.add(order)
    session.flush()


def allowed_statuses(type_: str) -> set[str]:
    """Every status an order of ``type_`` can reach through the state machine: from ``created`` by the moves
    its kind allows staff (``Kind.actions``), the ones of payments and refunds every order has, and the
    type's own ones taken by the system or the user (a coupon purchase completes once issued; a driver
    order's remainder is paid, a booking cancelled; goods and flowers are confirmed by the user)."""
    from gc_admin.orders.kinds import kind_of
    from gc_admin.orders.service import TRANSITIONS

    own = {"coupon_purchase": {"complete"}, "driver": {"pay_remainder", "cancel_booking", "confirm"},
           "flower": {"confirm"}, "goods": {"confirm"}}
    moves = set(kind_of(type_).actions) | {"pay", "cancel", "request_refund", "refunded", "refund_failed",
                                           "paid_after_cancel"} | own.get(type_, set())
    seen, todo = {"created"}, ["created"]
    while todo:
        status = todo.pop()
        for action, t in TRANSITIONS.items():
            if action in moves and status in t.sources:
                for to in (t.target, *t.alt_targets):
                    if to not in seen:
                        seen.add(to)
                        todo.append(to)
    return seen


FILL_PATHS = {  # how a filled-in order got to its status (its history)
    **{k: v for k, v in PATHS.items() if k in ("created", "paid", "accepted", "in_fulfilment", "completed",
                                               "after_sales", "cancelled")},
    "refund_requested": [("pay", "created", "paid", SYSTEM), ("after_sales", "paid", "after_sales", SERVICE),
                         ("request_refund", "after_sales", "refund_requested", SERVICE)],
    "refunded": [("pay", "created", "paid", SYSTEM), ("after_sales", "paid", "after_sales", SERVICE),
                 ("request_refund", "after_sales", "refund_requested", SERVICE),
                 ("refunded", "refund_requested", "refunded", SYSTEM)],
}


def fill_every_state(session: Session, rng: random.Random) -> None:
    """The last demo loader: for each order type, every status its state machine allows that no demo order
    reached yet (a flower order cancelled unpaid, a coupon purchase whose issuing waits…) gets one order,
    written directly like :func:`load`'s — a copy of one of that type's demo orders (its lines, details and
    price) moved to the status, with its history — so every column of every type on the 订单看板 is alive."""
    from sqlalchemy import func

    from gc_admin.orders.models import ORDER_TYPES

    now = utcnow()
    have = set(session.exec(select(ServiceOrder.type, ServiceOrder.status).group_by(
        col(ServiceOrder.type), col(ServiceOrder.status))).all())
    n = int(session.exec(select(func.count()).select_from(ServiceOrder)).one())
    for type_ in ORDER_TYPES:
        template = session.exec(select(ServiceOrder).where(col(ServiceOrder.type) == type_)
                                .order_by(col(ServiceOrder.id))).first()
        if template is None:
            continue
        for status in sorted(allowed_statuses(type_) - {s for t, s in have if t == type_}):
            path = FILL_PATHS.get(status)
            if path is None:  # reached only through a flow the demo walks (arrived, shipped, awaiting payment)
                continue
            n += 1
            paid = status not in ("created", "cancelled")
            paid_at = now - dt.timedelta(minutes=rng.randrange(20, 600)) if paid else None
            created = (paid_at or now - dt.timedelta(minutes=rng.randrange(5, 25))) - dt.timedelta(minutes=1)
            price = template.payable_fen
            order = ServiceOrder(
                order_no=f"GC{created.astimezone(SHANGHAI):%Y%m%d}{7_000_000_000 + n:010d}", type=type_, status=status,
                user_id=template.user_id, list_fen=template.list_fen, payable_fen=price,
                paid_fen=price if paid else 0, refunded_fen=price if status.startswith("refund") else 0,
                pricing=dict(template.pricing or {}), details=dict(template.details or {}), fulfilment={},
                supplier_code=template.supplier_code, city=template.city,
                pay_expires_at=created + dt.timedelta(minutes=30), created_at=created, updated_at=paid_at or created,
                paid_at=paid_at, cancelled_at=created + dt.timedelta(minutes=30) if status == "cancelled" else None,
                completed_at=paid_at + dt.timedelta(minutes=40) if status == "completed" and paid_at else None)
            session.add(order)
            session.flush()
            at = created
            session.add(OrderEvent(order_id=order.id or 0, action="create", from_status=None, to_status="created",
                                   actor_type="user", actor_id=str(template.user_id), actor_name="用户", at=at))
            for action, src, dst, actor in path:
                at = paid_at if action == "pay" and paid_at else at + dt.timedelta(minutes=2)
                session.add(OrderEvent(order_id=order.id or 0, action=action, from_status=src, to_status=dst,
                                       actor_type=actor.type, actor_id=actor.id, actor_name=actor.name,
                                       reason={"after_sales": "用户来电要求取消", "cancel": "超时未支付，自动取消"}.get(
                                           action, ""), at=min(at, now)))
    session.flush()
