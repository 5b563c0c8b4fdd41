"""操作日志 page: who did what, when; filterable; read-only."""

from __future__ import annotations

import reflex as rx

from gc_admin.audit.service import ACTION_LABELS
from gc_admin.audit.state import AuditState
from gc_admin.ui.components import Col, empty_row, export_button, pager, table_header
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
    return rx.vstack(
        rx.form(
            rx.hstack(
                rx.select.root(
                    rx.select.trigger(placeholder="全部操作"),
                    rx.select.content(rx.select.item("全部操作", value="all"),
                                      *[rx.select.item(label, value=key) for key, label in ACTION_LABELS.items()]),
                    value=AuditState.action,
                    on_change=AuditState.set_action,
                ),
                rx.input(placeholder="操作人", value=AuditState.actor, on_change=AuditState.set_actor, width="10rem"),
                rx.input(placeholder="对象 ID / 类型（如 订单）", value=AuditState.target, on_change=AuditState.set_target, width="10rem"),
                rx.text("从", size="2"),
                rx.input(type="date", value=AuditState.since, on_change=AuditState.set_since, width="9.5rem"),
                rx.text("至", size="2"),
                rx.input(type="date", value=AuditState.until, on_change=AuditState.set_until, width="9.5rem"),
                rx.button("查询", type="submit", variant="soft"),
                rx.spacer(),
                export_button(AuditState, "audit-export"),
                align="center",
                width="100%",
                wrap="wrap",
            ),
            on_submit=lambda _form: AuditState.search(),
            width="100%",
        ),
        rx.table.root(
            table_header(AuditState, Col("时间", "at"), Col("操作人", "actor"), Col("操作", "action"),
                         Col("对象", "target"), "说明", Col("IP", "ip")),
            rx.table.body(rx.cond(AuditState.rows.length() > 0, rx.foreach(AuditState.rows, _row), empty_row(6))),
            width="100%",
            variant="surface",
            data_testid="audit-table",
        ),
        pager(AuditState.total, AuditState.page, AuditState.pages, AuditState.prev_page, AuditState.next_page),
        width="100%",
        spacing="3",
    )
