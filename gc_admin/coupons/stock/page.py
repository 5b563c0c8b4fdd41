"""券库存 page: summary by product × state × expiry, code import, code list, expiry run; the 券种管理 tab
is the catalogue's (:mod:`gc_admin.coupons.catalog.page`)."""

from __future__ import annotations

import reflex as rx

from gc_admin.core.uploads import limits as upload_limits
from gc_admin.coupons.catalog.page import field, products_tab
from gc_admin.coupons.stock.service import SUMMARY_STATE_LABELS
from gc_admin.coupons.stock.state import UPLOAD_ID, StockCodesState, StockImportState, StockState
from gc_admin.ui.components import (NUM, Col, confirm_dialog, empty_row, figure, filter_bar, filter_select, list_table,
                                    result_card, stat_card, table_header)
from gc_admin.ui.layout import staff_page

STATE_COLORS = {"in_stock": "green", "issued": "blue", "used": "gray", "expired": "orange", "discarded": "red",
                "total": "gray"}


def num_header(*labels: str, right_from: int = 1) -> rx.Component:
    """A header row whose columns from ``right_from`` on are right-aligned (numbers)."""
    return rx.table.header(rx.table.row(*[
        rx.table.column_header_cell(lbl, **(NUM if i >= right_from and lbl else {"white_space": "nowrap"}))
        for i, lbl in enumerate(labels)
    ]))


def state_badge(key: rx.Var, label: rx.Var) -> rx.Component:
    return rx.badge(label, color_scheme=rx.match(key, *[(k, c) for k, c in STATE_COLORS.items()], "gray"), variant="soft")


# --- summary ---------------------------------------------------------------------------------

def _summary_row(table: rx.Var, row: rx.Var) -> rx.Component:
    is_total = row["state"] == "total"
    weight = rx.cond(is_total, "bold", "regular")
    tid = "sum-" + table.product_code + "-" + row["state"]
    return rx.table.row(
        rx.table.cell(rx.cond(is_total, rx.text("合计", weight="bold"), state_badge(row["state"], row["label"]))),
        rx.table.cell(rx.text(row["lt30"], weight=weight), **NUM, data_testid=tid + "-lt30"),
        rx.table.cell(rx.text(row["m30_60"], weight=weight), **NUM),
        rx.table.cell(rx.text(row["gt60"], weight=weight), **NUM),
        rx.table.cell(rx.text(row["total"], weight="bold"), **NUM, data_testid=tid + "-total"),
        rx.table.cell(rx.text(row["face"], weight=weight), **NUM),
        rx.table.cell(rx.text(row["cost"], weight=weight), **NUM),
        background=rx.cond(is_total, rx.color("gray", 2), "transparent"),
        color=rx.cond(row["total"] == "0", rx.color("gray", 9), rx.color("gray", 12)),
    )


def _summary_card(table: rx.Var) -> rx.Component:
    return rx.card(
        rx.hstack(
            rx.icon("ticket", size=16, color=rx.color("accent", 10)),
            rx.text(table.product_name, weight="bold", size="3"),
            rx.code(table.product_code, variant="ghost", size="1", color_scheme="gray"),
            align="center", spacing="2", padding_bottom="0.5rem",
        ),
        rx.table.root(
            num_header("状态", "<30天", "30–60天", ">60天", "合计", "面值", "成本"),
            rx.table.body(rx.foreach(table.rows, lambda row: _summary_row(table, row))),
            size="1", width="100%",
        ),
        width="100%",
        data_testid="summary-" + table.product_code,
    )


def _expiry_dialog() -> rx.Component:
    return confirm_dialog(
        "执行过期处理",
        "将立即执行以下操作（与每日定时任务相同），不可撤销：",
        trigger=rx.button(rx.icon("timer-reset", size=14), "执行过期处理", color_scheme="orange", variant="soft",
                          loading=StockState.expiry_busy, data_testid="run-expiry"),
        extra=(
            rx.vstack(
                rx.unordered_list(
                    rx.list_item("在库券码中，剩余有效期不足该券种“最短剩余有效期”（默认 30 天）的，全部转为弃票，不再发放，按成本计入损失；"),
                    rx.list_item("已发放但用户未使用、且已过有效期的券，标记为已过期，背后的券码一并作废。"),
                ),
                rx.text("处理结果与操作人会记入操作日志。", color_scheme="gray", size="2"),
                spacing="2",
            ),
        ),
        back=rx.alert_dialog.cancel(rx.button("取消", variant="soft", color_scheme="gray")),
        confirm=rx.alert_dialog.action(rx.button("确认执行", color_scheme="orange", on_click=StockState.run_expiry,
                                                 data_testid="run-expiry-confirm")),
    )


