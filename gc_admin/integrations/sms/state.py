"""短信记录 page state."""

from __future__ import annotations

from typing import ClassVar

import reflex as rx

from gc_admin.core.clock import fmt_local
from gc_admin.core.phone import mask_phone
from gc_admin.integrations.sms.service import OUTBOX_SORT_KEYS, PROVIDER_LABELS, list_outbox
from gc_admin.ui.auth import public, run_db
from gc_admin.ui.paging import PAGE_SIZE, PagedMixin

SECTION = "sms"
STATUS_LABELS = {"pending": "发送中", "sent": "已发送", "recorded": "已记录（开发环境未真实发送）", "failed": "发送失败"}


class SmsState(PagedMixin, rx.State):
    SECTION: ClassVar[str] = SECTION  # the paging handlers check it (ui.paging)
    SORT_KEYS: ClassVar = OUTBOX_SORT_KEYS
    phone_q: str = ""

    @rx.event
    @public
    def set_phone_q(self, value: str):
        self.phone_q = "".join(ch for ch in value if ch.isdigit())[:11]

    async def _reload(self):  # only from a guarded handler
        page = await run_db(list_outbox, phone=self.phone_q, sort=self._sort(), offset=self._offset(), limit=PAGE_SIZE)
        self.total = page.total
        self.rows = [
            {
                "at": fmt_local(m.created_at, seconds=True),
                "phone": mask_phone(m.phone),
                "content": m.content,
                "provider": PROVIDER_LABELS.get(m.provider, m.provider),
                "provider_code": m.provider,
                "status": STATUS_LABELS.get(m.status, m.status),
                "failed": "1" if m.status == "failed" else "",
            }
            for m in page.rows
        ]
        return None
