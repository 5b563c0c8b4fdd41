"""订单看板 page: the kanban board (orders/kanban/), the order panel, staff actions and refunds."""

from __future__ import annotations

import reflex as rx

from gc_admin.orders.kanban.page import kanban_board
from gc_admin.orders.kanban.state import KanbanState
from gc_admin.orders.state import OrdersState
from gc_admin.ui.components import confirm_dialog, dialog, form_actions
from gc_admin.ui.layout import staff_page

NUM = {"text_align": "right", "white_space": "nowrap", "font_variant_numeric": "tabular-nums"}
STATUS_COLORS = {"created": "gray", "paid": "amber", "accepted": "blue", "in_fulfilment": "indigo",
                 "completed": "green", "cancelled": "gray", "refund_requested": "orange", "refunded": "purple",
                 "after_sales": "red"}
REFUND_COLORS = {"pending": "amber", "processing": "blue", "succeeded": "green", "failed": "red"}


def _color(value: rx.Var) -> rx.Var:
    """An action's button colour (red / green / orange, else blue)."""
    return rx.match(value, ("red", "red"), ("green", "green"), ("orange", "orange"), "blue")


def status_badge(status: rx.Var, label: rx.Var, **props) -> rx.Component:
    return rx.badge(label, variant="soft", color_scheme=rx.match(status, *STATUS_COLORS.items(), "gray"), **props)


def _kv(label: str, value, testid: str = "", **props) -> rx.Component:
    return rx.hstack(
        rx.text(label, size="2", color_scheme="gray", min_width="5.5rem"),
        rx.text(value, size="2", **({"data_testid": testid} if testid else {}), **props),
        align="baseline", spacing="2",
    )


def _section(title: str, *children, **props) -> rx.Component:
    return rx.vstack(rx.text(title, weight="bold", size="2"), *children, spacing="2", width="100%", **props)


def _steps() -> rx.Component:
    s = OrdersState
    return rx.table.root(
        rx.table.header(rx.table.row(rx.table.column_header_cell("价格明细"), rx.table.column_header_cell("出资方"),
                                     rx.table.column_header_cell("金额", **NUM))),
        rx.table.body(rx.foreach(s.steps, lambda st: rx.table.row(
            rx.table.cell(rx.text(st["label"], weight=rx.cond(st["kind"] == "payable", "bold", "regular"))),
            rx.table.cell(st["funded_by"]),
            rx.table.cell(rx.text(st["amount"], weight=rx.cond(st["kind"] == "payable", "bold", "regular")), **NUM),
            data_testid="price-step",
        ))),
        size="1", variant="ghost", width="100%",
    )


def _lines() -> rx.Component:
    s = OrdersState
    return rx.table.root(
        rx.table.header(rx.table.row(rx.table.column_header_cell("商品"), rx.table.column_header_cell("数量", **NUM),
                                     rx.table.column_header_cell("单价", **NUM), rx.table.column_header_cell("小计", **NUM))),
        rx.table.body(rx.foreach(s.lines, lambda ln: rx.table.row(
            rx.table.cell(ln["name"]), rx.table.cell(ln["qty"], **NUM), rx.table.cell(ln["unit"], **NUM),
            rx.table.cell(ln["amount"], **NUM)))),
        size="1", variant="ghost", width="100%",
    )


def _history() -> rx.Component:
    s = OrdersState
    return rx.vstack(
        rx.foreach(s.history, lambda h: rx.hstack(
            rx.text(h["at"], size="1", color_scheme="gray", white_space="nowrap", min_width="9.5rem"),
            rx.badge(h["action"], variant="soft", size="1"),
            rx.cond(h["changed"] == "1", rx.text(h["from"], " → ", h["to"], size="1", white_space="nowrap")),
            rx.text(h["reason"], size="1", color_scheme="gray"),
            rx.spacer(),
            rx.text(h["by"], size="1", color_scheme="gray", white_space="nowrap"),
            align="center", spacing="2", width="100%", data_testid="history-row",
        )),
        spacing="1", width="100%", padding="0.5rem 0.75rem", background=rx.color("gray", 2),
        border_radius="var(--radius-2)",
    )


