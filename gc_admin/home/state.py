"""工作台 (home) state: the figures this member's role may see (:func:`gc_admin.home.service.home_figures`)."""

from __future__ import annotations

import reflex as rx

from gc_admin.home.service import FIGURES, home_figures
from gc_admin.ui.auth import current_principal, guarded, run_db


class HomeState(rx.State):
    shown: list[str] = []  # figure keys, in FIGURES order
    values: dict[str, str] = {}  # figure key -> formatted value
    note: str = ""

    def _on_denied(self) -> None:
        self.shown, self.values, self.note = [], {}, ""

    @rx.event
    @guarded("home")
    async def load(self):
        p = current_principal()
        figures = await run_db(lambda s: home_figures(s, principal=p))
        self.shown = [f.key for f in FIGURES if f.key in figures.values]
        self.values = {k: f"{v:,}" for k, v in figures.values.items()}
        self.note = figures.note
        return None
