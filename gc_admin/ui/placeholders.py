"""Sections whose capability is built in a later issue: the page exists, is access-checked,
and says plainly what it will do. Each is replaced by its feature's own page."""

from __future__ import annotations

import reflex as rx

from gc_admin.ui.components import coming_soon
from gc_admin.ui.layout import staff_page

PLANNED: dict[str, tuple[str, str, list[str]]] = {
    "settlement": ("结算报表", "结算报表即将上线", ["按结算周期生成与人保的结算单", "对照 420 万/年合同额度", "导出 Excel，双方确认后冻结"]),
}


def make_placeholder(key: str):
    title, what, bullets = PLANNED[key]

    @staff_page(key, title)
    def placeholder() -> rx.Component:
        return coming_soon(what, bullets)

    placeholder.__name__ = f"{key}_page"
    return placeholder