def _expiry_panel() -> rx.Component:
    return rx.cond(
        StockState.expiry_done,
        rx.callout.root(
            rx.callout.icon(rx.icon("timer-reset")),
            rx.callout.text(
                rx.vstack(
                    rx.text("本次过期处理：弃票 ", rx.text.strong(StockState.expiry["discarded"]), " 张（成本 ",
                            StockState.expiry["discarded_cost"], "），过期未使用券 ", rx.text.strong(StockState.expiry["expired"]),
                            " 张（成本 ", StockState.expiry["expired_cost"], "），合计损失 ",
                            rx.text.strong(StockState.expiry["loss"]), "。", data_testid="expiry-summary"),
                    rx.cond(
                        StockState.expiry_rows.length() > 0,
                        rx.table.root(
                            num_header("券种", "弃票", "弃票损失", "过期券", "过期损失"),
                            rx.table.body(rx.foreach(StockState.expiry_rows, lambda r: rx.table.row(
                                rx.table.cell(r["product"]), rx.table.cell(r["discarded"], **NUM),
                                rx.table.cell(r["discarded_cost"], **NUM), rx.table.cell(r["expired"], **NUM),
                                rx.table.cell(r["expired_cost"], **NUM)))),
                            size="1", variant="ghost",
                        ),
                    ),
                    spacing="2",
                ),
            ),
            color_scheme="orange", width="100%", data_testid="expiry-panel",
        ),
    )


def _overview_tab() -> rx.Component:
    return rx.vstack(
        rx.cond(
            StockState.tables.length() > 0,
            rx.grid(rx.foreach(StockState.tables, _summary_card), columns=rx.breakpoints(initial="1", lg="2"),
                    spacing="4", width="100%"),
            rx.card(rx.center(rx.text("暂无券码库存。请在“导入券码”中导入第三方兑换码文件。", color_scheme="gray"),
                              padding="2rem"), width="100%"),
        ),
        rx.text("有效期分段按券码自身到期日距今天数计算；面值、成本为该行券码合计。“已发未用”“已使用”“已过期”为已发放券码按用户券状态归类。",
                size="1", color_scheme="gray"),
        width="100%", spacing="3",
    )


# --- import ----------------------------------------------------------------------------------

def _report_card() -> rx.Component:
    r = StockImportState.report
    return result_card(
        StockImportState.report.contains("id"),
        (rx.icon("file-check-2", size=18, color=rx.color("green", 10)),
         rx.text("导入报告 #", r["id"], "：", r["filename"], weight="bold"),
         rx.spacer(),
         rx.button(rx.icon("download", size=14), "下载报告", size="1", variant="soft",
                   on_click=StockImportState.download_report(r["id"]), data_testid="report-download")),
        (figure("读取行数", r["rows"], "report-rows"),
         figure("新增券码", r["imported"], "report-imported", "green"),
         figure("其中可发放", r["in_stock"], "report-in-stock"),
         figure("文件内重复", r["dup_file"], "report-dup-file"),
         figure("与已有库存重复", r["dup_existing"], "report-dup-existing"),
         figure("无效行", r["invalid"], "report-invalid", "red"),
         figure("弃票（临期）", r["discarded"], "report-discarded", "orange"),
         figure("弃票损失", r["loss"], "report-loss", "orange")),
        rx.text("新增面值 ", r["face"], " · 新增成本 ", r["cost"], size="2", color_scheme="gray"),
        rx.cond(
            StockImportState.report_invalid.length() > 0,
            rx.vstack(
                rx.text("无效行（前 20 行，完整列表见下载的报告）", size="2", weight="medium"),
                rx.table.root(
                    rx.table.header(rx.table.row(rx.table.column_header_cell("行号", width="6rem"),
                                                 rx.table.column_header_cell("原因"))),
                    rx.table.body(rx.foreach(StockImportState.report_invalid, lambda i: rx.table.row(
                        rx.table.cell(i["row"]), rx.table.cell(i["reason"]), data_testid="invalid-row"))),
                    size="1", variant="surface", width="100%",
                ),
                width="100%", spacing="1",
            ),
        ),
        testid="import-report",
    )


