"""Users page state (用户): search by phone; phones masked in the list."""

from __future__ import annotations

import reflex as rx

from gc_admin.core.clock import fmt_local
from gc_admin.core.phone import mask_phone
from gc_admin.ui.auth import denied, require, run_db
from gc_admin.ui.paging import PAGE_SIZE, PagedMixin
from gc_admin.users import service

SECTION = "users"


class UsersState(PagedMixin, rx.State):
    rows: list[dict[str, str]] = []
    phone_q: str = ""

    @rx.event
    def set_phone_q(self, value: str):
        self.phone_q = "".join(ch for ch in value if ch.isdigit())[:11]

    async def _reload(self):
        if await require(self, SECTION) is None:
            self.rows, self.total = [], 0
            return await denied(self)
        page = await run_db(service.list_users, phone=self.phone_q, offset=self._offset(), limit=PAGE_SIZE)
        self.total = page.total
        self.rows = [
            {
                "id": str(u.id),
                "phone": mask_phone(u.phone) or "未绑定",
                "wechat": "已授权" if u.openid else "—",
                "city": u.city or "—",
                "created_at": fmt_local(u.created_at),
                "last_login": fmt_local(u.last_login_at) or "—",
            }
            for u in page.rows
        ]
        return None

    @rx.event
    async def load(self):
        return await self._reload()
