"""鲜花管理: the bouquet catalogue — photos, prices, 上架 / 下架, the notice the user sees with every photo."""

from __future__ import annotations

import reflex as rx

from gc_admin.orders.flowers.state import UPLOAD_ID, FlowersState
from gc_admin.ui.components import NUM, empty_row, header, pager
from gc_admin.ui.layout import staff_page
from gc_admin.ui.photos import catalogue_form_dialog, form_error, labelled, photo_dialog, row_controls, thumb


def _row(row: rx.Var) -> rx.Component:
    s = FlowersState
    return rx.table.row(
        rx.table.cell(thumb(row["image_url"], row["name"], "bouquet-thumb")),
        rx.table.cell(rx.code(row["code"], variant="ghost", size="1")),
        rx.table.cell(rx.vstack(rx.text(row["name"], weight="medium"),
                                rx.text(row["description"], size="1", color_scheme="gray"), spacing="0")),
        rx.table.cell(row["price"], **NUM, data_testid="bouquet-price"),
        rx.table.cell(row["sort"], **NUM),
        rx.table.cell(rx.cond(row["image_url"] != "", rx.text(row["size"], size="1", color_scheme="gray"),
                              rx.badge("未上传照片", color_scheme="amber"))),
        *row_controls(s, row, on=row["active"], on_toggle=s.set_active, testid="bouquet",
                      switch="bouquet-active"),
        data_testid="bouquet-row",
    )


def _form_error() -> rx.Component:
    return form_error(FlowersState.form_error, "bouquet-form-error")


def _common_fields(values: dict | None = None) -> list[rx.Component]:
    v = values or {}
    return [
        labelled("名称", rx.input(name="name", default_value=v.get("name", ""), max_length=64, required=True,
                                width="100%", placeholder="如 红玫瑰 11 枝", data_testid="bouquet-name")),
        labelled("价格（元）", rx.input(name="price", default_value=v.get("price_yuan", ""), max_length=10, required=True,
                                   width="100%", placeholder="如 150", data_testid="bouquet-price-input")),
        labelled("说明（选填）", rx.input(name="description", default_value=v.get("description", ""), max_length=200,
                                     width="100%", placeholder="花材、枝数、包装")),
        labelled("排序", rx.input(name="sort", default_value=v.get("sort", "0"), max_length=4, width="100%"),
               "数字小的排在前面"),
    ]


def _create_dialog() -> rx.Component:
    s = FlowersState
    return catalogue_form_dialog(
        "新建花束",
        labelled("编码", rx.input(name="code", max_length=32, required=True, width="100%", placeholder="如 rose-11",
                                  data_testid="bouquet-code"), "字母、数字、_ 或 -，2–32 位；创建后不可修改"),
        *_common_fields(),
        rx.hstack(rx.checkbox(name="active", default_checked=False), rx.text("创建后立即上架（上传照片后才会在小程序显示）", size="2")),
        error=_form_error(), submit="创建", testid="bouquet-create", on_submit=s.create, open=s.create_open,
        on_open_change=s.open_create, trigger=rx.button(rx.icon("plus", size=14), "新建花束", data_testid="bouquet-new"),
        description="金额以元填写。价格调整只影响之后的新订单。",
    )


def _edit_dialog() -> rx.Component:
    s = FlowersState
    return catalogue_form_dialog(
        rx.text("编辑花束 ", s.edit_code),
        *_common_fields({"name": s.edit["name"], "price_yuan": s.edit["price_yuan"],
                         "description": s.edit["description"], "sort": s.edit["sort"]}),
        error=_form_error(), submit="保存", testid="bouquet-save", on_submit=s.save_edit, open=s.edit_code != "",
        on_open_change=s.close_edit, key=s.edit_code, description="价格调整只影响之后的新订单，已下单的订单按下单时的价格。",
    )


def _photo_dialog() -> rx.Component:
    s = FlowersState
    return photo_dialog(rx.text("上传照片 ", s.photo_code), upload_id=UPLOAD_ID, open=s.photo_code != "",
                        on_open_change=s.close_photo, on_upload=s.upload_photo, uploading=s.uploading,
                        error=_form_error(), testid="bouquet")


@staff_page("flowers", "鲜花管理")
def flowers_page() -> rx.Component:
    s = FlowersState
    return rx.vstack(
        rx.callout(rx.text("小程序在每张花束照片旁显示：", rx.text.strong(s.note)), icon="info", size="1",
                   width="100%", data_testid="bouquet-note"),
        rx.hstack(rx.form(rx.hstack(
            rx.select.root(rx.select.trigger(width="9rem", data_testid="bouquet-filter"),
                           rx.select.content(rx.select.item("全部", value="all"), rx.select.item("上架", value="active"),
                                             rx.select.item("下架", value="inactive")),
                           value=s.active_filter, on_change=s.set_active_filter),
            rx.input(placeholder="名称或编码", value=s.q, on_change=s.set_q, max_length=32, width="14rem"),
            rx.button("查询", type="submit", variant="soft"),
            align="center", spacing="3", wrap="wrap",
        ), on_submit=lambda _form: s.search()),
            rx.spacer(),
            rx.text("共 ", s.total, " 个花束", size="2", color_scheme="gray", white_space="nowrap"),
            rx.cond(s.can_edit, _create_dialog()),  # outside the filter form: its submit must not search
            width="100%", align="center", spacing="3"),
        rx.table.root(
            header("照片", "编码", "名称", "价格", "排序", "照片尺寸", "上架", ""),
            rx.table.body(rx.cond(s.rows.length() > 0, rx.foreach(s.rows, _row), empty_row(8, "暂无花束"))),
            width="100%", variant="surface", size="1", data_testid="bouquet-table",
        ),
        pager(s.total, s.page, s.pages, s.prev_page, s.next_page),
        _edit_dialog(), _photo_dialog(),
        width="100%", spacing="3",
    )
