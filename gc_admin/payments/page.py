"""流水与对账 page: the ledger (filter, totals by kind, export to Excel) and trade-bill reconciliation."""

from __future__ import annotations

import reflex as rx

from gc_admin.core.uploads import limits as upload_limits
from gc_admin.payments.display import PROVIDERS
from gc_admin.payments.models import LEDGER_KINDS
from gc_admin.payments.state import UPLOAD_ID, LedgerState, ReconcileState
from gc_admin.ui.components import (NUM, Col, empty_row, figure, filter_bar, filter_select, list_table, result_card,
                                    table_header)
from gc_admin.ui.layout import staff_page

KIND_COLORS = {"payment": "green", "refund": "red", "points": "amber", "stored_value": "blue", "cashback_payout": "purple"}
MISMATCH_COLORS = {"missing_in_ledger": "red", "missing_in_bill": "orange", "amount_differs": "amber"}


def _money(value: rx.Var, sign: rx.Var, **props) -> rx.Component:
    return rx.text(value, color_scheme=rx.cond(sign == "neg", "red", "gray"), **props)


# --- ledger ---------------------------------------------------------------------------------------------

def _ledger_filters() -> rx.Component:
    s = LedgerState
    return filter_bar(
        s,
        filter_select(s.kind, s.set_kind, "全部类型", LEDGER_KINDS, width="8rem", data_testid="ledger-kind"),
        filter_select(s.provider, s.set_provider, "全部渠道", PROVIDERS, width="8rem", data_testid="ledger-provider"),
        rx.text("日期", size="2"),
        rx.input(type="date", value=s.date_from, on_change=s.set_date_from, width="9.5rem", data_testid="ledger-from"),
        rx.text("至", size="2"),
        rx.input(type="date", value=s.date_to, on_change=s.set_date_to, width="9.5rem", data_testid="ledger-to"),
        rx.input(placeholder="订单号", value=s.order_no, on_change=s.set_order_no, width="14rem", max_length=32,
                 data_testid="ledger-order-no"),
        search_testid="ledger-search", reset=True, export_testid="ledger-export",
    )


def _totals() -> rx.Component:
    s = LedgerState
    return rx.hstack(
        rx.foreach(s.totals, lambda t: rx.card(
            rx.vstack(
                rx.text(t["label"], " · ", t["count"], " 笔", size="1", color_scheme="gray"),
                _money(t["net"], t["sign"], size="4", weight="bold", data_testid="total-" + t["kind"]),
                spacing="0",
            ),
            min_width="9rem",
        )),
        rx.card(
            rx.vstack(rx.text("合计净额 · ", s.total, " 笔", size="1", color_scheme="gray"),
                      rx.text(s.net, size="4", weight="bold", data_testid="ledger-net"), spacing="0"),
            min_width="9rem", background=rx.color("accent", 2),
        ),
        wrap="wrap", spacing="3", width="100%",
    )


def _ledger_row(r: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(r["at"], white_space="nowrap"),
        rx.table.cell(rx.badge(r["kind_label"], variant="soft",
                               color_scheme=rx.match(r["kind"], *KIND_COLORS.items(), "gray"))),
        rx.table.cell(_money(r["amount"], r["sign"], weight="medium"), **NUM),
        rx.table.cell(rx.code(r["order_no"], variant="ghost", size="1")),
        rx.table.cell(r["provider"], white_space="nowrap"),
        rx.table.cell(rx.code(r["provider_ref"], variant="ghost", size="1", color_scheme="gray")),
        rx.table.cell(rx.text(r["note"], size="1", color_scheme="gray", max_width="22rem", truncate=True)),
        data_testid="ledger-row",
    )


