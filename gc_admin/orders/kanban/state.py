"""订单看板 board state: filters, one page of cards per column, selection for bulk moves, claims, 下一单,
and the live feed.

Small state (DESIGN.md): a page of :data:`~gc_admin.orders.kanban.service.CARDS_PER_COLUMN` cards per
column, strings only. Live: :meth:`KanbanState.tick` runs every second (a hidden timer on the page),
reads the ``order_change`` feed's signature from the database (:func:`orders.change_mark`: two index
lookups) and reloads the board only when it moved — so a payment, claim or move made by any worker
on any host shows on every open board within about a second, with nothing kept in process memory.

Moves that need fields (shop, ETA, provider reference …) open :class:`~gc_admin.orders.state.OrdersState`'s
action dialog, which asks for the fields the order's kind takes; refunds and the detail drawer are
that state's too. Every handler is ``@guarded("orders")``; setters that only hold typing are ``@public``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import reflex as rx

from gc_admin.core.clock import SHANGHAI, fmt_local, utcnow
from gc_admin.core.errors import DomainError
from gc_admin.core.money import format_fen
from gc_admin.core.phone import mask_phone
from gc_admin.orders import display, flows
from gc_admin.orders import service as orders
from gc_admin.orders.kanban import service as kanban
from gc_admin.orders.kinds import kind_of
from gc_admin.orders.models import ORDER_TYPES
from gc_admin.orders.state import OrdersState
from gc_admin.orders.suppliers import shipments
from gc_admin.ui.auth import current_principal, guarded, public, run_db
from gc_admin.ui.paging import DateRangeMixin, SearchMixin

SECTION = "orders"
#: moves offered on a card (others — after-sales, failure, cancel — from the detail drawer)
CARD_ACTIONS = ("accept", "assign_driver", "arrive", "start", "fulfil", "ship", "complete", "resolve")
BULK = ("accept", "complete")


def card_view(c: kanban.Card, *, scope: orders.Scope, me: str, now: dt.datetime) -> dict[str, str]:
    """A card as strings: type, essentials, amount, assignee, SLA timer, the moves it offers."""
    kind = kind_of(c.type)
    allowed = [a for a in orders.staff_actions(c.status, scope, kind.actions) if a in CARD_ACTIONS]
    waited, level = kanban.sla_of(type=c.type, status=c.status, paid_at=c.paid_at, now=now)
    live = bool(c.claimed_until and c.claimed_until > now)
    essentials = kind.details_text(c.details) or c.summary
    return {
        "id": str(c.id), "order_no": c.order_no, "type": c.type, "type_label": ORDER_TYPES[c.type],
        "status": c.status, "essentials": essentials or "—", "city": c.city or "", "amount": format_fen(c.payable_fen),
        "phone": mask_phone(c.phone) or "—", "assignee": c.assignee or "",
        "claim": ("mine" if c.assignee_id == me else "other") if live else "",
        "sla": display.age_text(waited) if waited is not None else "", "sla_level": level,
        "paid_at": fmt_local(c.paid_at) if c.paid_at else "",
        "a1": allowed[0] if allowed else "", "a1_label": display.action_label(allowed[0]) if allowed else "",
        "a2": allowed[1] if len(allowed) > 1 else "",
        "a2_label": display.action_label(allowed[1]) if len(allowed) > 1 else "",
        "claimable": "1" if scope.can_act and scope.actions is None and c.status in orders.CLAIMABLE and not live else "",
        "bulk": "1" if scope.can_act and scope.actions is None and any(a in BULK for a in allowed) else "",
    }


def _day(value: str, *, end: bool = False) -> dt.datetime | None:
    """A ``YYYY-MM-DD`` Shanghai day as a UTC bound (the next day's start for ``end``)."""
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    start = dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time(), tzinfo=SHANGHAI)
    return start.astimezone(dt.timezone.utc)


