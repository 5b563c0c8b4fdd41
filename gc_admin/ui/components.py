"""Small building blocks for lists and forms."""

from __future__ import annotations

from typing import Any

import reflex as rx


def stat_card(label: str, value: Any, icon: str, testid: str) -> rx.Component:
    return rx.card(
        rx.hstack(
            rx.icon(icon, size=28, color=rx.color("accent", 10)),
            rx.vstack(
                rx.text(label, size="2", color_scheme="gray"),
                rx.text(value, size="6", weight="bold", data_testid=testid),
                spacing="0",
            ),
            align="center",
            spacing="4",
        ),
        min_width="12rem",
    )


def pager(total: Any, page: Any, pages: Any, prev_event: Any, next_event: Any) -> rx.Component:
    """``共 N 条 · 第 p / P 页`` with previous/next buttons."""
    return rx.hstack(
        rx.text("共 ", total, " 条", size="2", color_scheme="gray", data_testid="total"),
        rx.spacer(),
        rx.button("上一页", size="1", variant="soft", on_click=prev_event, disabled=page <= 1),
        rx.text(page, " / ", pages, size="2"),
        rx.button("下一页", size="1", variant="soft", on_click=next_event, disabled=page >= pages),
        align="center",
        width="100%",
        padding_top="0.75rem",
    )


def empty_row(colspan: int, text: str = "暂无数据") -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.center(rx.text(text, color_scheme="gray"), padding="1.5rem"), col_span=colspan),
    )


def header(*labels: str) -> rx.Component:
    return rx.table.header(rx.table.row(*[rx.table.column_header_cell(lbl) for lbl in labels]))


def coming_soon(what: str, bullets: list[str]) -> rx.Component:
    return rx.callout.root(
        rx.callout.icon(rx.icon("construction")),
        rx.callout.text(
            rx.text(what, weight="bold"),
            rx.unordered_list(*[rx.list_item(b) for b in bullets]),
        ),
        color_scheme="amber",
        data_testid="coming-soon",
    )


def form_actions(submit: rx.Component) -> rx.Component:
    """The footer of every dialog form: 取消 (closes, never submits) and the submit button."""
    return rx.hstack(
        rx.dialog.close(rx.button("取消", variant="soft", color_scheme="gray", type="button")),
        submit,
        justify="end",
        spacing="3",
        width="100%",
    )
