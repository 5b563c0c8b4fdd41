"""司机管理 page: the designated-driver roster for the dispatcher (status filter, search, paging; add a driver;
rest / available; enable / disable). Dispatching is on the 订单看板 (assign a driver to a driver order)."""

from __future__ import annotations

import reflex as rx

from gc_admin.orders.drivers.state import STATUS_FILTERS, DriversState
from gc_admin.ui.components import dialog, empty_row, form_actions, header, pager
from gc_admin.ui.layout import staff_page

_COLOR = {"available": "green", "busy": "amber", "off": "gray"}


def _row(row: rx.Var) -> rx.Component:
    busy = row["status"] == "busy"
    return rx.table.row(
        rx.table.cell(row["name"]),
        rx.table.cell(row["phone"]),
        rx.table.cell(rx.badge(row["status_label"], color_scheme=rx.match(
            row["status"], *[(k, v) for k, v in _COLOR.items()], "gray"))),
        rx.table.cell(row["order"]),
        rx.table.cell(rx.cond(row["active"] == "1", rx.text("启用"), rx.text("停用", color_scheme="gray"))),
        rx.table.cell(row["updated"], white_space="nowrap"),
        rx.table.cell(rx.hstack(
            rx.cond(row["status"] == "off",
                    rx.button("设为空闲", size="1", variant="soft", on_click=DriversState.set_status(row["id"], "available")),
                    rx.button("设为休息", size="1", variant="soft", disabled=busy,
                              on_click=DriversState.set_status(row["id"], "off"))),
            rx.cond(row["active"] == "1",
                    rx.button("停用", size="1", variant="soft", color_scheme="red", disabled=busy,
                              on_click=DriversState.set_active(row["id"], False)),
                    rx.button("启用", size="1", variant="soft", on_click=DriversState.set_active(row["id"], True))),
            spacing="2")),
        data_testid="driver-row",
    )


def _create_dialog() -> rx.Component:
    return dialog(
        "添加司机",
        rx.form(
            rx.vstack(
                rx.input(name="name", placeholder="姓名", required=True, max_length=32, width="100%"),
                rx.input(name="phone", placeholder="手机号（11 位）", required=True, max_length=20, width="100%"),
                rx.cond(DriversState.form_error != "", rx.text(DriversState.form_error, color_scheme="red", size="2")),
                form_actions(rx.button("添加", type="submit")),
                width="100%",
            ),
            on_submit=DriversState.create,
            reset_on_submit=False,
        ),
        open=DriversState.create_open,
        on_open_change=DriversState.open_create,
        trigger=rx.button(rx.icon("plus", size=16), "添加司机"),
    )


@staff_page("drivers", "司机管理")
def drivers_page() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.select.root(
                rx.select.trigger(placeholder="全部状态"),
                rx.select.content(*[rx.select.item(label, value=key or "all") for key, label in STATUS_FILTERS.items()]),
                value=rx.cond(DriversState.status_filter == "", "all", DriversState.status_filter),
                on_change=DriversState.filter_status,
            ),
            rx.form(
                rx.hstack(
                    rx.input(placeholder="姓名或手机号", value=DriversState.q, on_change=DriversState.set_q, width="14rem"),
                    rx.button("查询", type="submit", variant="soft"),
                ),
                on_submit=lambda _form: DriversState.search(),
            ),
            rx.spacer(),
            _create_dialog(),
            width="100%",
        ),
        rx.table.root(
            header("姓名", "手机号", "状态", "服务订单", "启用", "更新时间", "操作"),
            rx.table.body(rx.cond(DriversState.rows.length() > 0, rx.foreach(DriversState.rows, _row), empty_row(7))),
            width="100%",
            variant="surface",
        ),
        pager(DriversState.total, DriversState.page, DriversState.pages, DriversState.prev_page,
              DriversState.next_page),
        width="100%",
        spacing="3",
    )
