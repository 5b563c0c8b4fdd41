"""鲜花管理: the bouquet catalogue — photos, prices, 上架 / 下架, the notice the user sees with every photo."""

from __future__ import annotations

import reflex as rx

from gc_admin.core.uploads import limits
from gc_admin.orders.flowers.state import UPLOAD_ID, FlowersState
from gc_admin.ui.components import NUM, dialog, empty_row, form_actions, header, pager
from gc_admin.ui.layout import staff_page


def _field(label: str, control: rx.Component, hint: str = "") -> rx.Component:
    return rx.vstack(rx.text(label, size="2", weight="medium"), control,
                     *([rx.text(hint, size="1", color_scheme="gray")] if hint else []), spacing="1", width="100%")


def _thumb(row: rx.Var) -> rx.Component:
    return rx.cond(
        row["image_url"] != "",
        rx.image(src=row["image_url"], width="56px", height="56px", object_fit="cover", border_radius="var(--radius-2)",
                 alt=row["name"], data_testid="bouquet-thumb"),
        rx.center(rx.icon("image-off", size=18, color=rx.color("gray", 8)), width="56px", height="56px",
                  background=rx.color("gray", 3), border_radius="var(--radius-2)"),
    )


def _row(row: rx.Var) -> rx.Component:
    s = FlowersState
    return rx.table.row(
        rx.table.cell(_thumb(row)),
        rx.table.cell(rx.code(row["code"], variant="ghost", size="1")),
        rx.table.cell(rx.vstack(rx.text(row["name"], weight="medium"),
                                rx.text(row["description"], size="1", color_scheme="gray"), spacing="0")),
        rx.table.cell(row["price"], **NUM, data_testid="bouquet-price"),
        rx.table.cell(row["sort"], **NUM),
        rx.table.cell(rx.cond(row["image_url"] != "", rx.text(row["size"], size="1", color_scheme="gray"),
                              rx.badge("未上传照片", color_scheme="amber"))),
        rx.table.cell(rx.cond(
            s.can_edit,
            rx.switch(checked=row["active"] == "1", on_change=lambda v: s.set_active(row["code"], v), size="1",
                      data_testid="bouquet-active-" + row["code"]),
            rx.cond(row["active"] == "1", rx.badge("上架", color_scheme="green"), rx.badge("下架", color_scheme="gray")),
        ), text_align="center"),
        rx.table.cell(rx.cond(s.can_edit, rx.hstack(
            rx.button("编辑", size="1", variant="soft", on_click=s.open_edit(row["code"]),
                      data_testid="bouquet-edit-" + row["code"]),
            rx.button("上传照片", size="1", variant="soft", on_click=s.open_photo(row["code"]),
                      data_testid="bouquet-photo-" + row["code"]),
            spacing="2", justify="end")), text_align="right"),
        data_testid="bouquet-row",
    )


def _form_error() -> rx.Component:
    s = FlowersState
    return rx.cond(s.form_error != "", rx.callout(s.form_error, icon="triangle-alert", color_scheme="red", size="1",
                                                  width="100%", data_testid="bouquet-form-error"))


def _common_fields(values: dict | None = None) -> list[rx.Component]:
    v = values or {}
    return [
        _field("名称", rx.input(name="name", default_value=v.get("name", ""), max_length=64, required=True,
                                width="100%", placeholder="如 红玫瑰 11 枝", data_testid="bouquet-name")),
        _field("价格（元）", rx.input(name="price", default_value=v.get("price_yuan", ""), max_length=10, required=True,
                                   width="100%", placeholder="如 150", data_testid="bouquet-price-input")),
        _field("说明（选填）", rx.input(name="description", default_value=v.get("description", ""), max_length=200,
                                     width="100%", placeholder="花材、枝数、包装")),
        _field("排序", rx.input(name="sort", default_value=v.get("sort", "0"), max_length=4, width="100%"),
               "数字小的排在前面"),
    ]


def _create_dialog() -> rx.Component:
    s = FlowersState
    return dialog(
        "新建花束",
        rx.form(rx.vstack(
            _field("编码", rx.input(name="code", max_length=32, required=True, width="100%", placeholder="如 rose-11",
                                    data_testid="bouquet-code"), "字母、数字、_ 或 -，2–32 位；创建后不可修改"),
            *_common_fields(),
            rx.hstack(rx.checkbox(name="active", default_checked=False), rx.text("创建后立即上架（上传照片后才会在小程序显示）", size="2")),
            _form_error(),
            form_actions(rx.button("创建", type="submit", data_testid="bouquet-create")),
            spacing="3", padding_top="0.75rem"), on_submit=s.create, reset_on_submit=False),
        open=s.create_open, on_open_change=s.open_create,
        trigger=rx.button(rx.icon("plus", size=14), "新建花束", data_testid="bouquet-new"),
        description="金额以元填写。价格调整只影响之后的新订单。",
    )


def _edit_dialog() -> rx.Component:
    s = FlowersState
    return dialog(
        rx.text("编辑花束 ", s.edit_code),
        rx.form(rx.vstack(
            *_common_fields({"name": s.edit["name"], "price_yuan": s.edit["price_yuan"],
                             "description": s.edit["description"], "sort": s.edit["sort"]}),
            _form_error(),
            form_actions(rx.button("保存", type="submit", data_testid="bouquet-save")),
            spacing="3", padding_top="0.75rem", key=s.edit_code), on_submit=s.save_edit, reset_on_submit=False),
        open=s.edit_code != "", on_open_change=s.close_edit,
        description="价格调整只影响之后的新订单，已下单的订单按下单时的价格。",
    )


def _photo_dialog() -> rx.Component:
    s = FlowersState
    max_mb = limits().image_max_bytes // 1024 // 1024
    return dialog(
        rx.text("上传照片 ", s.photo_code),
        rx.vstack(
            rx.upload.root(
                rx.vstack(
                    rx.icon("image-up", size=28, color=rx.color("accent", 9)),
                    rx.text("拖拽照片到此处，或点击选择照片", weight="medium"),
                    rx.text(f"JPG、PNG 或 WebP，最大 {max_mb} MB；过大的照片会自动缩小到 1600 像素以内", size="1",
                            color_scheme="gray"),
                    rx.foreach(rx.selected_files(UPLOAD_ID), lambda f: rx.badge(rx.icon("file", size=12), f,
                                                                                 variant="surface")),
                    align="center", spacing="2"),
                id=UPLOAD_ID, multiple=False, max_files=1,
                accept={"image/jpeg": [".jpg", ".jpeg"], "image/png": [".png"], "image/webp": [".webp"]},
                border=f"1px dashed {rx.color('accent', 7)}", border_radius="var(--radius-3)", padding="1.5rem",
                width="100%", cursor="pointer", data_testid="bouquet-upload"),
            _form_error(),
            rx.hstack(
                rx.dialog.close(rx.button("取消", variant="soft", color_scheme="gray", type="button")),
                rx.button(rx.icon("upload", size=14), "上传", loading=s.uploading,
                          disabled=rx.selected_files(UPLOAD_ID).length() == 0,
                          on_click=s.upload_photo(rx.upload_files(upload_id=UPLOAD_ID)),
                          data_testid="bouquet-upload-start"),
                justify="end", spacing="3", width="100%"),
            spacing="3", padding_top="0.75rem"),
        open=s.photo_code != "", on_open_change=s.close_photo,
        description="照片按内容检查格式、大小与像素；只保存重新编码后的图片。",
    )


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
