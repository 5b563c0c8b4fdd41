"""司机管理 page state: the driver roster, a page of rows; add a driver, rest / available, enable / disable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import reflex as rx
from sqlmodel import Session

from gc_admin.core.clock import fmt_local
from gc_admin.core.errors import DomainError
from gc_admin.core.params import parse_id
from gc_admin.core.phone import mask_phone
from gc_admin.core.money import format_fen
from gc_admin.orders import flows
from gc_admin.orders import service as orders
from gc_admin.orders.drivers import service as roster
from gc_admin.orders.drivers.dispatch import handed_off
from gc_admin.orders.drivers.models import DRIVER_STATUSES
from gc_admin.orders.kinds.driver import details_text
from gc_admin.orders.models import ORDER_STATUSES, ServiceOrder
from gc_admin.ui.auth import current_principal, guarded, public, run_db
from gc_admin.ui.paging import PAGE_SIZE, CreateMixin, PagedMixin, SearchMixin, setter

SECTION = "drivers"
STATUS_FILTERS = {"": "全部状态", **DRIVER_STATUSES}


def yuan_to_fen(text: str) -> int | None:
    """``"88"`` / ``"88.5"`` / ``"88.50"`` -> fen; anything else (negative, 3 decimals, letters) -> None."""
    whole, _, frac = text.strip().partition(".")
    if not whole.isdigit() or len(whole) > 6 or (frac and not (frac.isdigit() and len(frac) <= 2)):
        return None
    return int(whole) * 100 + int((frac + "00")[:2])


def _live_row(o: ServiceOrder) -> dict[str, str]:
    f = o.fulfilment or {}
    platform = handed_off(o)
    who = (f"平台 {f.get('platform')}" + (f" · {f['driver_name']}" if f.get("driver_name") else "")) if platform \
        else (f.get("driver_name") or "")
    own = not platform
    return {"id": str(o.id), "order_no": o.order_no, "status": o.status, "status_label": ORDER_STATUSES[o.status],
            "summary": details_text(o.details or {}), "who": who,
            "can_assign": "1" if o.status in ("paid", "accepted") and own else "",
            "can_hand_off": "1" if o.status == "paid" else "",
            "can_arrive": "1" if o.status == "accepted" and own and f.get("driver_id") else "",
            "can_start": "1" if o.status in ("accepted", "arrived") and own and f.get("driver_id") else "",
            "can_fee": "1" if o.status == "in_fulfilment" and own else ""}


class DriversState(CreateMixin, PagedMixin, SearchMixin, rx.State):
    SECTION: ClassVar[str] = SECTION
    rows: list[dict[str, str]] = []
    status_filter: str = ""

    # the dispatch panel: live driver orders (first page) and who can be assigned
    live: list[dict[str, str]] = []
    live_total: int = 0
    available: list[dict[str, str]] = []
    target_id: str = ""  # the order a dialog acts on
    target_no: str = ""
    assign_open: bool = False
    assign_driver: str = ""
    fee_open: bool = False
    fee_yuan: str = ""

    def _on_denied(self) -> None:
        self.rows, self.total, self.live, self.live_total, self.available = [], 0, [], 0, []

    set_assign_driver = setter("assign_driver")
    set_fee_yuan = setter("fee_yuan", limit=10, strip=True)
    set_assign_open = setter("assign_open", bool)
    set_fee_open = setter("fee_open", bool)

    @rx.event
    @public
    def pick(self, order_id: str, order_no: str, dialog: str):
        """Choose the order a dialog (assign / fee) acts on and open it."""
        self.target_id, self.target_no = order_id, order_no
        self.assign_driver, self.fee_yuan = "", ""
        self.assign_open, self.fee_open = dialog == "assign", dialog == "fee"

    async def _reload_live(self) -> None:
        def read(s):
            page = roster.live_orders(s, limit=PAGE_SIZE)
            return page, roster.available_drivers(s)

        page, free = await run_db(read)
        self.live_total = page.total
        self.live = [_live_row(o) for o in page.rows]
        self.available = [{"id": str(d.id), "label": f"{d.name}（{mask_phone(d.phone)}）"} for d in free]

    async def _run(self, work: Callable[[Session], Any], done: str):
        """A dispatch or roster change in one unit of work, then the lists again and ``done`` (a refusal: its toast)."""
        try:
            await run_db(work)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        await self._reload()
        return rx.toast.success(done)

    async def _act(self, order_id: str, action: str, done: str, **fields: Any):
        p = current_principal()
        try:
            oid = parse_id(order_id, what="订单")
        except DomainError as exc:
            return rx.toast.error(exc.message)
        return await self._run(lambda _s: flows.act(order_id=oid, action=action, actor=p.actor(),
                                                    scope=orders.scope_for(p.role), fields=fields), done)

    @rx.event
    @guarded(SECTION)
    async def do_assign(self):
        if not self.assign_driver:
            return rx.toast.error("请选择司机")
        out = await self._act(self.target_id, "assign_driver", "已指派司机",
                              driver_id=parse_id(self.assign_driver, what="司机"))
        self.assign_open = False
        return out

    @rx.event
    @guarded(SECTION)
    async def do_set_fee(self):
        fen = yuan_to_fen(self.fee_yuan)
        if fen is None:
            return rx.toast.error("请输入正确的车费金额（元，最多两位小数）")
        out = await self._act(self.target_id, "set_fee", f"已结算车费 {format_fen(fen)}", fee_fen=fen)
        self.fee_open = False
        return out

    @rx.event
    @guarded(SECTION)
    async def hand_off(self, order_id: str):
        from gc_admin.integrations.driver.setup import platform_code

        return await self._act(order_id, "hand_off", "已转第三方代驾平台", platform=platform_code())

    @rx.event
    @guarded(SECTION)
    async def step(self, order_id: str, action: str):
        if action not in ("arrive", "start"):
            return rx.toast.error("未知的操作")
        return await self._act(order_id, action, "司机已到达" if action == "arrive" else "已开始服务")

    async def _reload(self):  # only from a guarded handler
        status = self.status_filter if self.status_filter in DRIVER_STATUSES else None
        page = await run_db(roster.list_drivers, status=status, q=self.q or None, offset=self._offset(),
                            limit=PAGE_SIZE)
        await self._reload_live()
        self.total = page.total
        self.rows = [{"id": str(r.id), "name": r.name, "phone": mask_phone(r.phone), "status": r.status,
                      "status_label": DRIVER_STATUSES[r.status], "active": "1" if r.active else "",
                      "order": f"#{r.order_id}" if r.order_id else "", "updated": fmt_local(r.updated_at)}
                     for r in page.rows]

    @rx.event
    @guarded(SECTION)
    async def filter_status(self, value: str):
        self.status_filter = "" if value == "all" else value
        self.page = 1
        return await self._reload()

    @rx.event
    @guarded(SECTION)
    async def create(self, form: dict[str, Any]):
        actor = current_principal().actor()
        try:
            d = await run_db(lambda s: roster.create_driver(s, name=str(form.get("name", "")),
                                                            phone=str(form.get("phone", "")), actor=actor))
        except DomainError as exc:
            self.form_error = exc.message
            return None
        self._created()
        await self._reload()
        return rx.toast.success(f"已添加司机 {d.name}")

    async def _update(self, driver_id: str, done: str, **changes: Any):
        actor = current_principal().actor()
        return await self._run(lambda s: roster.update_driver(s, driver_id=parse_id(driver_id, what="司机"),
                                                              actor=actor, **changes), done)

    @rx.event
    @guarded(SECTION)
    async def set_status(self, driver_id: str, status: str):
        if status not in roster.SETTABLE_STATUSES:
            return rx.toast.error("司机状态只能设为空闲或休息")
        return await self._update(driver_id, f"已设为{DRIVER_STATUSES[status]}", status=status)

    @rx.event
    @guarded(SECTION)
    async def set_active(self, driver_id: str, active: bool):
        return await self._update(driver_id, "已启用" if active else "已停用", active=bool(active))