def _ledger_tab() -> rx.Component:
    s = LedgerState
    return rx.vstack(
        _ledger_filters(),
        rx.cond(s.error != "", rx.callout(s.error, icon="triangle-alert", color_scheme="red", size="1", width="100%",
                                          data_testid="ledger-error")),
        _totals(),
        list_table(s, table_header(s, Col("发生时间", "occurred_at"), Col("类型", "kind"), Col("金额", "amount_fen", num=True),
                                   Col("订单号", "order_no"), Col("渠道", "provider"), "渠道流水号", "备注"),
                   _ledger_row, empty_row(7, rx.cond(s.loaded, "没有符合条件的流水", "加载中…")),
                   size="1", data_testid="ledger-table"),
        rx.text("流水只增不改：支付为正、退款与打款为负；积分与储值为用户余额变动（积分按 1 分/点计）。日期按北京时间。"
                "导出包含全部符合条件的流水（金额同时给出“分”与“¥”两列）。", size="1", color_scheme="gray"),
        width="100%", spacing="3",
    )


# --- reconciliation -----------------------------------------------------------------------------------------

def _reconcile_form() -> rx.Component:
    s = ReconcileState
    return rx.card(
        rx.vstack(
            rx.text("导入微信支付交易账单对账", weight="bold", size="3"),
            rx.hstack(
                rx.text("账单日期", size="2"),
                rx.input(type="date", value=s.bill_date, on_change=s.set_bill_date, width="10rem",
                         data_testid="bill-date"),
                rx.button(rx.icon("cloud-download", size=14), "从微信支付下载并对账", variant="soft",
                          loading=s.busy, on_click=s.fetch_bill, data_testid="bill-fetch"),
                rx.text("或", size="2", color_scheme="gray"),
                rx.upload.root(
                    rx.button(rx.icon("file-up", size=14), "上传交易账单 CSV", variant="soft", type="button",
                              loading=s.busy),
                    id=UPLOAD_ID, multiple=False, max_files=1, max_size=upload_limits().max_bytes,
                    accept={"text/csv": [".csv"], "text/plain": [".txt"]},
                    on_drop=s.upload_bill(rx.upload_files(upload_id=UPLOAD_ID)),
                    data_testid="bill-upload",
                ),
                align="center", spacing="3", wrap="wrap",
            ),
            rx.text("上传的账单按其交易日期对账（无交易的空账单需选择日期）；账单与当日（北京时间）的微信支付流水逐笔比对：支付按商户订单号、"
                    "退款按商户退款单号。", size="1", color_scheme="gray"),
            rx.cond(s.busy, rx.callout.root(rx.callout.icon(rx.spinner(size="2")), rx.callout.text(s.busy_text),
                                            color_scheme="blue", size="1", width="100%")),
            rx.cond(s.error != "", rx.callout(s.error, icon="triangle-alert", color_scheme="red", size="1", width="100%",
                                              data_testid="reconcile-error")),
            spacing="3", width="100%",
        ),
        width="100%",
    )


def _mismatch_row(m: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.badge(m["kind_label"], variant="soft",
                               color_scheme=rx.match(m["kind"], *MISMATCH_COLORS.items(), "gray"))),
        rx.table.cell(m["entry"]),
        rx.table.cell(rx.code(m["key"], variant="ghost", size="1")),
        rx.table.cell(m["bill"], **NUM),
        rx.table.cell(m["ledger"], **NUM),
        rx.table.cell(m["diff"], **NUM),
        rx.table.cell(rx.code(m["ref"], variant="ghost", size="1", color_scheme="gray")),
        data_testid="mismatch-row",
    )


