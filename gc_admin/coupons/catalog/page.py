"""券库存 page, 券种管理 tab: the product list and the 新建券种 dialog (admin and manager)."""

from __future__ import annotations

import reflex as rx

from gc_admin.coupons.catalog.state import ProductsState
from gc_admin.coupons.models import CASHBACK_CATEGORIES, FUNDERS, KINDS
from gc_admin.ui.components import NUM, dialog, empty_row, form_actions


def field(label: str, control: rx.Component, hint: str = "") -> rx.Component:
    """A labelled form control with an optional hint below it."""
    return rx.vstack(
        rx.text(label, size="2", weight="medium"),
        control,
        rx.cond(hint != "", rx.text(hint, size="1", color_scheme="gray")),
        spacing="1", width="100%",
    )


def _product_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(row["code"], variant="ghost", size="1")),
        rx.table.cell(rx.text(row["name"], weight="medium")),
        rx.table.cell(row["kind"], white_space="nowrap"),
        rx.table.cell(row["value"], **NUM),
        rx.table.cell(row["cost"], **NUM),
        rx.table.cell(row["price"], **NUM),
        rx.table.cell(row["supplier"]),
        rx.table.cell(rx.vstack(rx.text(row["programme"], size="2", white_space="nowrap"),
                                rx.cond(row["programme_code"] != "",
                                        rx.text(row["programme_code"], size="1", color_scheme="gray",
                                                font_family="var(--code-font-family)")),
                                spacing="0")),
        rx.table.cell(row["funded_by"], white_space="nowrap"),
        rx.table.cell(rx.text(row["validity"], size="1", color_scheme="gray")),
        rx.table.cell(
            rx.cond(
                ProductsState.can_edit,
                rx.switch(checked=row["on_sale"] == "1", on_change=lambda v: ProductsState.set_on_sale(row["code"], v),
                          size="1", data_testid="on-sale-" + row["code"]),
                rx.cond(row["on_sale"] == "1", rx.badge("在售", color_scheme="green"), rx.badge("未上架", color_scheme="gray")),
            ),
            text_align="center",
        ),
        data_testid="product-row",
    )


def _grid(*children: rx.Component) -> rx.Component:
    return rx.grid(*children, columns="2", spacing="3", width="100%")


