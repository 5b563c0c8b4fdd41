"""工作台 (home): a greeting and the figures this member's role may see (``gc_admin.home.service``).

Every figure is rendered statically (an icon needs a literal name) and shown only when the service
returned it for this member: the supplier and the insurer no longer see platform-wide numbers.
"""

from __future__ import annotations

import reflex as rx

from gc_admin.core.roles import SECTIONS
from gc_admin.home.service import FIGURES, home_figures
from gc_admin.ui.auth import AuthState, denied, require, run_db
from gc_admin.ui.components import stat_card
from gc_admin.ui.layout import staff_page


class HomeState(rx.State):
    shown: list[str] = []  # figure keys, in FIGURES order
    values: dict[str, str] = {}  # figure key -> formatted value
    note: str = ""

    @rx.event
    async def load(self):
        p = await require(self, "home")
        if p is None:
            self.shown, self.values, self.note = [], {}, ""
            return await denied(self)
        figures = await run_db(lambda s: home_figures(s, principal=p))
        self.shown = [f.key for f in FIGURES if f.key in figures.values]
        self.values = {k: f"{v:,}" for k, v in figures.values.items()}
        self.note = figures.note
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
