"""订单导入与批量发货 (/orders/imports): ship goods by sheet, import a third-party channel's orders."""

from __future__ import annotations

import reflex as rx

from gc_admin.core.uploads import limits as upload_limits
from gc_admin.orders.imports.service import FIELDS
from gc_admin.orders.imports.state import ORDERS_UPLOAD, SHIP_UPLOAD, OrderImportsState as S
from gc_admin.orders.models import ORDER_TYPES
from gc_admin.ui.components import confirm_dialog, empty_row, header
from gc_admin.ui.layout import staff_page

ACCEPT = {"text/csv": [".csv"], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": [".xlsx"]}


def _upload(upload_id: str, label: str, handler, testid: str) -> rx.Component:
    return rx.upload.root(
        rx.button(rx.icon("file-up", size=14), label, variant="soft", type="button"),
        id=upload_id, multiple=False, max_files=1, max_size=upload_limits().max_bytes, accept=ACCEPT,
        on_drop=handler(rx.upload_files(upload_id=upload_id)), data_testid=testid,
    )


def _report(rows, key_label: str, testid: str) -> rx.Component:
    return rx.table.root(
        header("行号", key_label, "结果", "说明"),
        rx.table.body(rx.cond(rows.length() > 0, rx.foreach(rows, lambda r: rx.table.row(
            rx.table.cell(r["line"]), rx.table.cell(r["key"]), rx.table.cell(r["outcome"]),
            rx.table.cell(r["message"]))), empty_row(4, "上传文件后在此预览逐行结果"))),
        width="100%", size="1", data_testid=testid,
    )


def _sheet_steps(upload_id: str, upload_label: str, preview, upload_testid: str, confirm: str, summary, ready,
                 apply, testid: str, rows, key_label: str) -> tuple[rx.Component, ...]:
    """Upload → preview summary → confirm (a dialog stating the summary) → the per-row report."""
    return (
        rx.hstack(
            _upload(upload_id, upload_label, preview, upload_testid),
            confirm_dialog(confirm, summary, confirm=rx.alert_dialog.action(
                rx.button(confirm, on_click=apply, data_testid=f"{testid}-apply")),
                trigger=rx.button(f"{confirm}…", disabled=~ready, data_testid=f"{testid}-confirm")),
            spacing="3", align="center"),
        rx.cond(summary != "", rx.text(summary, size="2", data_testid=f"{testid}-summary")),
        _report(rows, key_label, f"{testid}-report"),
    )


def _shipments() -> rx.Component:
    return rx.card(rx.vstack(
        rx.heading("批量发货", size="4"),
        rx.text("上传发货表（列：订单号、快递公司、快递单号；CSV 或 Excel）。先预览，确认后发货；重复上传同一表格不会重复发货。",
                size="1", color_scheme="gray"),
        *_sheet_steps(SHIP_UPLOAD, "上传发货表并预览", S.preview_shipments, "ship-upload", "确认发货", S.ship_summary,
                      S.ship_ready, S.apply_shipments, "ship", S.ship_rows, "订单号"),
        spacing="3", width="100%"), width="100%")


def _mapping_row(field: str, label: str) -> rx.Component:
    return rx.hstack(rx.text(label, width="9rem", size="2"),
                     rx.input(value=S.mapping.get(field, ""), on_change=lambda v: S.set_map_field(field, v),
                              placeholder="渠道文件中的列名", width="14rem", data_testid=f"map-{field}"),
                     align="center")


def _orders() -> rx.Component:
    return rx.card(rx.vstack(
        rx.heading("第三方订单导入", size="4"),
        rx.hstack(rx.input(value=S.source, on_change=S.set_source, placeholder="渠道编码，如 meituan",
                           data_testid="import-source"),
                  rx.button("读取列映射", variant="soft", on_click=S.load_mapping), spacing="3"),
        rx.vstack(*[_mapping_row(f, label + ("（必填）" if req else "")) for f, (label, req) in FIELDS.items()],
                  rx.hstack(rx.text("默认订单类型", width="9rem", size="2"),
                            rx.select.root(
                                rx.select.trigger(data_testid="import-default-type"),
                                rx.select.content(*[rx.select.item(label, value=key) for key, label in ORDER_TYPES.items()]),
                                value=S.default_type, on_change=S.set_default_type)),
                  rx.button("保存列映射", on_click=S.save_mapping, data_testid="map-save"), spacing="2"),
        *_sheet_steps(ORDERS_UPLOAD, "上传订单文件并预览", S.preview_orders, "orders-upload", "确认导入", S.imp_summary,
                      S.imp_ready, S.apply_orders, "import", S.imp_rows, "渠道订单号"),
        spacing="3", width="100%"), width="100%")


@staff_page("orders", "订单导入与批量发货")
def order_imports_page() -> rx.Component:
    return rx.vstack(
        rx.cond(S.error != "", rx.callout(S.error, icon="triangle-alert", color_scheme="red", size="1", width="100%",
                                          data_testid="imports-error")),
        rx.cond(S.can_ship, _shipments()),
        rx.cond(S.can_import, _orders()),
        rx.cond(~S.can_ship & ~S.can_import, rx.text("当前账号没有发货或导入订单的权限。", color_scheme="gray")),
        spacing="4", width="100%")
