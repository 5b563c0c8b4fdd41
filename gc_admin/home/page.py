"""工作台 (home) page: a greeting and the figures this member's role may see (``gc_admin.home.service``).

Every figure is rendered statically (an icon needs a literal name) and shown only when the service
returned it for this member: the supplier and the insurer no longer see platform-wide numbers.
"""

from __future__ import annotations

import reflex as rx

from gc_admin.core.roles import SECTIONS
from gc_admin.home.service import FIGURES
from gc_admin.home.state import HomeState
from gc_admin.ui.auth import AuthState
from gc_admin.ui.components import stat_card
from gc_admin.ui.layout import staff_page


def _shortcut(key: str, label: str, route: str, icon: str) -> rx.Component:
    return rx.cond(
        AuthState.sections.contains(key),
        rx.link(rx.card(rx.hstack(rx.icon(icon, size=18), rx.text(label), align="center")), href=route, underline="none"),
    )


@staff_page("home", "工作台")
def home_page() -> rx.Component:
    return rx.vstack(
        rx.text("您好，", AuthState.display_name, "（", AuthState.role_label, "）。", size="3", data_testid="greeting"),
        rx.cond(HomeState.note != "", rx.text(HomeState.note, size="2", color_scheme="gray", data_testid="home-note")),
        rx.hstack(
            *[rx.cond(HomeState.shown.contains(f.key), stat_card(f.label, HomeState.values[f.key], f.icon, f"stat-{f.key}"))
              for f in FIGURES],
            wrap="wrap",
            spacing="4",
        ),
        rx.heading("快捷入口", size="3", padding_top="1rem"),
        rx.hstack(*[_shortcut(s.key, s.label, s.route, s.icon) for s in SECTIONS if s.key != "home"], wrap="wrap", spacing="3"),
        spacing="3",
        width="100%",
    )
