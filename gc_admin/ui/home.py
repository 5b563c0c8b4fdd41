"""工作台 (home): a greeting and the day's numbers every role may see."""

from __future__ import annotations

import datetime as dt

import reflex as rx

from gc_admin.accounts.service import count_enabled_staff
from gc_admin.audit.service import count_since as audit_since
from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.core.roles import SECTIONS
from gc_admin.integrations.sms.service import count_since as sms_since
from gc_admin.ui.auth import AuthState, denied, require, run_db
from gc_admin.ui.components import stat_card
from gc_admin.ui.layout import staff_page
from gc_admin.users.service import count_users


def _counts(session) -> dict[str, int]:
    local_midnight = utcnow().astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    since = local_midnight.astimezone(dt.timezone.utc)
    return {
        "users": count_users(session),
        "staff": count_enabled_staff(session),
        "audit_today": audit_since(session, since),
        "sms_today": sms_since(session, since),
    }


class HomeState(rx.State):
    users: int = 0
    staff: int = 0
    audit_today: int = 0
    sms_today: int = 0

    @rx.event
    async def load(self):
        if await require(self, "home") is None:
            return await denied(self)
        c = await run_db(_counts)
        self.users, self.staff, self.audit_today, self.sms_today = c["users"], c["staff"], c["audit_today"], c["sms_today"]
        return None


def _shortcut(key: str, label: str, route: str, icon: str) -> rx.Component:
    return rx.cond(
        AuthState.sections.contains(key),
        rx.link(rx.card(rx.hstack(rx.icon(icon, size=18), rx.text(label), align="center")), href=route, underline="none"),
    )


@staff_page("home", "工作台")
def home_page() -> rx.Component:
    return rx.vstack(
        rx.text("您好，", AuthState.display_name, "（", AuthState.role_label, "）。", size="3", data_testid="greeting"),
        rx.hstack(
            stat_card("注册用户", HomeState.users, "users", "stat-users"),
            stat_card("在岗员工", HomeState.staff, "id-card", "stat-staff"),
            stat_card("今日操作", HomeState.audit_today, "scroll-text", "stat-audit"),
            stat_card("今日短信", HomeState.sms_today, "message-square", "stat-sms"),
            wrap="wrap",
            spacing="4",
        ),
        rx.heading("快捷入口", size="3", padding_top="1rem"),
        rx.hstack(*[_shortcut(s.key, s.label, s.route, s.icon) for s in SECTIONS if s.key != "home"], wrap="wrap", spacing="3"),
        spacing="3",
        width="100%",
    )
