"""The money pages' Reflex handlers: 流水 (the ledger list and its export) and 对账 (reconciling a WeChat Pay
trade bill, uploaded or fetched), and the helpers in ``payments.views``.

States are built with ``tests.support.state_of`` (a real staff session's token where the cookie would put
it); orders are paid for real through the WeChat Pay simulator wired in-process (the ``paid`` fixture).
"""

from __future__ import annotations

import datetime as dt
import io

import polars as pl
import pytest

from gc_admin.core.clock import SHANGHAI, UTC, utcnow
from gc_admin.db import session_scope
from gc_admin.integrations.wechatpay.simulator import build_trade_bill, finish_refund
from gc_admin.orders import display, flows, refunds
from gc_admin.payments import display as pay_display
from gc_admin.payments import ledger as pay_ledger
from gc_admin.payments.state import LedgerState, ReconcileState
from tests.support import downloaded, drain, run, scalar, sign_in, state_of, toasts, upload_file
from tests.unit.orders.support import COLLEAGUE, buy, pay, topup_order


# --- ledger and reconciliation ------------------------------------------------------------------------

def test_ledger_lists_totals_and_exports_exactly_the_ledger(paid):
    w, order, user = paid
    topup_order(user, w)
    with session_scope() as s:
        r = refunds.refund_order(s, order_id=order.id, amount_fen=4_500, reason="退一张",
                                 actor=COLLEAGUE)
    with session_scope() as s:
        refunds.send_refund(s, refund_id=r.id)
    finish_refund(w.state, r.out_refund_no)

    async def scenario():
        led = await state_of(LedgerState, sign_in("mgr"))
        chained = await led.load()
        listing = (list(led.rows), list(led.totals), led.net, led.total)
        events = await drain(led.export())
        led.set_order_no(order.order_no)
        await led.search()
        filtered = (led.total, led.net)
        await led.set_kind("refund")
        only_refunds = [t["label"] for t in led.totals]
        led.set_date_from("2026-12-02")
        led.set_date_to("2026-12-01")
        await led.search()
        return chained, listing, events, filtered, only_refunds, led.error

    chained, (rows_, totals, net, total), events, filtered, only_refunds, range_error = run(scenario())
    assert chained.fn.__qualname__ == "ReconcileState.load"
    assert total == 3 and net == "¥140.00"  # 135 + 50 - 45
    assert [(t["label"], t["count"], t["net"]) for t in totals] == [("支付", "2", "¥185.00"), ("退款", "1", "-¥45.00")]
    assert rows_[0]["kind_label"] == "退款" and rows_[0]["amount"] == "-¥45.00" and rows_[0]["sign"] == "neg"
    name, data = downloaded(events[1])
    assert name == f"流水-{utcnow().astimezone(SHANGHAI):%Y%m%d}.xlsx"
    assert toasts(events) == [("success", "已导出 3 条流水记录")]  # the count of rows the export task wrote
    frame = pl.read_excel(io.BytesIO(data))
    with session_scope() as s:
        ledger = pay_ledger.list_ledger(s, limit=200).rows
    assert frame["流水ID"].to_list() == sorted(e.id for e in ledger)
    by_id = {e.id: e for e in ledger}
    assert [(by_id[i].amount_fen, by_id[i].ref) for i in frame["流水ID"].to_list()] == list(
        zip(frame["金额（分）"].to_list(), frame["业务单号"].to_list()))
    assert filtered == (2, "¥90.00") and only_refunds == ["退款"]
    assert range_error == "开始日期不能晚于结束日期"


def test_manager_reconciles_an_uploaded_bill_and_a_fetched_one(paid):
    """A payment whose notify was lost shows as "账单有、流水无"; once applied (payment query), the
    day's bill fetched from WeChat Pay matches."""
    w, order, user = paid
    lost = buy(user, 1)
    pay(w, lost, deliver=False)
    today = utcnow().astimezone(SHANGHAI).date()
    bill = build_trade_bill(w.state, today)
    assert bill is not None

    async def upload():
        rec = await state_of(ReconcileState, sign_in("mgr"))
        await rec.load()
        events = await drain(rec.upload_bill([upload_file(bill, "微信账单.csv")]))
        result, mismatches = dict(rec.result), list(rec.mismatches)
        junk = await drain(rec.upload_bill([upload_file(b"not,a,bill\n1,2,3\n")]))
        return rec, events, result, mismatches, junk, rec.error

    rec, events, first, mismatches, junk, junk_error = run(upload())
    assert toasts(events)[-1] == ("warning", f"对账完成（{today.isoformat()}）：一致 1 笔，差异 1 笔，请核查")
    assert (first["matched"], first["ok"], first["missing_in_ledger"], first["bill_net"], first["ledger_net"]) == (
        "1", "", "1", "¥180.00", "¥135.00")
    assert [(m["kind_label"], m["entry"], m["key"], m["bill"], m["ledger"]) for m in mismatches] == [
        ("账单有、流水无", "支付", lost.order_no, "¥45.00", "—")]
    assert toasts(junk)[-1][0] == "error" and junk_error.startswith("无法识别的微信支付交易账单")

    with session_scope() as s:  # what the clerk does about it: ask WeChat Pay, which applies the payment
        assert flows.sync_payment(s, order_id=lost.id) == "applied"

    async def fetch():
        rec.set_bill_date(today.isoformat())
        events = await drain(rec.fetch_bill())
        fetched = dict(rec.result)
        await rec.open_run(first["id"])
        reopened = dict(rec.result)
        return events, fetched, reopened, await rec.download_mismatches()

    events, fetched, reopened, csv_download = run(fetch())
    assert toasts(events)[-1] == ("success", f"对账完成（{today.isoformat()}）：2 笔全部一致")
    assert (fetched["matched"], fetched["ok"], fetched["bill_net"]) == ("2", "1", "¥180.00")
    assert reopened["id"] == first["id"] and reopened["missing_in_ledger"] == "1"
    assert [h["bill_date"] for h in rec.history] == [today.isoformat()] * 2
    name, data = downloaded(csv_download)
    assert name == f"对账差异-{today:%Y%m%d}-{first['id']}.csv" and lost.order_no.encode() in data
    assert scalar("SELECT count(*) FROM reconciliation_run") == 2


def test_ledger_filter_and_file_name():
    f = pay_ledger.ledger_filter(kind="all", provider="wechatpay", order_no=" gc2026-1122 ", date_from="2026-11-01",
                                date_to="2026-11-30")
    assert (f.kind, f.provider, f.order_no, f.date_from, f.date_to) == (
        None, "wechatpay", "gc20261122", dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    with pytest.raises(ValueError, match="开始日期格式不正确"):
        pay_ledger.ledger_filter(date_from="2026/11/01")
    with pytest.raises(ValueError, match="未知的流水类型"):
        pay_ledger.ledger_filter(kind="bitcoin")
    assert pay_display.export_filename(dt.datetime(2026, 11, 21, 17, 0, tzinfo=UTC)) == "流水-20261122.xlsx"
    assert display.refund_consequence(amount_fen=4_500, paid_fen=13_500, refunded_fen=0, order_type="coupon_purchase") == (
        "将向用户退款 ¥45.00（原支付 ¥135.00，已退 ¥0.00），原路退回用户的微信支付；该订单购买的未使用券将作废并回到库存。提交后不可撤销。")
