"""用户 page."""

from __future__ import annotations

import reflex as rx

from gc_admin.ui.components import Col, dialog, empty_row, filter_bar, header, list_table, table_header
from gc_admin.ui.layout import staff_page
from gc_admin.customers.state import UsersState


STATUS_COLORS = {"available": "green", "reserved": "blue", "used": "gray", "expired": "orange", "revoked": "red"}


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["id"]),
        rx.table.cell(row["phone"]),
        rx.table.cell(row["wechat"]),
        rx.table.cell(row["city"]),
        rx.table.cell(row["created_at"]),
        rx.table.cell(row["last_login"]),
        rx.table.cell(rx.button("券与记录", size="1", variant="ghost", on_click=UsersState.open_user(row["id"]).stop_propagation),
                      text_align="right"),
        on_click=UsersState.open_user(row["id"]),
        cursor="pointer",
        _hover={"background": rx.color("accent", 2)},
        data_testid="user-row",
    )


def _waiting_row() -> rx.Component:
    """The searched whole number has no user yet, but coupons wait for it."""
    w = UsersState.waiting
    return rx.table.row(
        rx.table.cell(rx.badge("未注册", color_scheme="orange", variant="soft")),
        rx.table.cell(w["phone"]),
        rx.table.cell(rx.text("有 ", w["count"], " 张券等待该手机号（未使用 ", w["available"], " 张），用户注册或绑定该号码后自动归属",
                              size="2", color_scheme="gray"), col_span=4),
        rx.table.cell(rx.button("查看券", size="1", variant="ghost", on_click=UsersState.open_waiting.stop_propagation),
                      text_align="right"),
        on_click=UsersState.open_waiting,
        cursor="pointer",
        _hover={"background": rx.color("accent", 2)},
        data_testid="waiting-phone-row",
    )


def _history() -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.cond(
                    UsersState.history.length() > 0,
                    rx.foreach(UsersState.history, lambda h: rx.hstack(
                        rx.text(h["at"], size="1", color_scheme="gray", white_space="nowrap", min_width="9.5rem"),
                        rx.badge(h["action"], variant="soft", size="1"),
                        rx.text(h["summary"], size="1"),
                        rx.spacer(),
                        rx.text(h["actor"], size="1", color_scheme="gray", white_space="nowrap"),
                        align="center", width="100%", spacing="2", data_testid="coupon-history-row",
                    )),
                    rx.text("暂无记录", size="1", color_scheme="gray"),
                ),
                spacing="1", width="100%", padding="0.5rem 0.75rem", background=rx.color("gray", 2),
                border_radius="var(--radius-2)",
            ),
            col_span=8,
        ),
    )


def _coupon_row(c: rx.Var) -> rx.Component:
    return rx.fragment(
        rx.table.row(
            rx.table.cell(rx.vstack(rx.text(c["product"], weight="medium", size="2"),
                                    rx.text(c["kind"], " · ", c["face"], size="1", color_scheme="gray"), spacing="0")),
            rx.table.cell(rx.badge(c["status_label"], variant="soft",
                                   color_scheme=rx.match(c["status"], *STATUS_COLORS.items(), "gray"))),
            rx.table.cell(rx.code(c["code"], variant="ghost", size="1")),
            rx.table.cell(c["issued_at"], white_space="nowrap"),
            rx.table.cell(c["expires_at"], white_space="nowrap"),
            rx.table.cell(c["use_by"], white_space="nowrap"),
            rx.table.cell(c["used_at"], white_space="nowrap"),
            rx.table.cell(rx.button(rx.cond(UsersState.history_for == c["id"], "收起", "历史"), size="1", variant="soft",
                                    on_click=UsersState.show_history(c["id"])), text_align="right"),
            data_testid="user-coupon-row",
        ),
        rx.cond(UsersState.history_for == c["id"], _history()),
    )


def _detail_dialog() -> rx.Component:
    d = UsersState.detail
    return dialog(
        rx.fragment("用户 #", d["id"], " · ", d["phone"]),
        rx.dialog.close(rx.icon_button(rx.icon("x", size=16), variant="ghost", color_scheme="gray",
                                       position="absolute", top="1rem", right="1rem")),
        rx.text("城市 ", d["city"], " · 注册于 ", d["created_at"], " · 共 ", d["count"], " 张券，未使用 ", d["available"], " 张",
                size="2", color_scheme="gray", padding_y="0.5rem"),
        rx.cond(d["no_phone"] == "1", rx.callout("该用户尚未绑定手机号；券按手机号发放，绑定后才会显示。", icon="info", size="1")),
        rx.cond(d["waiting"] == "1", rx.callout("该手机号尚未注册：这些券等待该号码，用户注册或绑定后自动归属。", icon="info",
                                                size="1")),
        rx.cond(UsersState.detail_error != "", rx.callout(UsersState.detail_error, icon="triangle-alert",
                                                          color_scheme="red", size="1")),
        rx.scroll_area(
            rx.table.root(
                header("券种", "状态", "券码", "发放时间", "有效期至", "使用截止", "使用时间", ""),
                rx.table.body(rx.cond(UsersState.coupons.length() > 0, rx.foreach(UsersState.coupons, _coupon_row),
                                      empty_row(8, "该用户暂无券"))),
                size="1", width="100%", variant="surface",
            ),
            max_height="60vh", type="auto", scrollbars="vertical",
        ),
        rx.text("券码与手机号均部分隐藏；完整券码仅用户本人可在小程序中查看。", size="1", color_scheme="gray", padding_top="0.5rem"),
        open=UsersState.detail_open,
        on_open_change=UsersState.set_detail_open,
        max_width="min(72rem, 95vw)",
        testid="user-detail",
    )


@staff_page("users", "用户")
def users_page() -> rx.Component:
    s = UsersState
    return rx.vstack(
        filter_bar(s, rx.input(placeholder="按手机号搜索（可输入部分号码）", value=s.phone_q, on_change=s.set_phone_q,
                               width="18rem", data_testid="users-phone"),
                   export_testid="users-export"),
        list_table(s, table_header(s, Col("ID", "id"), Col("手机号", "phone"), "微信", Col("城市", "city"),
                                   Col("注册时间", "created_at"), Col("最近登录", "last_login_at"), ""),
                   _row, rx.cond(s.waiting.contains("phone"), _waiting_row(),
                                 empty_row(7, "暂无数据（输入完整手机号可查到尚未注册、但已有券等待的号码）"))),
        _detail_dialog(),
        width="100%",
        spacing="3",
    )