def _refunds() -> rx.Component:
    s = OrdersState
    return rx.cond(
        s.refunds.length() > 0,
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, **(NUM if h == "金额" else {"white_space": "nowrap"}))
                                           for h in ("退款单号", "金额", "状态", "原因", "操作人 / 时间", "")])),
            rx.table.body(rx.foreach(s.refunds, lambda r: rx.table.row(
                rx.table.cell(rx.code(r["no"], variant="ghost", size="1", data_testid="refund-no")),
                rx.table.cell(rx.vstack(
                    rx.text(r["amount"], weight="medium", data_testid="refund-amount"),
                    rx.text(r["full"], rx.cond(r["coupons"] != "0", rx.text.span(" · 收回 ", r["coupons"], " 张券"), ""),
                            size="1", color_scheme="gray", white_space="nowrap"),
                    spacing="0", align="end"), **NUM),
                rx.table.cell(rx.vstack(
                    rx.badge(r["status_label"], variant="soft",
                             color_scheme=rx.match(r["status"], *REFUND_COLORS.items(), "gray"),
                             data_testid="refund-status"),
                    rx.cond(r["error"] != "", rx.text(r["error"], size="1", color_scheme="red")),
                    spacing="1")),
                rx.table.cell(rx.text(r["reason"], size="2"), min_width="10rem"),
                rx.table.cell(rx.vstack(
                    rx.text(r["by"], size="2"),
                    rx.text("申请 ", r["at"], size="1", color_scheme="gray", white_space="nowrap"),
                    rx.text("到账 ", r["done_at"], size="1", color_scheme="gray", white_space="nowrap"),
                    spacing="0")),
                rx.table.cell(rx.cond(
                    (r["open"] == "1") & s.can_refund,
                    rx.button(rx.icon("refresh-cw", size=12), "刷新状态", size="1", variant="soft",
                              on_click=s.sync_refund(r["id"]), data_testid="refund-sync"))),
                data_testid="refund-row",
            ))),
            size="1", variant="surface", width="100%", data_testid="refunds-table",
        ),
        rx.text("暂无退款", size="1", color_scheme="gray"),
    )


def _panel_actions() -> rx.Component:
    s = OrdersState
    d = s.detail
    return rx.hstack(
        rx.foreach(s.actions, lambda a: rx.button(
            a["label"], size="2", variant=rx.cond(a["key"] == "cancel", "soft", "solid"),
            color_scheme=_color(a["color"]),
            on_click=s.open_action(d["id"], a["key"]), data_testid="action-" + a["key"])),
        rx.cond(s.can_refund,
                rx.button(rx.icon("undo-2", size=14), "退款", size="2", color_scheme="red", variant="outline",
                          disabled=d["can_refund"] != "1", on_click=s.open_refund, data_testid="open-refund")),
        rx.cond(d["refund_note"] != "", rx.text(d["refund_note"], size="1", color_scheme="gray")),
        spacing="3", align="center", wrap="wrap",
    )


def _detail_dialog() -> rx.Component:
    s = OrdersState
    d = s.detail
    return dialog(
        rx.hstack(rx.text("订单 "), rx.code(d["order_no"], data_testid="detail-order-no"),
                  status_badge(d["status"], d["status_label"], data_testid="detail-status"),
                  align="center", spacing="2"),
        rx.cond(d["anomaly"] != "", rx.callout(d["anomaly"], icon="triangle-alert", color_scheme="red", size="1")),
        rx.scroll_area(
            rx.vstack(
                _panel_actions(),
                rx.grid(
                    _section("商品", _lines(),
                             rx.cond(d["details"] != "", rx.text(d["details"], size="2")),
                             rx.cond(d["coupons"] != "", rx.text("已发放券 ", d["coupons"], " 张", size="2")),
                             rx.cond(d["fulfilment"] != "", rx.text("履约：", d["fulfilment"], size="2",
                                                                    data_testid="detail-fulfilment")),
                             rx.cond(d["claim"] != "", rx.text(d["claim"], size="2", data_testid="detail-claim"))),
                    rx.cond(d["case"] != "", _section("售后工单", rx.text(d["case"], size="2", data_testid="detail-case"),
                                                      rx.cond(d["case_calls"] != "",
                                                              rx.text("回访：", d["case_calls"], size="2")))),
                    _section("价格明细（谁出资）", _steps()),
                    columns=rx.breakpoints(initial="1", md="2"), spacing="5", width="100%",
                ),
                rx.grid(
                    _section(
                        "支付",
                        _kv("实付", d["paid"], "detail-paid"),
                        _kv("已退 / 退款中", d["refunded"], "detail-refunded"),
                        _kv("可退", d["refundable"], "detail-refundable"),
                        rx.cond(d["pay_txn"] != "", rx.fragment(
                            _kv("支付方式", d["pay_provider"]),
                            _kv("微信支付单号", d["pay_txn"], "detail-txn", font_family="var(--code-font-family)"),
                            _kv("支付时间", d["pay_time"]),
                            _kv("入账来源", d["pay_source"]),
                        ), rx.text("尚未支付", size="2", color_scheme="gray")),
                    ),
                    _section("退款", _refunds()),
                    columns=rx.breakpoints(initial="1", md="2fr 3fr"), spacing="5", width="100%",
                ),
                _section("状态记录（谁、何时、为什么）", _history()),
                spacing="5", width="100%", padding_right="0.75rem",
            ),
            max_height="72vh", type="auto", scrollbars="vertical",
        ),
        description=rx.fragment(d["type_label"], " · 用户 ", d["phone"], " · 下单 ", d["created_at"], " · 时效 ", d["age"]),
        actions=(rx.button(rx.icon("refresh-cw", size=12), "刷新", size="1", variant="ghost", on_click=s.refresh,
                           data_testid="detail-refresh"),
                 rx.dialog.close(rx.icon_button(rx.icon("x", size=16), variant="ghost", color_scheme="gray"))),
        open=s.detail_open, on_open_change=s.set_detail_open, max_width="min(76rem, 96vw)", testid="order-detail",
    )


# --- action and refund dialogs ------------------------------------------------------------------------

