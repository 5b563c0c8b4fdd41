"""操作日志 page state."""

from __future__ import annotations

import datetime as dt

from typing import ClassVar

import reflex as rx

from gc_admin.audit import service
from gc_admin.core.clock import SHANGHAI, fmt_local
from gc_admin.core.params import parse_day
from gc_admin.ui.auth import guarded, public, run_db
from gc_admin.ui.paging import PAGE_SIZE, PagedMixin

SECTION = "audit"


def local_day_start(day: str, *, next_day: bool = False) -> dt.datetime | None:
    """``2026-11-21`` (Asia/Shanghai) -> that midnight in UTC (or the next one); junk or out of range -> None."""
    d = parse_day(day)
    if d is None:
        return None
    if next_day:
        d += dt.timedelta(days=1)
    return dt.datetime(d.year, d.month, d.day, tzinfo=SHANGHAI).astimezone(dt.timezone.utc)
ACTOR_TYPES = service.ACTOR_TYPES


class AuditState(PagedMixin, rx.State):
    SECTION: ClassVar[str] = SECTION  # the paging handlers check it (ui.paging)
    SORT_KEYS: ClassVar = service.AUDIT_SORT_KEYS
    action: str = "all"
    actor: str = ""
    target: str = ""
    since: str = ""  # YYYY-MM-DD, Asia/Shanghai
    until: str = ""

    @rx.event
    @public
    def set_since(self, value: str):
        self.since = value[:10]

    @rx.event
    @public
    def set_until(self, value: str):
        self.until = value[:10]

    @rx.event
    @public
    def set_actor(self, value: str):
        self.actor = value[:64]

    @rx.event
    @public
    def set_target(self, value: str):
        self.target = value[:64]

    @rx.event
    @guarded(SECTION)
    async def set_action(self, value: str):
        self.action = value
        self.page = 1
        return await self._reload()

    def _filters(self) -> dict:
        return {"action": "" if self.action == "all" else self.action, "actor": self.actor.strip(),
                "target": self.target.strip(), "since": local_day_start(self.since),
                "until": local_day_start(self.until, next_day=True), "sort": self._sort()}

    async def _reload(self):  # only from a guarded handler
        page = await run_db(service.list_audit, **self._filters(), offset=self._offset(), limit=PAGE_SIZE)
        self.total = page.total
        self.rows = [
            {
                "at": fmt_local(r.at, seconds=True),
                "actor": f"{ACTOR_TYPES.get(r.actor_type, r.actor_type)} · {r.actor_name or r.actor_id or ''}",
                "action": service.ACTION_LABELS.get(r.action, r.action),
                "target": service.target_label(r.target_type, r.target_id),
                "target_code": f"{r.target_type or ''} {r.target_id or ''}".strip(),
                "summary": r.summary,
                "ip": r.ip or "—",
            }
            for r in page.rows
        ]
        return None

    @rx.event
    @guarded(SECTION)
    async def export(self):
        """Every log row matching the filters (not just this page) as Excel."""
        async for event in self._export("audit", self._filters()):
            yield event