class KanbanState(DateRangeMixin, SearchMixin, rx.State):
    SECTION = SECTION
    cols: dict[str, dict[str, str]] = {}
    shown: list[str] = list(kanban.BOARD_STATUSES)  # the columns of what this member sees (kanban.board_statuses)
    cards: dict[str, list[dict[str, str]]] = {}
    offsets: dict[str, int] = {}
    types: list[dict[str, str]] = []
    type_f: str = "all"
    city_f: str = ""
    assignee_f: str = "all"  # all / me / none
    sla_f: str = "all"  # all / near / over
    selected: list[str] = []
    mark: str = ""
    visible: bool = True
    can_act: bool = False  # 下一单 and the bulk moves (not for a scope limited to some moves: a supplier ships)
    scope_note: str = ""
    imports_link: bool = False  # 订单导入与批量发货 has something for this member
    loaded: bool = False
    busy: bool = False

    def _on_denied(self) -> None:
        self.cols, self.cards, self.selected = {}, {}, []

    def _filters(self, scope: orders.Scope, me: str) -> kanban.BoardFilters:
        type_ = None if self.type_f == "all" else self.type_f
        if type_ is not None and scope.types is not None and type_ not in scope.types:
            type_, self.type_f = None, "all"
        assignee = {"me": me, "none": "none"}.get(self.assignee_f)
        return kanban.BoardFilters.within(
            scope, type=type_, city=self.city_f or None, assignee=assignee, since=_day(self.date_from),
            until=_day(self.date_to, end=True), sla=None if self.sla_f == "all" else self.sla_f, q=self.q or None)

    async def _reload(self) -> Any:
        p = current_principal()
        scope = orders.scope_of(p)
        self.visible, self.scope_note = scope.visible, scope.note
        self.can_act = scope.can_act and scope.actions is None
        self.imports_link = shipments.may_use_imports(p.role, supplier_code=p.supplier_code)
        self.types = display.type_options(scope)
        self.loaded = True
        if not scope.visible:
            self.cols, self.cards = {}, {}
            return None
        me = str(p.id)
        try:
            filters = self._filters(scope, me)

            def read(s):
                return orders.change_mark(s), kanban.board(s, filters=filters, offsets=dict(self.offsets))

            mark, columns = await run_db(read)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        now = utcnow()
        self.mark = f"{mark[0]}:{mark[1]}"
        self.cols = {c.status: {"label": c.label, "count": c.count_text, "offset": str(c.offset),
                                "prev": "1" if c.offset > 0 else "",
                                "next": "1" if c.offset + len(c.cards) < c.count else ""} for c in columns}
        self.cards = {c.status: [card_view(x, scope=scope, me=me, now=now) for x in c.cards] for c in columns}
        self.shown = [c.status for c in columns]
        shown = {x["id"] for cs in self.cards.values() for x in cs}
        self.selected = [i for i in self.selected if i in shown]
        return None

    @rx.event
    @guarded(SECTION)
    async def load(self):
        return await self._reload()

    @rx.event
    @guarded(SECTION, quiet=True)  # a timer: no toast for a refusal every second
    async def tick(self, _now: str = ""):
        """Reload when the database's change feed moved (any worker, any host)."""
        top, n = await run_db(orders.change_mark)
        if f"{top}:{n}" != self.mark:
            return await self._reload()
        return None

    # --- filters ------------------------------------------------------------------------------------

    async def _refilter(self) -> Any:
        self.offsets = {}
        return await self._reload()

    @rx.event
    @guarded(SECTION)
    async def set_type(self, value: str):
        self.type_f = value if value in ORDER_TYPES else "all"
        return await self._refilter()

    @rx.event
    @guarded(SECTION)
    async def set_assignee(self, value: str):
        self.assignee_f = value if value in ("me", "none") else "all"
        return await self._refilter()

    @rx.event
    @guarded(SECTION)
    async def set_sla(self, value: str):
        self.sla_f = value if value in kanban.SLA_FILTERS else "all"
        return await self._refilter()

    @rx.event
    @public
    def set_city(self, value: str):
        self.city_f = value.strip()[:16]

    @rx.event
    @guarded(SECTION)
    async def search(self, _form: dict[str, Any] | None = None):
        return await self._refilter()

    @rx.event
    @guarded(SECTION)
    async def clear_filters(self):
        self.type_f, self.assignee_f, self.sla_f = "all", "all", "all"
        self.city_f = self.q = self.date_from = self.date_to = ""
        return await self._refilter()

    @rx.event
    @guarded(SECTION)
    async def page(self, status: str, step: int):
        """The previous / next page of one column (the others keep theirs)."""
        if status not in kanban.BOARD_STATUSES:
            return None
        step = 1 if int(step) > 0 else -1
        self.offsets = {**self.offsets, status: max(0, self.offsets.get(status, 0) + step * kanban.CARDS_PER_COLUMN)}
        return await self._reload()

    # --- claims, 下一单, bulk -----------------------------------------------------------------------------

    async def _lease(self, order_id: str, action: str) -> Any:
        p = current_principal()
        scope = orders.scope_of(p)
        try:
            order = await asyncio.to_thread(flows.lease_act, order_id=int(order_id), action=action,
                                            actor=p.actor(), scope=scope)
        except (DomainError, ValueError) as exc:
            await self._reload()
            return rx.toast.error(getattr(exc, "message", "订单不存在"))
        await self._reload()
        return rx.toast.success(f"订单 {order.order_no} 已{'认领' if action == 'claim' else '放弃认领'}")

    @rx.event
    @guarded(SECTION)
    async def claim(self, order_id: str):
        return await self._lease(order_id, "claim")

    @rx.event
    @guarded(SECTION)
    async def release(self, order_id: str):
        return await self._lease(order_id, "release")

    @rx.event
    @guarded(SECTION)
    async def next_order(self):
        """下一单: claim the oldest paid order nobody holds, and open it."""
        p = current_principal()
        scope = orders.scope_of(p)
        if not scope.can_act or scope.actions is not None:
            return rx.toast.error("没有处理订单的权限")
        type_ = None if self.type_f == "all" else self.type_f
        types = scope.types if type_ is None else tuple(t for t in (type_,) if scope.types is None or t in scope.types)
        order = await run_db(lambda s: orders.claim_next(s, actor=p.actor(), types=types))
        await self._reload()
        if order is None:
            return rx.toast.info("暂无待接单的订单")
        return [rx.toast.success(f"已认领订单 {order.order_no}"), OrdersState.open_order(str(order.id))]

    @rx.event
    @guarded(SECTION)
    async def toggle(self, order_id: str):
        self.selected = [i for i in self.selected if i != order_id] if order_id in self.selected \
            else [*self.selected, order_id][:100]

    @rx.event
    @guarded(SECTION)
    async def bulk(self, action: str):
        """Accept / complete the selected orders, each on its own (a refused one never undoes the others)."""
        p = current_principal()
        scope = orders.scope_of(p)
        if action not in BULK or not scope.can_act or scope.actions is not None:
            yield rx.toast.error("没有权限执行此操作")
            return
        ids = [int(i) for i in self.selected if i.isdigit()]
        if not ids:
            yield rx.toast.error("请先勾选订单")
            return
        self.busy = True
        yield
        results = await asyncio.to_thread(flows.bulk_act, order_ids=ids, action=action, actor=p.actor(), scope=scope)
        self.busy, self.selected = False, []
        await self._reload()
        done = [r for r in results if r.error is None]
        failed = [r for r in results if r.error is not None]
        label = display.action_label(action)
        if failed:
            first = failed[0].error.message if failed[0].error else ""
            yield rx.toast.warning(f"批量{label}：成功 {len(done)} 单，失败 {len(failed)} 单（{first}）")
        else:
            yield rx.toast.success(f"批量{label}：{len(done)} 单已完成")
