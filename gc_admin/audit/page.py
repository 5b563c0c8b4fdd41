"""操作日志 page: who did what, when; filterable; read-only."""

from __future__ import annotations

import reflex as rx

from gc_admin.audit.service import ACTION_LABELS
from gc_admin.audit.state import AuditState
from gc_admin.ui.components import Col, empty_row, filter_bar, filter_select, list_table, table_header
from gc_admin.ui.layout import staff_page


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["at"], white_space="nowrap"),
        rx.table.cell(row["actor"]),
        rx.table.cell(rx.badge(row["action"], variant="soft")),
        rx.table.cell(rx.vstack(
            rx.text(row["target"], size="2", white_space="nowrap"),
            rx.cond(row["target_code"] != "", rx.text(row["target_code"], size="1", color_scheme="gray",
                                                       font_family="var(--code-font-family)")),
            spacing="0")),
        rx.table.cell(row["summary"]),
        rx.table.cell(row["ip"]),
        data_testid="audit-row",
    )


@staff_page("audit", "操作日志")
def audit_page() -> rx.Component:
    s = AuditState
    return rx.vstack(
        filter_bar(
            s,
            filter_select(s.action, s.set_action, "全部操作", ACTION_LABELS),
            rx.input(placeholder="操作人", value=s.actor, on_change=s.set_actor, width="10rem"),
            rx.input(placeholder="对象 ID / 类型（如 订单）", value=s.target, on_change=s.set_target, width="10rem"),
            rx.text("从", size="2"),
            rx.input(type="date", value=s.since, on_change=s.set_since, width="9.5rem"),
            rx.text("至", size="2"),
            rx.input(type="date", value=s.until, on_change=s.set_until, width="9.5rem"),
            export_testid="audit-export",
        ),
        list_table(s, table_header(s, Col("时间", "at"), Col("操作人", "actor"), Col("操作", "action"),
                                   Col("对象", "target"), "说明", Col("IP", "ip")),
                   _row, empty_row(6), data_testid="audit-table"),
        width="100%",
        spacing="3",
    )
