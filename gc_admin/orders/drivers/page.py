"""司机管理 page: the designated-driver roster for the dispatcher (status filter, search, paging; add a driver;
rest / available; enable / disable). Dispatching is on the 订单看板 (assign a driver to a driver order)."""

from __future__ import annotations

import reflex as rx

from gc_admin.orders.drivers.state import STATUS_FILTERS, DriversState
from gc_admin.ui.components import confirm_dialog, dialog, empty_row, form_actions, header, pager
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


def _live_row(row: rx.Var) -> rx.Component:
    def button(label: str, flag: str, event: rx.EventSpec, **kw) -> rx.Component:
        return rx.cond(row[flag] == "1", rx.button(label, size="1", variant="soft", on_click=event, **kw))

    return rx.table.row(
        rx.table.cell(row["order_no"], white_space="nowrap", font_family="var(--code-font-family)"),
        rx.table.cell(rx.badge(row["status_label"])),
        rx.table.cell(row["summary"]),
        rx.table.cell(row["who"]),
        rx.table.cell(rx.hstack(
            button("指派司机", "can_assign", DriversState.pick(row["id"], row["order_no"], "assign")),
            button("转平台", "can_hand_off", DriversState.hand_off(row["id"])),
            button("司机到达", "can_arrive", DriversState.step(row["id"], "arrive")),
            button("开始服务", "can_start", DriversState.step(row["id"], "start")),
            button("结算车费", "can_fee", DriversState.pick(row["id"], row["order_no"], "fee"), color_scheme="amber"),
            spacing="2", wrap="wrap")),
        data_testid="dispatch-row",
    )


def _assign_dialog() -> rx.Component:
    return dialog(
        rx.text("指派司机 · ", DriversState.target_no),
        rx.vstack(
            rx.select.root(
                rx.select.trigger(placeholder="选择空闲的司机", width="100%"),
                rx.select.content(rx.foreach(DriversState.available,
                                             lambda d: rx.select.item(d["label"], value=d["id"]))),
                value=DriversState.assign_driver, on_change=DriversState.set_assign_driver,
            ),
            rx.cond(DriversState.available.length() == 0, rx.text("暂无空闲司机", color_scheme="gray", size="2")),
            form_actions(rx.button("指派", on_click=DriversState.do_assign)),
            width="100%",
        ),
        open=DriversState.assign_open, on_open_change=DriversState.set_assign_open,
    )


def _fee_dialog() -> rx.Component:
    return confirm_dialog(
        rx.text("结算车费 · ", DriversState.target_no),
        "车费由代驾券先抵扣（不超过券面额），剩余部分由用户在小程序用微信支付补付；结算后司机恢复空闲。",
        open=DriversState.fee_open, on_open_change=DriversState.set_fee_open,
        extra=(rx.input(placeholder="车费（元），例如 88.00", value=DriversState.fee_yuan,
                        on_change=DriversState.set_fee_yuan, width="100%"),),
        confirm=rx.button("确认结算", color_scheme="amber", on_click=DriversState.do_set_fee),
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
        rx.heading("待派单与服务中的代驾订单", size="4"),
        rx.table.root(
            header("订单号", "状态", "行程", "司机", "操作"),
            rx.table.body(rx.cond(DriversState.live.length() > 0, rx.foreach(DriversState.live, _live_row),
                                  empty_row(5, "暂无待派单或服务中的订单"))),
            width="100%", variant="surface",
        ),
        rx.cond(DriversState.live_total > DriversState.live.length(),
                rx.text("仅显示等待最久的 20 单，其余见订单看板", size="2", color_scheme="gray")),
        _assign_dialog(),
        _fee_dialog(),
        rx.heading("司机名册", size="4", padding_top="1rem"),
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