def _history_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["at"], white_space="nowrap"),
        rx.table.cell(row["product_name"], white_space="nowrap"),
        rx.table.cell(row["filename"], max_width="16rem", overflow="hidden", text_overflow="ellipsis",
                      white_space="nowrap", title=row["filename"]),
        rx.table.cell(rx.cond(row["ok"] == "1", rx.badge("成功", color_scheme="green"),
                              rx.cond(row["pending"] == "1", rx.badge(row["status"], color_scheme="blue"),
                                      rx.tooltip(rx.badge("失败", color_scheme="red"), content=row["error"])))),
        rx.table.cell(row["rows"], **NUM),
        rx.table.cell(row["imported"], **NUM),
        rx.table.cell(row["discarded"], **NUM),
        rx.table.cell(row["dup_file"], " / ", row["dup_existing"], **NUM),
        rx.table.cell(row["invalid"], **NUM),
        rx.table.cell(row["loss"], **NUM),
        rx.table.cell(rx.button(rx.icon("download", size=12), "报告", size="1", variant="ghost",
                                on_click=StockImportState.download_report(row["id"])), text_align="right"),
        data_testid="import-row",
    )


def _import_tab() -> rx.Component:
    s = StockImportState
    form = rx.card(
        rx.vstack(
            rx.text("导入兑换码", weight="bold", size="3"),
            rx.grid(
                field("券种", rx.select.root(
                    rx.select.trigger(placeholder="选择第三方兑换码券种", width="100%", data_testid="import-product"),
                    rx.select.content(rx.foreach(s.products, lambda p: rx.select.item(p["name"], value=p["code"]))),
                    value=s.product_code, on_change=s.set_product,
                ), "只有第三方兑换码类券种有券码库存"),
                field("整批有效期（选填）", rx.input(type="date", value=s.expiry_date, on_change=s.set_expiry_date,
                                               width="100%", data_testid="import-expiry"),
                       "文件中没有有效期列时必填；有效期当天 23:59:59 到期"),
                field("供应商批次号（选填）", rx.input(placeholder="例如 TPP-2026-11-A", value=s.batch_ref,
                                                on_change=s.set_batch_ref, max_length=64, width="100%",
                                                data_testid="import-batch-ref")),
                columns=rx.breakpoints(initial="1", md="3"), spacing="4", width="100%",
            ),
            rx.upload.root(
                rx.vstack(
                    rx.icon("file-up", size=28, color=rx.color("accent", 9)),
                    rx.text("拖拽文件到此处，或点击选择文件", weight="medium"),
                    rx.text(f"支持 CSV（UTF-8 / GBK）与 Excel（.xlsx），最大 {upload_limits().max_bytes // 1024 // 1024} MB。"
                            "列：券码、有效期；可选：面值、成本、批次号",
                            size="1", color_scheme="gray"),
                    rx.foreach(rx.selected_files(UPLOAD_ID), lambda f: rx.badge(rx.icon("file", size=12), f,
                                                                                 variant="surface", size="2",
                                                                                 data_testid="import-selected")),
                    align="center", spacing="2",
                ),
                id=UPLOAD_ID,
                multiple=False,
                max_files=1,
                max_size=upload_limits().max_bytes,
                accept={"text/csv": [".csv"], "text/plain": [".txt"],
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": [".xlsx"],
                        "application/vnd.ms-excel": [".xls"]},
                disabled=s.busy,
                border=f"1px dashed {rx.color('accent', 7)}",
                border_radius="var(--radius-3)",
                padding="1.5rem",
                width="100%",
                background=rx.color("accent", 2),
                cursor="pointer",
                data_testid="import-upload",
            ),
            rx.hstack(
                rx.button(rx.icon("upload", size=14), "开始导入", loading=s.busy,
                          disabled=(s.product_code == "") | (rx.selected_files(UPLOAD_ID).length() == 0),
                          on_click=s.import_file(rx.upload_files_chunk(upload_id=UPLOAD_ID, on_upload_progress=s.on_progress)),
                          data_testid="import-start"),
                rx.cond(rx.selected_files(UPLOAD_ID).length() > 0,
                        rx.button("清除所选文件", variant="ghost", color_scheme="gray", size="2", disabled=s.busy,
                                  on_click=rx.clear_selected_files(UPLOAD_ID))),
                rx.cond(s.busy, rx.vstack(
                    rx.text(s.phase, rx.cond(s.phase == "上传中", rx.text.span(" ", s.upload_pct, "%"), ""),
                            rx.cond(s.phase == "导入中", "（可以离开此页面，导入会在后台继续）", ""), size="2",
                            data_testid="import-phase"),
                    rx.progress(value=rx.cond(s.phase == "上传中", s.upload_pct, 100), width="18rem",
                                duration="2s"),
                    spacing="1",
                )),
                align="center", spacing="3", width="100%",
            ),
            rx.cond(s.error != "", rx.callout(s.error, icon="triangle-alert", color_scheme="red", size="1", width="100%",
                                              data_testid="import-error")),
            spacing="3", width="100%",
        ),
        width="100%",
    )
    return rx.vstack(
        form,
        _report_card(),
        rx.hstack(rx.text("导入记录", weight="bold", size="3"), rx.spacer(),
                  rx.button(rx.icon("refresh-cw", size=12), "刷新", size="1", variant="ghost", on_click=s.search),
                  width="100%", align="center", padding_top="0.5rem"),
        list_table(s, num_header("时间", "券种", "文件", "状态", "读取", "新增", "弃票", "重复（文件/已有）", "无效", "弃票损失", "",
                                 right_from=4),
                   _history_row, empty_row(11, "暂无导入记录"), size="1", data_testid="import-history"),
        width="100%", spacing="3",
    )


