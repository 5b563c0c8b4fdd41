"""短信记录 page: every message the platform sent or (in dev) recorded."""

from __future__ import annotations

import reflex as rx

from gc_admin.integrations.sms.state import SmsState
from gc_admin.ui.components import Col, empty_row, filter_bar, list_table, table_header
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
    s = SmsState
    return rx.vstack(
        filter_bar(s, rx.input(placeholder="按手机号搜索", value=s.phone_q, on_change=s.set_phone_q, width="14rem")),
        list_table(s, table_header(s, Col("时间", "created_at"), Col("手机号", "phone"), "内容", Col("通道", "provider"),
                                   Col("状态", "status")),
                   _row, empty_row(5)),
        width="100%",
        spacing="3",
    )
