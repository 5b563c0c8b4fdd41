"""Login page and the staff-management page (员工与权限)."""

from __future__ import annotations

import reflex as rx

from gc_admin.accounts.state import NO_PROGRAMME, StaffState
from gc_admin.core.roles import ROLE_LABELS
from gc_admin.ui.auth import AuthState
from gc_admin.ui.components import (Col, actions_cell, create_form, dialog, empty_row, filter_select, form_actions,
                                    list_table, row_confirm, table_header)
from gc_admin.ui.layout import staff_page


def login_page() -> rx.Component:
    return rx.center(
        rx.card(
            rx.form(
                rx.vstack(
                    rx.hstack(rx.icon("gem", size=28, color=rx.color("accent", 10)),
                              rx.heading("滚财车主权益 · 管理后台", size="5"), align="center"),
                    rx.text("员工登录", color_scheme="gray", size="2"),
                    rx.text("用户名", size="2", weight="medium"),
                    rx.input(name="username", placeholder="请输入用户名", auto_complete="username", width="100%",
                             max_length=64, data_testid="login-username", auto_focus=True),
                    rx.text("密码", size="2", weight="medium"),
                    rx.input(name="password", type="password", placeholder="请输入密码", auto_complete="current-password",
                             width="100%", max_length=128, data_testid="login-password"),
                    rx.cond(
                        AuthState.login_error != "",
                        rx.callout(AuthState.login_error, icon="triangle-alert", color_scheme="red", size="1",
                                   width="100%", data_testid="login-error"),
                    ),
                    rx.button("登录", type="submit", width="100%", loading=AuthState.login_busy, data_testid="login-submit"),
                    spacing="3",
                    width="100%",
                ),
                on_submit=AuthState.login,
            ),
            width="24rem",
            padding="2rem",
        ),
        height="100vh",
        background=rx.color("gray", 2),
    )


def _role_select(row: rx.Var) -> rx.Component:
    return rx.select.root(
        rx.select.trigger(variant="ghost"),
        rx.select.content(*[rx.select.item(label, value=key) for key, label in ROLE_LABELS.items()]),
        value=row["role"],
        on_change=lambda v: StaffState.change_role(row["id"], v),
        size="1",
        disabled=row["self"] == "1",
    )


def _programme_items() -> list[rx.Component]:
    return [rx.select.item("不关联项目", value=NO_PROGRAMME),
            rx.foreach(StaffState.programmes, lambda pr: rx.select.item(pr["label"], value=pr["code"]))]


def _programme_cell(row: rx.Var) -> rx.Component:
    """An insurer's programme (what it may see and issue for), changeable; other roles have none."""
    return rx.cond(
        row["has_programme"] == "1",
        rx.select.root(
            rx.select.trigger(variant="ghost", placeholder=row["programme_label"]),
            rx.select.content(*_programme_items()),
            value=row["programme"],
            on_change=lambda v: StaffState.change_programme(row["id"], v),
            size="1",
        ),
        rx.text("—", color_scheme="gray"),
    )


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["username"]),
        rx.table.cell(row["display_name"]),
        rx.table.cell(_role_select(row)),
        rx.table.cell(_programme_cell(row)),
        rx.table.cell(row["phone"]),
        rx.table.cell(rx.cond(row["enabled"] == "1", rx.badge("正常", color_scheme="green"), rx.badge("已停用", color_scheme="red"))),
        rx.table.cell(row["last_login"]),
        actions_cell(
            rx.button("重置密码", size="1", variant="soft", on_click=StaffState.open_reset(row["id"], row["display_name"])),
            rx.cond(
                row["enabled"] == "1",
                row_confirm(
                    "停用账号",
                    rx.fragment("停用后该员工将立即被强制下线，且无法再登录。确定停用 ", row["display_name"], "？"),
                    trigger=rx.button("停用", size="1", variant="soft", color_scheme="red", disabled=row["self"] == "1"),
                    confirm="确定停用", on_confirm=StaffState.toggle_enabled(row["id"], False),
                ),
                rx.button("启用", size="1", variant="soft", color_scheme="green",
                          on_click=StaffState.toggle_enabled(row["id"], True)),
            ),
        ),
        data_testid="staff-row",
    )


def _create_dialog() -> rx.Component:
    return dialog(
        "新建员工",
        create_form(
            StaffState,
            rx.input(name="username", placeholder="用户名（小写字母开头，3–32 位）", max_length=32, required=True),
            rx.input(name="display_name", placeholder="姓名", max_length=32, required=True),
            rx.select.root(
                rx.select.trigger(placeholder="选择角色", width="100%", data_testid="staff-new-role"),
                rx.select.content(*[rx.select.item(label, value=key) for key, label in ROLE_LABELS.items()]),
                name="role",
                required=True,
            ),
            rx.select.root(
                rx.select.trigger(placeholder="所属项目（仅人保账号：只能查看、发放该项目的券）", width="100%",
                                  data_testid="staff-new-programme"),
                rx.select.content(*_programme_items()),
                name="programme_code",
                default_value=NO_PROGRAMME,
            ),
            rx.input(name="phone", placeholder="手机号（选填，用于新订单短信提醒）", max_length=11),
            rx.input(name="password", type="password", placeholder="初始密码（至少 8 位，含字母和数字）",
                     max_length=128, required=True),
        ),
        trigger=rx.button(rx.icon("user-plus", size=14), "新建员工", data_testid="staff-new"),
        open=StaffState.create_open,
        on_open_change=StaffState.open_create,
    )


def _reset_dialog() -> rx.Component:
    return dialog(
        rx.fragment("重置密码：", StaffState.reset_target_name),
        rx.form(
            rx.vstack(
                rx.input(name="password", type="password", placeholder="新密码（至少 8 位，含字母和数字）", max_length=128),
                rx.input(name="confirm", type="password", placeholder="再次输入新密码", max_length=128),
                rx.cond(StaffState.form_error != "", rx.text(StaffState.form_error, color_scheme="red", size="2")),
                form_actions(rx.button("确定重置", type="submit", color_scheme="red")),
                spacing="3",
                padding_top="0.75rem",
            ),
            on_submit=StaffState.reset_password,
        ),
        description="重置后该员工的所有登录会话立即失效。",
        open=StaffState.reset_open,
        on_open_change=StaffState.close_reset,
    )


@staff_page("staff", "员工与权限")
def staff_management() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.input(placeholder="搜索用户名或姓名", value=StaffState.q, on_change=StaffState.set_q, max_length=32,
                     width="16rem"),
            filter_select(StaffState.role_filter, StaffState.set_role_filter, "全部角色", ROLE_LABELS),
            rx.button("查询", on_click=StaffState.search, variant="soft"),
            rx.spacer(),
            _create_dialog(),
            width="100%",
            align="center",
        ),
        list_table(StaffState, table_header(StaffState, Col("用户名", "username"), Col("姓名", "display_name"),
                                            Col("角色", "role"), "所属项目", "手机号", Col("状态", "enabled"),
                                            Col("最近登录", "last_login_at"), ""),
                   _row, empty_row(8), data_testid="staff-table"),
        _reset_dialog(),
        width="100%",
        spacing="3",
    )
