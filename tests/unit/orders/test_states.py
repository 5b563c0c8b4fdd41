"""The money pages' Reflex handlers (订单看板, 流水与对账, the sidebar's 新订单 badge) and their helpers
(``orders.display``, ``payments.display``, ``payments.ledger``).

States are built with ``tests.support.state_of`` (``rx.State(_reflex_internal_init=True)``, a real staff
session's token where the cookie would put it). Orders are paid for real: the WeChat Pay
client and the simulator's notifies are wired in-process (``tests.support.wired``),
so a refund goes through the same client, simulator and refund notify as in the running app.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from gc_admin.core.clock import SHANGHAI, UTC, utcnow
from gc_admin.db import session_scope
from gc_admin.integrations.wechatpay.simulator import finish_refund
from gc_admin.orders import display, refunds
from gc_admin.orders import service as orders
from gc_admin.orders.badge import OrdersBadgeState, waiting_count
from gc_admin.orders.state import OrdersState
from gc_admin.payments.state import LedgerState, ReconcileState
from tests.support import DENIED, drain, exported, rows, run, scalar, sign_in, state_of, toast, toasts, upload_file
from tests.unit.orders.support import COLLEAGUE, get, topup_order


def money_counts() -> dict[str, int]:
    return {t: scalar(f"SELECT count(*) FROM {t}") for t in
            ("refund", "ledger_entry", "order_event", "reconciliation_run", "audit_log")}


async def order_panel(token: str, order) -> OrdersState:
    """The orders page as ``token`` sees it, with ``order``'s panel open."""
    st = await state_of(OrdersState, token)
    await st.load()
    await st.open_order(str(order.id))
    return st


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
        out["upload"] = await drain(rec.upload_bill([upload_file(b"whatever")]))
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
        st2 = await order_panel(token, order)
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
        st = await order_panel(sign_in("kefu"), order)
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
        st = await order_panel(sign_in("chen"), order)
        await st.preview_refund({"amount": "135", "reason": "全部退"})
        with session_scope() as s:  # a colleague got there first
            refunds.refund_order(s, order_id=order.id, amount_fen=4_500, reason="先退一张",
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

def test_the_pages_build():
    """The page functions evaluate and render (what ``reflex run`` compiles), with the badge in the sidebar."""
    from gc_admin.orders.page import orders_page
    from gc_admin.payments.page import ledger_page

    for page, testid in ((orders_page, "refund-confirm"), (ledger_page, "ledger-export")):
        rendered = str(page().render())
        assert "orders-badge" in rendered and testid in rendered


# --- the list: exports carry the filtered rows, paid unaccepted orders first --------------------------

def test_order_export_has_every_filtered_row_in_the_lists_order(office):
    async def scenario():
        st = await state_of(OrdersState, sign_in("chen"))
        await st.set_status("completed")
        shown = [r["order_no"] for r in st.rows]
        await st.sort_by("order_no")
        await st.sort_by("order_no")  # descending
        return st.total, shown, [r["order_no"] for r in st.rows], await drain(st.export())

    total, shown, sorted_desc, events = run(scenario())
    assert total == 13 and len(shown) == 13
    name, frame = exported(events)
    assert name.startswith("订单-")
    assert frame.height == 13 and set(frame["状态"].to_list()) == {"已完成"}
    assert frame["订单号"].to_list() == sorted_desc == sorted(sorted_desc, reverse=True)
    assert frame.columns[:4] == ["订单号", "类型", "状态", "用户手机号"]
    assert all("****" in p for p in frame["用户手机号"].to_list())
    assert toasts(events) == [("success", "已导出 13 条订单记录")]


def test_the_queue_shows_paid_unaccepted_orders_first(office):
    async def scenario():
        st = await state_of(OrdersState, sign_in("chen"))
        await st.load()
        return st.rows

    rows = run(scenario())
    paid = [r["order_no"] for r in rows if r["status"] == "paid"]
    assert [r["status"] for r in rows[:12]] == ["paid"] * 12
    assert paid == [f"GC{i:04d}" for i in range(23, 0, -2)]  # paid 23 minutes ago (longest waiting) first
    assert [r["order_no"] for r in rows[12:14]] == ["GC0024", "GC0022"]  # then the rest, newest row first


def test_display_modules_are_pure_and_no_views_module_is_left():
    """Issue 8: ``views.py`` meant "display formatting" here and "queries + parsing" in coupons. Here it is
    now ``display.py``: formatting only — no database, no session parameter (queries are services)."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[3] / "gc_admin"
    assert not (root / "orders" / "views.py").exists() and not (root / "payments" / "views.py").exists()
    for room in ("orders", "payments"):
        tree = ast.parse((root / room / "display.py").read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not {m for m in imported if m and m.split(".")[0] in ("sqlmodel", "sqlalchemy")}, room
        assert "gc_admin.db" not in imported, room
        params = {a.arg for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                  for a in f.args.kwonlyargs + f.args.args}
        assert "session" not in params, room


def test_the_order_dialogs_are_the_shared_skeletons():
    """Issue 8: the detail panel, the action and refund forms and the refund confirmation are
    ui.components.dialog / confirm_dialog, not hand-written rx.dialog.root / rx.alert_dialog.root."""
    import pathlib

    page = (pathlib.Path(__file__).resolve().parents[3] / "gc_admin" / "orders" / "page.py").read_text(
        encoding="utf-8")
    assert "rx.dialog.root(" not in page and "rx.alert_dialog.root(" not in page
    assert page.count("dialog(") >= 4
