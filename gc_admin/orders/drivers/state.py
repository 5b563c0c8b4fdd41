"""司机管理 page state: the driver roster, a page of rows; add a driver, rest / available, enable / disable."""

from __future__ import annotations

from typing import Any, ClassVar

import reflex as rx

from gc_admin.core.clock import fmt_local
from gc_admin.core.errors import DomainError
from gc_admin.core.params import parse_id
from gc_admin.core.phone import mask_phone
from gc_admin.orders.drivers import service as roster
from gc_admin.orders.drivers.models import DRIVER_STATUSES
from gc_admin.ui.auth import current_principal, guarded, public, run_db
from gc_admin.ui.paging import PAGE_SIZE, PagedMixin

SECTION = "drivers"
STATUS_FILTERS = {"": "全部状态", **DRIVER_STATUSES}


class DriversState(PagedMixin, rx.State):
    SECTION: ClassVar[str] = SECTION
    rows: list[dict[str, str]] = []
    q: str = ""
    status_filter: str = ""
    form_error: str = ""
    create_open: bool = False

    def _on_denied(self) -> None:
        self.rows, self.total = [], 0

    @rx.event
    @public
    def set_q(self, value: str):
        self.q = value.strip()[:32]

    @rx.event
    @public
    def open_create(self, value: bool):
        self.create_open, self.form_error = value, ""

    async def _reload(self):  # only from a guarded handler
        status = self.status_filter if self.status_filter in DRIVER_STATUSES else None
        page = await run_db(roster.list_drivers, status=status, q=self.q or None, offset=self._offset(),
                            limit=PAGE_SIZE)
        self.total = page.total
        self.rows = [{"id": str(r.id), "name": r.name, "phone": mask_phone(r.phone), "status": r.status,
                      "status_label": DRIVER_STATUSES[r.status], "active": "1" if r.active else "",
                      "order": f"#{r.order_id}" if r.order_id else "", "updated": fmt_local(r.updated_at)}
                     for r in page.rows]

    @rx.event
    @guarded(SECTION)
    async def load(self):
        return await self._reload()

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
        self.create_open, self.form_error = False, ""
        await self._reload()
        return rx.toast.success(f"已添加司机 {d.name}")

    async def _update(self, driver_id: str, done: str, **changes: Any):
        actor = current_principal().actor()
        try:
            await run_db(lambda s: roster.update_driver(s, driver_id=parse_id(driver_id, what="司机"), actor=actor,
                                                        **changes))
        except DomainError as exc:
            return rx.toast.error(exc.message)
        await self._reload()
        return rx.toast.success(done)

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
