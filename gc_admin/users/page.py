"""用户 page."""

from __future__ import annotations

import reflex as rx

from gc_admin.ui.components import empty_row, header, pager
from gc_admin.ui.layout import staff_page
from gc_admin.users.state import UsersState


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["id"]),
        rx.table.cell(row["phone"]),
        rx.table.cell(row["wechat"]),
        rx.table.cell(row["city"]),
        rx.table.cell(row["created_at"]),
        rx.table.cell(row["last_login"]),
        data_testid="user-row",
    )


@staff_page("users", "用户")
def users_page() -> rx.Component:
    return rx.vstack(
        rx.form(
            rx.hstack(
                rx.input(placeholder="按手机号搜索（可输入部分号码）", value=UsersState.phone_q,
                         on_change=UsersState.set_phone_q, width="18rem", data_testid="users-phone"),
                rx.button("查询", type="submit", variant="soft"),
            ),
            on_submit=lambda _form: UsersState.search(),
        ),
        rx.table.root(
            header("ID", "手机号", "微信", "城市", "注册时间", "最近登录"),
            rx.table.body(rx.cond(UsersState.rows.length() > 0, rx.foreach(UsersState.rows, _row), empty_row(6))),
            width="100%",
            variant="surface",
        ),
        pager(UsersState.total, UsersState.page, UsersState.pages, UsersState.prev_page, UsersState.next_page),
        width="100%",
        spacing="3",
    )