# --- code list -------------------------------------------------------------------------------

def _code_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(row["code"], variant="ghost")),
        rx.table.cell(row["product"]),
        rx.table.cell(state_badge(row["state_key"], row["state"])),
        rx.table.cell(row["expires"], white_space="nowrap"),
        rx.table.cell(row["face"], **NUM),
        rx.table.cell(row["cost"], **NUM),
        rx.table.cell(row["import"]),
        rx.table.cell(row["batch"]),
        rx.table.cell(row["phone"], white_space="nowrap"),
        data_testid="code-row",
    )


def _codes_tab() -> rx.Component:
    s = StockCodesState
    return rx.vstack(
        filter_bar(
            s,
            filter_select(s.product, s.set_product, "全部券种",
                          rx.foreach(s.products, lambda p: rx.select.item(p["name"], value=p["code"]))),
            filter_select(s.state, s.set_state, "全部状态", SUMMARY_STATE_LABELS),
            rx.text("有效期", size="2"),
            rx.input(type="date", value=s.exp_from, on_change=s.set_exp_from, width="9.5rem"),
            rx.text("至", size="2"),
            rx.input(type="date", value=s.exp_to, on_change=s.set_exp_to, width="9.5rem"),
            rx.input(placeholder="完整券码精确查找", value=s.code_q, on_change=s.set_code_q, width="13rem",
                     max_length=128, data_testid="code-search"),
            reset=True, export_testid="codes-export",
        ),
        rx.cond(s.error != "", rx.callout(s.error, icon="triangle-alert", color_scheme="red", size="1")),
        list_table(s, table_header(s, "券码", Col("券种", "product"), Col("状态", "state"), Col("有效期至", "expires_at"),
                                   Col("面值", "face_fen", num=True), Col("成本", "cost_fen", num=True),
                                   Col("导入", "import_id"), "批次号", "领取手机号"),
                   _code_row, empty_row(9, "没有符合条件的券码"), size="1", data_testid="code-table"),
        rx.text("券码在列表中始终部分隐藏；如需完整券码，请由客服在用户详情中按流程查看（会记入操作日志）。",
                size="1", color_scheme="gray"),
        width="100%", spacing="3",
    )


# --- page ------------------------------------------------------------------------------------

@staff_page("stock", "券库存")
def stock_page() -> rx.Component:
    st = StockState.stats
    return rx.vstack(
        rx.hstack(
            stat_card("在库可发", st["in_stock"], "boxes", "stat-in-stock"),
            stat_card("在库面值", st["in_stock_face"], "wallet", "stat-in-stock-face"),
            stat_card("60 天内到期（在库）", st["lt60"], "hourglass", "stat-lt60"),
            stat_card("累计弃票损失", st["discarded_cost"], "trash-2", "stat-discarded-cost"),
            rx.spacer(),
            rx.vstack(
                _expiry_dialog(),
                rx.button(rx.icon("refresh-cw", size=14), "刷新", variant="ghost", on_click=StockState.load, size="2"),
                align="end", spacing="2",
            ),
            wrap="wrap", spacing="4", width="100%", align="center",
        ),
        _expiry_panel(),
        rx.tabs.root(
            rx.tabs.list(
                rx.tabs.trigger("库存概览", value="overview", data_testid="tab-overview"),
                rx.tabs.trigger("导入券码", value="import", data_testid="tab-import"),
                rx.tabs.trigger("券码明细", value="codes", data_testid="tab-codes"),
                rx.tabs.trigger("券种管理", value="products", data_testid="tab-products"),
            ),
            rx.tabs.content(_overview_tab(), value="overview", padding_top="1rem"),
            rx.tabs.content(_import_tab(), value="import", padding_top="1rem"),
            rx.tabs.content(_codes_tab(), value="codes", padding_top="1rem"),
            rx.tabs.content(products_tab(), value="products", padding_top="1rem"),
            default_value="overview",
            width="100%",
        ),
        width="100%",
        spacing="4",
    )
