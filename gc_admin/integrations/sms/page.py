"""短信记录 page: every message the platform sent or (in dev) recorded."""

from __future__ import annotations

import reflex as rx

from gc_admin.integrations.sms.state import SmsState
from gc_admin.ui.components import Col, empty_row, pager, table_header
from gc_admin.ui.layout import staff_page


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["at"], white_space="nowrap"),
        rx.table.cell(row["phone"]),
        rx.table.cell(row["content"]),
        rx.table.cell(rx.vstack(rx.text(row["provider"], size="2", white_space="nowrap"),
                                rx.text(row["provider_code"], size="1", color_scheme="gray",
                                        font_family="var(--code-font-family)"), spacing="0")),
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
            table_header(SmsState, Col("时间", "created_at"), Col("手机号", "phone"), "内容", Col("通道", "provider"),
                         Col("状态", "status")),
            rx.table.body(rx.cond(SmsState.rows.length() > 0, rx.foreach(SmsState.rows, _row), empty_row(5))),
            width="100%",
            variant="surface",
        ),
        pager(SmsState.total, SmsState.page, SmsState.pages, SmsState.prev_page, SmsState.next_page),
        width="100%",
        spacing="3",
    )