def _result() -> rx.Component:
    s = ReconcileState
    r = s.result
    return result_card(
        r.contains("id"),
        (rx.cond(r["ok"] == "1", rx.icon("circle-check", size=18, color=rx.color("green", 10)),
                 rx.icon("circle-alert", size=18, color=rx.color("orange", 10))),
         rx.text("对账 #", r["id"], " · 账单日期 ", r["bill_date"], weight="bold"),
         rx.text(r["at"], size="1", color_scheme="gray"),
         rx.spacer(),
         rx.cond(r["ok"] != "1", rx.button(rx.icon("download", size=14), "下载差异明细", size="1",
                                           variant="soft", on_click=s.download_mismatches))),
        (figure("账单笔数", r["bill_rows"], "rec-bill-rows"),
         figure("流水笔数", r["ledger_rows"], "rec-ledger-rows"),
         figure("一致", r["matched"], "rec-matched", "green"),
         figure("账单有、流水无", r["missing_in_ledger"], "rec-missing-in-ledger", "red"),
         figure("流水有、账单无", r["missing_in_bill"], "rec-missing-in-bill", "orange"),
         figure("金额不一致", r["amount_differs"], "rec-amount-differs", "amber"),
         figure("账单净额", r["bill_net"], "rec-bill-net"),
         figure("流水净额", r["ledger_net"], "rec-ledger-net")),
        rx.cond(
            r["ok"] == "1",
            rx.callout("账单与流水逐笔一致。", icon="circle-check", color_scheme="green", size="1", width="100%",
                       data_testid="rec-ok"),
            rx.table.root(
                rx.table.header(rx.table.row(
                    rx.table.column_header_cell("差异"), rx.table.column_header_cell("类型"),
                    rx.table.column_header_cell("商户单号"), rx.table.column_header_cell("账单金额", **NUM),
                    rx.table.column_header_cell("流水金额", **NUM), rx.table.column_header_cell("差额", **NUM),
                    rx.table.column_header_cell("微信单号"),
                )),
                rx.table.body(rx.foreach(s.mismatches, _mismatch_row)),
                size="1", variant="surface", width="100%", data_testid="mismatch-table",
            ),
        ),
        rx.text("账单有、流水无：微信已收款/退款但系统未入账（可能丢失通知，请在订单中查询支付状态）；流水有、账单无：系统入账但账单中没有；"
                "金额不一致：同一笔金额不同。", size="1", color_scheme="gray"),
        testid="reconcile-result",
    )


def _history_row(h: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(h["at"], white_space="nowrap"),
        rx.table.cell(h["bill_date"], white_space="nowrap"),
        rx.table.cell(h["bill_rows"], **NUM),
        rx.table.cell(h["ledger_rows"], **NUM),
        rx.table.cell(h["matched"], **NUM),
        rx.table.cell(h["mismatches"], **NUM),
        rx.table.cell(h["bill_net"], **NUM),
        rx.table.cell(h["ledger_net"], **NUM),
        rx.table.cell(rx.cond(h["ok"] == "1", rx.badge("一致", color_scheme="green", variant="soft"),
                              rx.badge("有差异", color_scheme="orange", variant="soft"))),
        rx.table.cell(rx.button("查看", size="1", variant="ghost", on_click=ReconcileState.open_run(h["id"])),
                      text_align="right"),
        data_testid="reconcile-run-row",
    )


def _reconcile_tab() -> rx.Component:
    s = ReconcileState
    return rx.vstack(
        _reconcile_form(),
        _result(),
        rx.text("对账记录（最近 20 次）", weight="bold", size="3", padding_top="0.5rem"),
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, **(NUM if h in (
                "账单笔数", "流水笔数", "一致", "差异", "账单净额", "流水净额") else {})) for h in (
                "对账时间", "账单日期", "账单笔数", "流水笔数", "一致", "差异", "账单净额", "流水净额", "结果", "")])),
            rx.table.body(rx.cond(s.history.length() > 0, rx.foreach(s.history, _history_row),
                                  empty_row(10, "暂无对账记录"))),
            width="100%", variant="surface", size="1", data_testid="reconcile-history",
        ),
        width="100%", spacing="3",
    )


@staff_page("ledger", "流水与对账")
def ledger_page() -> rx.Component:
    return rx.tabs.root(
        rx.tabs.list(
            rx.tabs.trigger("流水", value="ledger", data_testid="tab-ledger"),
            rx.tabs.trigger("对账", value="reconcile", data_testid="tab-reconcile"),
        ),
        rx.tabs.content(_ledger_tab(), value="ledger", padding_top="1rem"),
        rx.tabs.content(_reconcile_tab(), value="reconcile", padding_top="1rem"),
        default_value="ledger",
        width="100%",
    )
