"""商品管理: the goods catalogue — photo, price, stock, the exchange vouchers that redeem each item, 上架 / 下架.
A supplier account manages its own goods only; admin and manager every supplier's."""

from __future__ import annotations

import reflex as rx

from gc_admin.orders.suppliers.state import UPLOAD_ID, GoodsState
from gc_admin.ui.components import NUM, empty_row, header, pager
from gc_admin.ui.layout import staff_page
from gc_admin.ui.photos import catalogue_form_dialog, form_error, labelled, photo_dialog, row_controls, thumb


def _row(row: rx.Var) -> rx.Component:
    s = GoodsState
    return rx.table.row(
        rx.table.cell(thumb(row["image_url"], row["name"], "goods-thumb")),
        rx.table.cell(rx.code(row["code"], variant="ghost", size="1")),
        rx.table.cell(rx.vstack(rx.text(row["name"], weight="medium"),
                                rx.text(row["supplier"], size="1", color_scheme="gray"), spacing="0")),
        rx.table.cell(row["price"], **NUM, data_testid="goods-price"),
        rx.table.cell(rx.text(row["stock"], color_scheme=rx.cond(row["low"] == "1", "red", "gray"),
                              weight=rx.cond(row["low"] == "1", "bold", "regular")), **NUM, data_testid="goods-stock"),
        rx.table.cell(rx.text(row["exchange"], size="1"), data_testid="goods-exchange"),
        *row_controls(s, row, on=row["on_sale"], on_toggle=s.set_on_sale, testid="goods",
                      switch="goods-on-sale"),
        data_testid="goods-row", data_code=row["code"],
    )


def _form_error() -> rx.Component:
    return form_error(GoodsState.form_error, "goods-form-error")


def _common_fields(v: dict | None = None) -> list[rx.Component]:
    v = v or {}
    return [
        labelled("名称", rx.input(name="name", default_value=v.get("name", ""), max_length=64, required=True, width="100%",
                                placeholder="如 车载香薰", data_testid="goods-name")),
        labelled("价格（元）", rx.input(name="price", default_value=v.get("price_yuan", ""), max_length=10, required=True,
                                   width="100%", placeholder="如 128", data_testid="goods-price-input")),
        labelled("可兑换的券种（选填）", rx.input(name="exchange", default_value=v.get("exchange_raw", ""), max_length=200,
                                         width="100%", placeholder="兑换券的券种编码，多个用逗号分隔"),
               "持这些兑换券的用户可以 0 元兑换一件"),
    ]


def _create_dialog() -> rx.Component:
    s = GoodsState
    return catalogue_form_dialog(
        "新增商品",
        rx.cond(s.pick_supplier, labelled("供货商", rx.el.select(
            rx.foreach(s.suppliers, lambda x: rx.el.option(x["name"], value=x["code"])),
            name="supplier_code", width="100%", data_testid="goods-supplier"))),
        labelled("编码", rx.input(name="code", max_length=32, required=True, width="100%", placeholder="如 aroma_car",
                                  data_testid="goods-code"), "小写字母、数字、_ 或 -，2–32 位；创建后不可修改"),
        *_common_fields(),
        labelled("库存", rx.input(name="stock", default_value="0", max_length=7, width="100%",
                                  data_testid="goods-stock-input")),
        rx.hstack(rx.checkbox(name="on_sale", default_checked=True), rx.text("创建后立即上架", size="2")),
        error=_form_error(), submit="创建", testid="goods-create", on_submit=s.create, open=s.create_open,
        on_open_change=s.open_create, trigger=rx.button(rx.icon("plus", size=14), "新增商品", data_testid="goods-new"),
        description="金额以元填写。价格调整只影响之后的新订单。",
    )


def _edit_dialog() -> rx.Component:
    s = GoodsState
    return catalogue_form_dialog(
        rx.text("编辑商品 ", s.edit_code),
        *_common_fields({"name": s.edit["name"], "price_yuan": s.edit["price_yuan"], "exchange_raw": s.edit["exchange_raw"]}),
        labelled("库存增减", rx.input(name="stock", default_value="0", max_length=8, width="100%",
                                    data_testid="goods-stock-delta"), "入库填正数，盘亏填负数；发货后退款的退件寄回后在此入库"),
        error=_form_error(), submit="保存", testid="goods-save", on_submit=s.save_edit, open=s.edit_code != "",
        on_open_change=s.close_edit, key=s.edit_code,
        description=rx.text("当前库存 ", s.edit["stock"], " 件。价格调整只影响之后的新订单。"),
    )


@staff_page("goods", "商品管理")
def goods_page() -> rx.Component:
    s = GoodsState
    return rx.vstack(
        rx.cond(s.note != "", rx.callout(s.note, icon="info", size="1", width="100%", data_testid="goods-scope")),
        rx.hstack(rx.form(rx.hstack(
            rx.select.root(rx.select.trigger(width="9rem", data_testid="goods-filter"),
                           rx.select.content(rx.select.item("全部", value="all"), rx.select.item("上架", value="active"),
                                             rx.select.item("下架", value="inactive")),
                           value=s.active_filter, on_change=s.set_active_filter),
            rx.input(placeholder="名称或编码", value=s.q, on_change=s.set_q, max_length=32, width="14rem"),
            rx.button("查询", type="submit", variant="soft"),
            align="center", spacing="3", wrap="wrap",
        ), on_submit=lambda _form: s.search()),
            rx.spacer(),
            rx.text("共 ", s.total, " 件商品", size="2", color_scheme="gray", white_space="nowrap"),
            rx.cond(s.can_edit, _create_dialog()),
            width="100%", align="center", spacing="3"),
        rx.table.root(
            header("照片", "编码", "名称 / 供货商", "价格", "库存", "可兑换券种", "上架", ""),
            rx.table.body(rx.cond(s.rows.length() > 0, rx.foreach(s.rows, _row), empty_row(8, "暂无商品"))),
            width="100%", variant="surface", size="1", data_testid="goods-table",
        ),
        pager(s.total, s.page, s.pages, s.prev_page, s.next_page),
        _edit_dialog(),
        photo_dialog(rx.text("上传照片 ", s.photo_code), upload_id=UPLOAD_ID, open=s.photo_code != "",
                     on_open_change=s.close_photo, on_upload=s.upload_photo, uploading=s.uploading,
                     error=_form_error(), testid="goods"),
        width="100%", spacing="3",
    )
