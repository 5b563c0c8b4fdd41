"""The 订单看板 board: one column per status, each a page of cards, with filters and SLA.

Every query is bounded whatever the size of ``service_order``: a column's cards are one index range
(``ix_service_order_status_paid``: status, then paid time, then id) cut by ``LIMIT``; its count stops
at :data:`COUNT_CAP` (shown as "99+"). So the board's first cards cost the same with 100 orders as
with 100,000 (``bench/bench_kanban.py``).

SLA (per type, ``GC_ORDER_SLA_MINUTES``): time since payment against the type's limit, for orders
still being worked on; ``near`` from :data:`SLA_NEAR` of the limit, ``over`` past it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from gc_admin.config import get_settings
from gc_admin.core.clock import as_utc, utcnow
from gc_admin.core.errors import InvalidInput
from gc_admin.orders.kinds import kind_of
from gc_admin.orders.models import ORDER_STATUSES, ORDER_TYPES, ServiceOrder
from gc_admin.orders.service import STAFF_ACTIONS, TRANSITIONS, Scope, line_summary
from gc_admin.users.models import MpUser

#: the board's columns, left to right: work waiting first, then work in progress, then closed, then unpaid
BOARD_STATUSES = ("paid", "accepted", "arrived", "in_fulfilment", "shipped", "awaiting_payment", "after_sales",
                  "refund_requested", "completed", "refunded", "cancelled", "created")
SLA_STATUSES = ("paid", "accepted", "arrived", "in_fulfilment", "shipped", "awaiting_payment")
CARDS_PER_COLUMN = 10
COUNT_CAP = 99  # a column says "99+" beyond: counting further would cost in proportion to the table
SLA_NEAR = 0.8
SLA_FILTERS = ("near", "over")


def sla_limits() -> dict[str, dt.timedelta]:
    return {t: dt.timedelta(minutes=m) for t, m in get_settings().order_sla_minutes}


def sla_of(*, type: str, status: str, paid_at: dt.datetime | None, now: dt.datetime) -> tuple[dt.timedelta | None, str]:
    """``(time since payment, level)``: level ``ok`` / ``near`` / ``over`` while the order is worked on, else ``""``."""
    if status not in SLA_STATUSES or paid_at is None:
        return None, ""
    waited = now - as_utc(paid_at)
    limit = sla_limits()[type]
    if waited > limit:
        return waited, "over"
    return waited, "near" if waited >= limit * SLA_NEAR else "ok"


@dataclasses.dataclass(frozen=True)
class BoardFilters:
    type: str | None = None
    types: tuple[str, ...] | None = None  # the role's scope
    city: str | None = None
    assignee: str | None = None  # a staff id, or "none"
    since: dt.datetime | None = None  # created at or after
    until: dt.datetime | None = None  # created before
    sla: str | None = None  # near / over
    q: str | None = None  # order no. or the user's phone
    supplier: str | None = None  # a supplier account: its own goods orders only (the scope's)

    @classmethod
    def within(cls, scope: Scope, **kw: Any) -> BoardFilters:
        f = cls(types=scope.types, supplier=scope.supplier, **kw)
        if f.type is not None and f.type not in ORDER_TYPES:
            raise InvalidInput("未知的订单类型", code="INVALID_ORDER_TYPE")
        if f.sla is not None and f.sla not in SLA_FILTERS:
            raise InvalidInput("未知的 SLA 筛选", code="INVALID_SLA")
        return f


def _where(f: BoardFilters, status: str, now: dt.datetime) -> list[Any]:
    w: list[Any] = [col(ServiceOrder.status) == status]
    if f.type:
        w.append(col(ServiceOrder.type) == f.type)
    if f.types is not None:
        w.append(col(ServiceOrder.type).in_(f.types))
    if f.supplier is not None:
        w.append(col(ServiceOrder.supplier_code) == f.supplier)
    if f.city:
        w.append(col(ServiceOrder.city) == f.city.strip().removesuffix("市"))
    if f.assignee == "none":
        w.append(col(ServiceOrder.claimed_by).is_(None))
    elif f.assignee:
        w.append(col(ServiceOrder.claimed_by) == f.assignee)
    if f.since:
        w.append(col(ServiceOrder.created_at) >= f.since)
    if f.until:
        w.append(col(ServiceOrder.created_at) < f.until)
    if f.sla:
        if status not in SLA_STATUSES:
            w.append(col(ServiceOrder.id).is_(None))  # no SLA outside the working columns: nothing matches
        else:
            per_type = []
            for t, limit in sla_limits().items():
                edge = now - (limit if f.sla == "over" else limit * SLA_NEAR)
                cond = [col(ServiceOrder.type) == t, col(ServiceOrder.paid_at) <= edge]
                if f.sla == "near":
                    cond.append(col(ServiceOrder.paid_at) > now - limit)
                per_type.append(and_(*cond))
            w.append(or_(*per_type))
    if f.q:
        term = "".join(ch for ch in f.q.strip() if ch.isascii() and ch.isalnum())[:32]
        if term:
            user_ids = select(MpUser.id).where(col(MpUser.phone) == term)
            w.append(or_(col(ServiceOrder.order_no) == term.upper(), col(ServiceOrder.user_id).in_(user_ids)))
    return w


@dataclasses.dataclass(frozen=True)
class Card:
    id: int
    order_no: str
    type: str
    status: str
    summary: str
    city: str | None
    payable_fen: int
    phone: str | None
    assignee_id: str | None
    assignee: str | None
    claimed_until: dt.datetime | None
    paid_at: dt.datetime | None
    created_at: dt.datetime
    details: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Column:
    status: str
    label: str
    count: int  # capped at COUNT_CAP + 1 ("1000+")
    offset: int
    cards: list[Card]

    @property
    def count_text(self) -> str:
        return f"{COUNT_CAP}+" if self.count > COUNT_CAP else str(self.count)


def column(session: Session, *, status: str, filters: BoardFilters, offset: int = 0,
           limit: int = CARDS_PER_COLUMN, now: dt.datetime | None = None) -> Column:
    """One column: its (capped) count and a page of cards — paid orders oldest payment first (the
    longest-waiting on top), every other column most recent first."""
    if status not in ORDER_STATUSES:
        raise InvalidInput("未知的订单状态", code="INVALID_STATUS")
    now = now or utcnow()
    where = _where(filters, status, now)
    capped = select(ServiceOrder.id).where(*where).limit(COUNT_CAP + 1).subquery()
    count = int(session.exec(select(func.count()).select_from(capped)).one())
    offset = max(0, min(offset, max(count - 1, 0)))
    order = ((col(ServiceOrder.paid_at).asc(), col(ServiceOrder.id).asc()) if status == "paid"
             else (col(ServiceOrder.paid_at).desc(), col(ServiceOrder.id).desc()))
    q = (select(ServiceOrder, MpUser.phone).join(MpUser, col(MpUser.id) == col(ServiceOrder.user_id))
         .where(*where).order_by(*order).offset(offset).limit(max(1, min(limit, 50))))
    cards = [Card(o.id or 0, o.order_no, o.type, o.status, line_summary(o.details), o.city, o.payable_fen, phone,
                  o.claimed_by, o.claimed_by_name, o.claimed_until, o.paid_at, o.created_at, dict(o.details or {}))
             for o, phone in session.exec(q).all()]
    return Column(status, ORDER_STATUSES[status], count, offset, cards)


def reachable_statuses(order_type: str) -> frozenset[str]:
    """The statuses an order of this type can be in: from ``created``, the moves its kind allows (its staff
    actions; the user's, the system's and refunds are every kind's; a free cancellation only where the kind
    has one). A goods order is never 已接单 or 司机已到达; a coupon purchase never 已发货."""
    kind = kind_of(order_type)
    moves = [t for name, t in TRANSITIONS.items()
             if (name in kind.actions if name in STAFF_ACTIONS else name != "cancel_booking" or kind.cancel_paid)]
    seen, todo = {"created"}, ["created"]
    while todo:
        here = todo.pop()
        for t in moves:
            if here in t.sources:
                for target in (t.target, *t.alt_targets):
                    if target not in seen:
                        seen.add(target)
                        todo.append(target)
    return frozenset(seen)


def board_statuses(session: Session, *, filters: BoardFilters) -> tuple[str, ...]:
    """The board's columns for these filters, in board order: the statuses the shown types can reach, plus
    any other status that holds a shown order all the same (an order moved by hand in the database, a kind
    whose moves changed since): no order is ever left without its column."""
    types = (filters.type,) if filters.type else (filters.types if filters.types is not None else tuple(ORDER_TYPES))
    reach = frozenset().union(*(reachable_statuses(t) for t in types))
    now = utcnow()
    return tuple(st for st in BOARD_STATUSES if st in reach or session.exec(
        select(col(ServiceOrder.id)).where(*_where(filters, st, now)).limit(1)).first() is not None)


def board(session: Session, *, filters: BoardFilters, offsets: dict[str, int] | None = None,
          statuses: tuple[str, ...] | None = None, now: dt.datetime | None = None) -> list[Column]:
    """Every column of the board (each with its own page offset); by default those of
    :func:`board_statuses`."""
    now = now or utcnow()
    statuses = board_statuses(session, filters=filters) if statuses is None else statuses
    return [column(session, status=s, filters=filters, offset=(offsets or {}).get(s, 0), now=now) for s in statuses]
