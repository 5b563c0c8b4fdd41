"""The money pages' Reflex handlers (订单看板, 流水与对账, the sidebar's 新订单 badge) and their helpers
(``orders.display``, ``payments.display``, ``payments.ledger``).

States are built as in ``test_states.py`` / ``test_coupon_states.py`` (``rx.State(_reflex_internal_init=True)``,
a real staff session's token where the cookie would put it). Orders are paid for real: the WeChat Pay
client and the simulator's notifies are wired in-process (``tests.unit.test_orders_support.wired``),
so a refund goes through the same client, simulator and refund notify as in the running app.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import reflex as rx

from gc_admin.audit.service import Actor
from gc_admin.core.clock import SHANGHAI, UTC, utcnow
from gc_admin.db import session_scope
from gc_admin.integrations.wechatpay.simulator import build_trade_bill, finish_refund
from gc_admin.orders import display, flows
from gc_admin.orders import service as orders
from gc_admin.orders.badge import OrdersBadgeState, waiting_count
from gc_admin.orders.state import OrdersState
from gc_admin.payments import display as pay_display
from gc_admin.payments import ledger as pay_ledger
from gc_admin.payments.state import LedgerState, ReconcileState
from tests.unit.test_coupon_states import DENIED, downloaded, drain, run, sign_in, state_of, toast, toasts
from tests.unit.test_orders_support import buy, buyer, get, pay, rows, scalar, shop, wired

COLLEAGUE = Actor("staff", "99", "同事")
STAFF = [("boss", "admin"), ("mgr", "manager"), ("chen", "clerk"), ("kefu", "service"), ("picc", "insurer"),
         ("sup", "supplier"), ("daijia", "dispatcher")]


def money_counts() -> dict[str, int]:
    return {t: scalar(f"SELECT count(*) FROM {t}") for t in
            ("refund", "ledger_entry", "order_event", "reconciliation_run", "audit_log")}


@pytest.fixture
def paid(db, make_staff):
    """Staff of every role; a user who bought 3 × ¥45 movie coupons and paid through the simulator."""
    for name, role in STAFF:
        make_staff(name, role)
    shop()
    user = buyer()
    with wired() as w:
        order = buy(user, 3)
        pay(w, order)
        yield w, get(order.id), user


def topup_order(user, w) -> int:
    """A paid ¥50 phone top-up: it waits in ``paid`` for a clerk (unlike a coupon purchase)."""
    with session_scope() as s:
        order = flows.create_order(s, user=user, body={"type": "topup",
                                                        "details": {"mobile": "13812345678", "face_fen": 5_000}})
    pay(w, order)
    assert get(order.id).status == "paid"
    return order.id or 0


def Upload(data: bytes, name: str = "trade-bill.csv") -> rx.UploadFile:  # noqa: N802
    """What Reflex hands the handler: its own upload file over the bytes (reads to EOF like a file)."""
    return rx.UploadFile(file=io.BytesIO(data), path=Path(name), size=len(data))


# --- refusals ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["signed-out", "picc"])
def test_signed_out_or_insurer_cannot_see_orders_refund_or_read_the_ledger(paid, who):
    w, order, _ = paid
    token = "" if who == "signed-out" else sign_in(who)
    before = money_counts()

    async def scenario():
        out: dict[str, list[Any]] = {}
        st = await state_of(OrdersState, token)
        out["load"] = [await st.load()]
        assert st.rows == [] and st.total == 0
        out["open"] = [await st.open_order(str(order.id))]
        assert st.detail == {} and not st.detail_open
        # a hand-crafted panel and confirmed refund change nothing
        st.detail = {"id": str(order.id), "order_no": order.order_no, "can_refund": "1", "refund_default": "135.00"}
        out["open_refund"] = [await st.open_refund()]
        out["preview"] = [await st.preview_refund({"amount": "45", "reason": "试图退款"})]
        st.refund_preview = {"order_id": str(order.id), "amount_fen": "4500", "reason": "试图退款"}
        out["confirm"] = await drain(st.confirm_refund())
        out["sync"] = [await st.sync_refund("1")]
        st.rows = [{"id": str(order.id), "order_no": order.order_no}]
        out["open_action"] = [await st.open_action(str(order.id), "after_sales")]
        st.act = {"order_id": str(order.id), "action": "after_sales", "order_no": order.order_no}
        out["action"] = await drain(st.confirm_action({"reason": "转售后"}))

        led = await state_of(LedgerState, token)
        out["ledger"] = [await led.load()]
        assert led.rows == [] and led.totals == []
        out["export"] = await drain(led.export())
        rec = await state_of(ReconcileState, token)
        out["rec_load"] = [await rec.load()]
        out["upload"] = await drain(rec.upload_bill([Upload(b"whatever")]))
        rec.bill_date = utcnow().astimezone(SHANGHAI).date().isoformat()
        out["fetch"] = await drain(rec.fetch_bill())
        out["run"] = [await rec.open_run("1")]
        badge = await state_of(OrdersBadgeState, token)
        out["badge"] = [await badge.tick("12:00:00")]
        assert badge.count == 0
        return out

    out = run(scenario())
    for name, events in out.items():
        if who == "signed-out" or name == "badge":  # the badge never toasts a refusal every 15 s
            assert all(e is None for e in events), name
        else:
            assert toasts(events) == [("error", DENIED)], name
    assert money_counts() == before  # no refund, no ledger entry, no history, no reconciliation, no audit
    assert get(order.id).status == "completed" and get(order.id).refunded_fen == 0
    assert w.state.refunds == {}


def test_supplier_sees_a_note_and_no_orders_dispatcher_only_driver_orders(paid):
    _, order, _ = paid

    async def scenario(username):
        st = await state_of(OrdersState, sign_in(username))
        await st.load()
        opened = await st.open_order(str(order.id))
        return st, opened

    sup, opened = run(scenario("sup"))
    assert not sup.visible and sup.rows == [] and "供货商" in sup.scope_note
    assert toast(opened) == ("error", "订单不存在")
    drv, opened = run(scenario("daijia"))
    assert drv.visible and drv.rows == [] and drv.scope_note == "仅显示代驾订单。" and not drv.can_refund
    assert [t["value"] for t in drv.types] == ["driver"]
    assert toast(opened) == ("error", "订单不存在") and not drv.detail_open


# --- the queue and a refund through the handlers ---------------------------------------------------

def test_clerk_finds_the_order_and_refunds_one_coupon(paid):
    w, order, user = paid
    token = sign_in("chen")

    async def scenario():
        st = await state_of(OrdersState, token)
        await st.load()
        st.set_q(order.order_no.lower())
        await st.search()
        row = dict(st.rows[0])
        await st.open_order(str(order.id))
        detail = dict(st.detail)
        steps, history, options = list(st.steps), list(st.history), list(st.refund_options)
        await st.open_refund()
        opened_with = st.refund_amount
        bad = []
        for form in ({"amount": "40", "reason": "买多了一张"}, {"amount": "45", "reason": "  "},
                     {"amount": "4x", "reason": "买多了一张"}, {"amount": "200", "reason": "买多了一张"}):
            assert await st.preview_refund(form) is None and not st.confirm_open
            bad.append(st.refund_error)
        await st.preview_refund({"amount": "45", "reason": "买多了一张"})
        preview = dict(st.refund_preview)
        confirmed = await drain(st.confirm_refund())
        after = dict(st.detail), list(st.refunds)
        return st, row, detail, steps, history, options, opened_with, bad, preview, confirmed, after

    st, row, detail, steps, history, options, opened_with, bad, preview, confirmed, after = run(scenario())
    assert st.total == 1
    assert (row["order_no"], row["type_label"], row["status_label"], row["payable"], row["phone"]) == (
        order.order_no, "购券", "已完成", "¥135.00", "138****5678")
    assert row["summary"].endswith("×3") and row["next"] == ""
    assert detail["can_refund"] == "1" and detail["per_coupon"] == "1" and detail["refundable"] == "¥135.00"
    assert detail["pay_txn"] and detail["pay_amount"] == "¥135.00" and detail["coupons"] == "3"
    assert [s["label"] for s in steps] == ["标价", "应付（微信支付）"] and steps[-1]["amount"] == "¥135.00"
    assert [h["action"] for h in history][:3] == ["下单", "支付", "完成"]
    assert [o["value"] for o in options] == ["45.00", "90.00", "135.00"] and opened_with == "135.00"
    assert bad == ["购券订单按张退款（已使用的券不可退），可退：1 张 ¥45.00、2 张 ¥90.00、3 张 ¥135.00",
                   "请填写退款原因（将记入订单记录）", "退款金额格式不正确，请填写元，最多两位小数，例如 9 或 9.50",
                   "退款金额超过可退金额 ¥135.00"]
    assert preview["text"] == ("将向用户退款 ¥45.00（原支付 ¥135.00，已退 ¥0.00），原路退回用户的微信支付；"
                               "该订单购买的 1 张未使用券将作废并回到库存。提交后不可撤销。")
    kind, message = toasts(confirmed)[-1]
    assert kind == "success" and "已提交微信支付" in message
    detail_after, refunds_after = after
    assert detail_after["refunded"] == "¥45.00" and detail_after["can_refund"] == ""
    assert detail_after["refund_note"] == "有一笔退款正在处理中，完成后才能再次退款。"
    assert [(r["amount"], r["status"], r["coupons"], r["full"], r["by"]) for r in refunds_after] == [
        ("¥45.00", "processing", "1", "部分", "chen")]
    assert scalar("SELECT count(*) FROM refund") == 1 and get(order.id).refunded_fen == 4_500
    assert scalar("SELECT count(*) FROM ledger_entry WHERE kind = 'refund'") == 0  # WeChat has not finished yet

    # WeChat finishes the refund (notify into the app); 刷新状态 shows it
    out_refund_no = refunds_after[0]["no"]
    finish_refund(w.state, out_refund_no)

    async def sync():
        st2 = await state_of(OrdersState, token)
        await st2.load()
        await st2.open_order(str(order.id))
        synced = await st2.sync_refund(st2.refunds[0]["id"])
        return st2, synced

    st2, synced = run(sync())
    assert toast(synced) == ("success", f"退款成功：¥45.00 已退回用户（退款单号 {out_refund_no}）")
    assert st2.refunds[0]["status_label"] == "已退款" and st2.detail["can_refund"] == "1"
    assert st2.detail["status"] == "completed" and st2.detail["refund_default"] == "90.00"
    assert any(h["action"] == "退款到账" for h in st2.history)
    assert rows("SELECT kind, amount_fen FROM ledger_entry WHERE order_id = :o ORDER BY id", o=order.id) == [
        ("payment", 13_500), ("refund", -4_500)]
    assert rows("SELECT c.status FROM coupon c JOIN coupon_purchase_item i ON i.coupon_id = c.id "
                "WHERE i.order_id = :o ORDER BY c.id", o=order.id).count(("available",)) == 2


def test_service_refunds_the_whole_order_and_the_consequence_says_so(paid):
    w, order, _ = paid

    async def scenario():
        st = await state_of(OrdersState, sign_in("kefu"))
        await st.load()
        await st.open_order(str(order.id))
        await st.open_refund()
        await st.preview_refund({"amount": st.refund_amount, "reason": "用户不想要了"})
        text = st.refund_preview["text"]
        events = await drain(st.confirm_refund())
        return st, text, events

    st, text, events = run(scenario())
    assert "将向用户退款 ¥135.00（原支付 ¥135.00，已退 ¥0.00）" in text and "3 张未使用券" in text
    assert "全额退款后订单变为“已退款”" in text
    assert toasts(events)[-1][0] == "success"
    assert st.detail["status"] == "refund_requested" and st.detail["status_label"] == "退款中"
    finish_refund(w.state, st.refunds[0]["no"])
    assert get(order.id).status == "refunded"


def test_refund_race_loses_cleanly(paid):
    """The confirmation was opened, then someone else refunded: the handler refuses, nothing doubles."""
    w, order, _ = paid

    async def scenario():
        st = await state_of(OrdersState, sign_in("chen"))
        await st.load()
        await st.open_order(str(order.id))
        await st.preview_refund({"amount": "135", "reason": "全部退"})
        with session_scope() as s:  # a colleague got there first
            flows.refund_order(s, order_id=order.id, amount_fen=4_500, reason="先退一张",
                                  actor=COLLEAGUE)
        return st, await drain(st.confirm_refund())

    st, events = run(scenario())
    kind, message = toasts(events)[-1]
    assert kind == "error" and message.startswith("退款未执行：")
    assert st.refund_open and st.refund_error
    assert scalar("SELECT count(*) FROM refund") == 1 and get(order.id).refunded_fen == 4_500


# --- staff actions and the badge -----------------------------------------------------------------------

def test_clerk_accepts_a_paid_topup_from_the_queue_and_the_badge_counts_it(paid):
    w, _, user = paid
    topup_id = topup_order(user, w)

    async def scenario():
        badge = await state_of(OrdersBadgeState, sign_in("chen"))
        first = await badge.tick("12:00:00")
        waiting = badge.count
        st = await state_of(OrdersState, sign_in("chen"))
        await st.set_status("paid")
        row = dict(st.rows[0])
        await st.open_action(row["id"], "cancel")
        await drain(st.confirm_action({"reason": ""}))
        cancel_error = st.act_error
        await st.open_action(row["id"], row["next"])
        events = await drain(st.confirm_action({"reason": ""}))
        second = await badge.tick("12:00:15")
        return first, waiting, row, cancel_error, events, badge.count, second, st

    first, waiting, row, cancel_error, events, after, second, st = run(scenario())
    assert first is None and waiting == 1
    assert (row["type_label"], row["next"], row["next_label"], row["age_level"]) == ("话费充值", "accept", "接单", "wait")
    assert cancel_error == "请填写原因"
    assert toasts(events) == [("success", f"订单 {row['order_no']} 已接单，当前状态：已接单")]
    assert get(topup_id).status == "accepted" and after == 0 and second is None and st.rows == []
    with session_scope() as s:
        assert waiting_count(s, role="dispatcher") == 0 and waiting_count(s, role="supplier") == 0


def test_badge_toasts_when_a_new_paid_order_arrives(paid):
    w, _, user = paid

    async def first():
        badge = await state_of(OrdersBadgeState, sign_in("mgr"))
        return badge, await badge.tick("")

    badge, nothing = run(first())
    assert badge.count == 0 and nothing is None
    topup_order(user, w)  # paid through the simulator (its in-process delivery runs its own event loop)
    grew = run(badge.tick(""))
    assert badge.count == 1 and toast(grew) == ("info", "有新的已支付订单待接单（共 1 单）")


def test_age_and_sla():
    now = dt.datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    ago = lambda minutes: now - dt.timedelta(minutes=minutes)  # noqa: E731
    assert display.age_of(status="paid", created_at=ago(100), paid_at=ago(12), now=now) == ("12 分钟", "wait")
    assert display.age_of(status="paid", created_at=ago(100), paid_at=ago(31), now=now) == ("31 分钟", "late")
    assert display.age_of(status="accepted", created_at=ago(125), paid_at=ago(31), now=now) == ("2 小时 5 分", "open")
    assert display.age_of(status="completed", created_at=ago(60 * 50), paid_at=None, now=now) == ("2 天 2 小时", "")
    assert display.age_of(status="after_sales", created_at=ago(0), paid_at=None, now=now) == ("刚刚", "wait")
    assert orders.staff_actions("paid", orders.scope_for("clerk")) == ["accept", "complete", "after_sales"]
    assert orders.staff_actions("created", orders.scope_for("service")) == ["cancel"]
    assert orders.staff_actions("paid", orders.scope_for("supplier")) == []
    assert orders.scope_for("dispatcher").can_refund is False and orders.scope_for("service").can_refund is True


# --- ledger and reconciliation --------------------------------------------------------------------------

def test_ledger_lists_totals_and_exports_exactly_the_ledger(paid):
    w, order, user = paid
    topup_order(user, w)
    with session_scope() as s:
        r = flows.refund_order(s, order_id=order.id, amount_fen=4_500, reason="退一张",
                                  actor=COLLEAGUE)
    with session_scope() as s:
        flows.send_refund(s, refund_id=r.id)
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
    assert toasts(events) == [("success", "已导出 3 条流水")]
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
        events = await drain(rec.upload_bill([Upload(bill, "微信账单.csv")]))
        result, mismatches = dict(rec.result), list(rec.mismatches)
        junk = await drain(rec.upload_bill([Upload(b"not,a,bill\n1,2,3\n")]))
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


def test_the_pages_build():
    """The page functions evaluate and render (what ``reflex run`` compiles), with the badge in the sidebar."""
    from gc_admin.orders.page import orders_page
    from gc_admin.payments.page import ledger_page

    for page, testid in ((orders_page, "refund-confirm"), (ledger_page, "ledger-export")):
        rendered = str(page().render())
        assert "orders-badge" in rendered and testid in rendered