def _create_dialog() -> rx.Component:
    s = ProductsState
    kind_is = lambda k: s.new_kind == k  # noqa: E731
    return dialog(
        "新建券种",
        rx.form(
            rx.vstack(
                _grid(
                    field("券种类型", rx.select.root(
                        rx.select.trigger(width="100%"),
                        rx.select.content(*[rx.select.item(label, value=key) for key, label in KINDS.items()]),
                        value=s.new_kind, on_change=s.set_new_kind,
                    )),
                    field("出资方", rx.select.root(
                        rx.select.trigger(width="100%"),
                        rx.select.content(*[rx.select.item(label, value=key) for key, label in FUNDERS.items()]),
                        name="funded_by", default_value="insurer",
                    )),
                    field("券种编码", rx.input(width="100%", name="code", placeholder="如 tpp_tongdui_50", max_length=32, required=True),
                           "小写字母、数字、_ 或 -，2–32 位"),
                    field("券种名称", rx.input(width="100%", name="name", placeholder="如 淘票票通兑券 50 元", max_length=64, required=True)),
                    field("面值（元）", rx.input(width="100%", name="face", placeholder="如 50；返现券为返现金额", max_length=12)),
                    field("成本（元）", rx.input(width="100%", name="cost", placeholder="每张采购成本", max_length=12)),
                    rx.cond(kind_is("goods_discount"),
                            field("折扣百分比（选填）", rx.input(width="100%", name="percent_off", placeholder="1–99，与面值二选一",
                                                           max_length=2))),
                    rx.cond(kind_is("cashback"),
                            field("返现类别", rx.select.root(
                                rx.select.trigger(placeholder="选择类别", width="100%"),
                                rx.select.content(*[rx.select.item(label, value=key)
                                                    for key, label in CASHBACK_CATEGORIES.items()]),
                                name="category",
                            ))),
                    field("供应商 / 第三方", rx.input(width="100%", name="supplier", placeholder="如 淘票票", max_length=64)),
                    field("所属项目", rx.select.root(
                        rx.select.trigger(placeholder="不属于任何项目", width="100%"),
                        rx.select.content(rx.select.item("不属于任何项目", value="none"),
                                          rx.foreach(s.programmes, lambda g: rx.select.item(g["name"], value=g["code"]))),
                        name="programme_code", default_value="none",
                    )),
                    rx.cond(kind_is("redemption_code"),
                            field("跳转小程序 AppID", rx.input(width="100%", name="jump_app_id", placeholder="wx 开头，共 18 位", max_length=18))),
                    rx.cond(kind_is("redemption_code"),
                            field("跳转页面路径", rx.input(width="100%", name="jump_path", placeholder="如 pages/index", max_length=255))),
                    rx.cond(kind_is("redemption_code"),
                            field("使用期限（天）", rx.input(width="100%", name="use_window_days", default_value="30", max_length=3),
                                   "用户点“去使用”后的可用天数，不超过券码有效期")),
                    rx.cond(kind_is("redemption_code"),
                            field("最短剩余有效期（天）", rx.input(width="100%", name="min_validity_days", default_value="30", max_length=3),
                                   "剩余有效期不足的券码不发放，转为弃票")),
                    rx.cond(~kind_is("redemption_code"),
                            field("有效期（天）", rx.input(width="100%", name="validity_days", default_value="90", max_length=4),
                                   "发放后多少天内有效")),
                    field("小程序售价（元，选填）", rx.input(width="100%", name="price", placeholder="不填则不在小程序销售", max_length=12)),
                    field("每人限购（选填）", rx.input(width="100%", name="per_user_limit", placeholder="不填则不限", max_length=5)),
                ),
                rx.hstack(rx.checkbox(name="on_sale"), rx.text("创建后立即在小程序上架销售（需填写售价）", size="2"),
                          align="center"),
                rx.cond(s.form_error != "", rx.callout(s.form_error, icon="triangle-alert", color_scheme="red", size="1",
                                                       width="100%", data_testid="product-form-error")),
                form_actions(rx.button("创建", type="submit", data_testid="product-create")),
                spacing="3", padding_top="0.75rem",
            ),
            on_submit=s.create,
            reset_on_submit=False,
        ),
        open=s.create_open,
        on_open_change=s.open_create,
        trigger=rx.button(rx.icon("plus", size=14), "新建券种", data_testid="product-new"),
        description="券种编码与类型创建后不可修改。金额以元填写。",
        max_width="44rem",
    )


def products_tab() -> rx.Component:
    s = ProductsState
    return rx.vstack(
        rx.hstack(
            rx.text("共 ", s.rows.length(), " 个券种", size="2", color_scheme="gray"),
            rx.spacer(),
            rx.cond(s.can_edit, _create_dialog()),
            width="100%", align="center",
        ),
        rx.table.root(
            rx.table.header(rx.table.row(
                rx.table.column_header_cell("编码"), rx.table.column_header_cell("名称"), rx.table.column_header_cell("类型"),
                rx.table.column_header_cell("面值/折扣", **NUM), rx.table.column_header_cell("成本", **NUM),
                rx.table.column_header_cell("售价", **NUM), rx.table.column_header_cell("供应商"),
                rx.table.column_header_cell("项目"), rx.table.column_header_cell("出资方"),
                rx.table.column_header_cell("有效期规则"), rx.table.column_header_cell("上架", text_align="center"),
            )),
            rx.table.body(rx.cond(s.rows.length() > 0, rx.foreach(s.rows, _product_row), empty_row(11, "暂无券种"))),
            width="100%", variant="surface", size="1", data_testid="product-table",
        ),
        width="100%", spacing="3",
    )
