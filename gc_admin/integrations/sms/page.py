"""短信记录 page: every message the platform sent or (in dev) recorded."""

from __future__ import annotations

import reflex as rx

from gc_admin.integrations.sms.state import SmsState
from gc_admin.ui.components import empty_row, header, pager
from gc_admin.ui.layout import staff_page


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["at"], white_space="nowrap"),
        rx.table.cell(row["phone"]),
        rx.table.cell(row["content"]),
        rx.table.cell(row["provider"]),
        rx.table.cell(rx.badge(row["status"], color_scheme=rx.cond(row["failed"] == "1", "red", "gray"))),
        data_testid="sms-row",
    )


@staff_page("sms", "短信记录")
def sms_page() -> rx.Component:
    return rx.vstack(
        rx.form(
            rx.hstack(
                rx.input(placeholder="按手机号搜索", value=SmsState.phone_q, on_change=SmsState.set_phone_q, width="14rem"),
                rx.button("查询", type="submit", variant="soft"),
            ),
            on_submit=lambda _form: SmsState.search(),
        ),
        rx.table.root(
            header("时间", "手机号", "内容", "通道", "状态"),
            rx.table.body(rx.cond(SmsState.rows.length() > 0, rx.foreach(SmsState.rows, _row), empty_row(5))),
            width="100%",
            variant="surface",
        ),
        pager(SmsState.total, SmsState.page, SmsState.pages, SmsState.prev_page, SmsState.next_page),
        width="100%",
        spacing="3",
    )