def _action_dialog() -> rx.Component:
    s = OrdersState
    a = s.act
    return dialog(
        rx.fragment(a["label"], "：订单 ", a["order_no"]),
        rx.form(
            rx.vstack(
                rx.foreach(s.act_fields, lambda f: rx.vstack(
                    rx.text(f["label"], size="2", weight="medium"),
                    rx.input(name=f["name"], max_length=64, width="100%", data_testid="action-field-" + f["name"]),
                    spacing="1", width="100%")),
                rx.text(rx.cond(a["reason_required"] == "1", "原因（必填）", "备注（选填）"), size="2",
                        weight="medium"),
                rx.text_area(name="reason", max_length=200, rows="3", width="100%", data_testid="action-reason",
                             placeholder=rx.cond(a["reason_required"] == "1", "请填写原因，将记入订单记录",
                                                 "可填写备注，将记入订单记录")),
                rx.cond(s.act_error != "", rx.callout(s.act_error, icon="triangle-alert", color_scheme="red",
                                                      size="1", width="100%", data_testid="action-error")),
                form_actions(rx.button("确认", a["label"], type="submit", loading=s.act_busy,
                                       data_testid="action-confirm", color_scheme=_color(a["color"]))),
                spacing="3", width="100%",
            ),
            on_submit=s.confirm_action,
            reset_on_submit=False,
        ),
        description=a["hint"],
        open=s.act_open, on_open_change=s.set_act_open, max_width="30rem", testid="action-dialog",
    )


def _refund_dialog() -> rx.Component:
    s = OrdersState
    d = s.detail
    return dialog(
        rx.fragment("退款：订单 ", d["order_no"]),
        rx.form(
            rx.vstack(
                rx.text("退款金额（元）", size="2", weight="medium"),
                rx.input(name="amount", value=s.refund_amount, on_change=s.set_refund_amount, width="12rem",
                         input_mode="decimal", max_length=16, data_testid="refund-amount-input",
                         text_align="right"),
                rx.cond(
                    d["per_coupon"] == "1",
                    rx.vstack(
                        rx.text("购券订单按张退款（已使用的券不可退），可选：", size="1", color_scheme="gray"),
                        rx.hstack(rx.foreach(s.refund_options, lambda o: rx.button(
                            o["label"], size="1", variant="soft", type="button",
                            on_click=s.pick_refund_amount(o["value"]))), spacing="2", wrap="wrap"),
                        spacing="1",
                    ),
                    rx.text("可部分退款；默认为全部可退金额。", size="1", color_scheme="gray"),
                ),
                rx.text("退款原因（必填）", size="2", weight="medium", padding_top="0.5rem"),
                rx.text_area(name="reason", value=s.refund_reason, on_change=s.set_refund_reason, max_length=200,
                             rows="3", width="100%", placeholder="例如：用户申请退款，券未使用",
                             data_testid="refund-reason"),
                rx.cond(s.refund_error != "", rx.callout(s.refund_error, icon="triangle-alert", color_scheme="red",
                                                         size="1", width="100%", data_testid="refund-error")),
                form_actions(rx.button("下一步", type="submit", color_scheme="red", data_testid="refund-next")),
                spacing="2", width="100%",
            ),
            on_submit=s.preview_refund,
            reset_on_submit=False,
        ),
        description=rx.fragment("实付 ", d["paid"], "，已退 / 退款中 ", d["refunded"], "，最多可退 ", d["refundable"], "。"),
        open=s.refund_open, on_open_change=s.set_refund_open, testid="refund-dialog",
    )


def _confirm_dialog() -> rx.Component:
    s = OrdersState
    pv = s.refund_preview
    return confirm_dialog(
        rx.fragment("确认退款：订单 ", pv["order_no"]),
        rx.text.span(pv["text"], data_testid="refund-consequence"),
        extra=(rx.text("退款原因：", pv["reason"], size="2", color_scheme="gray"),),
        back=rx.button("返回修改", variant="soft", color_scheme="gray", on_click=s.back_to_refund_form),
        confirm=rx.button(rx.icon("undo-2", size=14), "确认退款 ", pv["amount"], color_scheme="red",
                          loading=s.refund_busy, on_click=s.confirm_refund, data_testid="refund-confirm"),
        open=s.confirm_open, on_open_change=s.set_confirm_open, testid="refund-confirm-dialog",
    )


@staff_page("orders", "订单看板")
def orders_page() -> rx.Component:
    s = KanbanState
    return rx.vstack(
        rx.hstack(
            rx.cond(s.scope_note != "", rx.callout(s.scope_note, icon="info", color_scheme="blue", size="1",
                                                   data_testid="orders-scope")),
            rx.spacer(),
            rx.cond(s.imports_link, rx.link(rx.button(rx.icon("file-up", size=14), "订单导入与批量发货", variant="soft"),
                                            href="/orders/imports", data_testid="orders-imports-link")),
            width="100%", align="center"),
        rx.cond(s.visible, kanban_board()),
        _detail_dialog(),
        _action_dialog(),
        _refund_dialog(),
        _confirm_dialog(),
        width="100%",
        spacing="4",
    )
