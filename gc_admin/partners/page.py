"""合作方接口 page: create (shown once) and revoke partner API keys."""

from __future__ import annotations

import reflex as rx

from gc_admin.partners.service import SCOPES
from gc_admin.partners.state import PartnersState
from gc_admin.ui.components import actions_cell, create_form, dialog, empty_row, header, row_confirm
from gc_admin.ui.layout import staff_page


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["partner"]),
        rx.table.cell(rx.vstack(rx.text(row["programme"], size="2"),
                                rx.text(row["programme_code"], size="1", color_scheme="gray",
                                        font_family="var(--code-font-family)"), spacing="0")),
        rx.table.cell(row["scopes"]),
        rx.table.cell(rx.code(row["prefix"])),
        rx.table.cell(row["created"]),
        rx.table.cell(row["last_used"]),
        rx.table.cell(rx.cond(row["live"] == "1", rx.badge("有效", color_scheme="green"), rx.badge("已吊销", color_scheme="gray"))),
        actions_cell(rx.cond(
            row["live"] == "1",
            row_confirm(
                "吊销密钥",
                rx.fragment("吊销后 ", row["partner"], " 使用该密钥的所有请求将立即被拒绝，且不可恢复。"),
                trigger=rx.button("吊销", size="1", variant="soft", color_scheme="red"),
                confirm="确定吊销", on_confirm=PartnersState.revoke(row["id"]),
            ),
        )),
        data_testid="partner-row",
    )


def _create_dialog() -> rx.Component:
    return dialog(
        "新建合作方接口密钥",
        rx.cond(
            PartnersState.new_key != "",
            rx.vstack(
                rx.callout("密钥只显示这一次，请立即复制并通过安全渠道交给合作方。", icon="triangle-alert", color_scheme="amber"),
                rx.code(PartnersState.new_key, data_testid="partner-key", word_break="break-all"),
                rx.hstack(
                    rx.button("复制", variant="soft", on_click=rx.set_clipboard(PartnersState.new_key)),
                    rx.button("我已保存", on_click=PartnersState.dismiss_key),
                    justify="end", spacing="3", width="100%",
                ),
                spacing="3",
            ),
            create_form(
                PartnersState,
                rx.input(name="partner_name", placeholder="合作方名称，如 人保之友俱乐部", max_length=64, required=True),
                rx.select.root(
                    rx.select.trigger(placeholder="选择所属项目", width="100%", data_testid="partner-programme"),
                    rx.select.content(rx.foreach(PartnersState.programmes,
                                                 lambda g: rx.select.item(g["label"], value=g["code"]))),
                    name="programme_code", default_value=PartnersState.default_programme, required=True,
                ),
                rx.text("权限范围", size="2", weight="medium"),
                *[
                    rx.checkbox(label, checked=PartnersState.scope_choice.contains(key),
                                on_change=lambda c, k=key: PartnersState.toggle_scope(k, c))
                    for key, label in SCOPES.items()
                ],
            ),
        ),
        trigger=rx.button(rx.icon("key-round", size=14), "新建密钥", data_testid="partner-new"),
        open=PartnersState.create_open,
        on_open_change=PartnersState.open_create,
    )


@staff_page("partners", "合作方接口")
def partners_page() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text("合作方（如人保之友俱乐部）通过 X-Api-Key 调用 /api/v1/partner 接口；密钥按项目与权限范围隔离，库中只存哈希。",
                    size="2", color_scheme="gray"),
            rx.spacer(),
            _create_dialog(),
            width="100%",
            align="center",
        ),
        rx.table.root(
            header("合作方", "项目", "权限", "密钥", "创建时间", "最近使用", "状态", ""),
            rx.table.body(rx.cond(PartnersState.rows.length() > 0, rx.foreach(PartnersState.rows, _row), empty_row(8))),
            width="100%",
            variant="surface",
        ),
        width="100%",
        spacing="3",
    )
