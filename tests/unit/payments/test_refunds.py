"""Refunds: recorded first with a fixed out_refund_no, then sent; per coupon for coupon purchases; the
result applied once (sync answer, notify or query); failures undone; retries de-duplicated by WeChat;
concurrent requests for one order refunded once (SQLite and PostgreSQL, threads + barrier)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import httpx
import pytest

from gc_admin.audit.service import Actor
from gc_admin.core.errors import Conflict, InvalidInput, UpstreamError
from gc_admin.coupons import service as coupons
from gc_admin.db import session_scope
from gc_admin.integrations.wechatpay import setup
from gc_admin.integrations.wechatpay.simulator import finish_refund, make_notify, refund_notify_resource
from gc_admin.orders import display, flows, refunds
from gc_admin.orders import service as orders
from gc_admin.payments import balances
from gc_admin.payments import service as payments
from gc_admin.users.models import MpUser
from tests.support import race, rows, scalar, wired
from tests.unit.orders.support import CLERK, REFUND_NOTIFY_PATH, buy, buyer, get, paid_order, pay, purse, shop


class Down(httpx.BaseTransport):
    def handle_request(self, request):
        raise httpx.ConnectError("down", request=request)


def request_refund(order_id: int, amount_fen: int, reason: str = "用户申请退款", actor: Actor = CLERK):
    with session_scope() as s:
        return refunds.refund_order(s, order_id=order_id, amount_fen=amount_fen, reason=reason, actor=actor)


def send(refund_id: int):
    """Ask WeChat Pay in a unit of work of its own (a refusal is committed, then raised)."""
    return refunds.send_refund_now(refund_id=refund_id)


def refund(order_id: int, amount_fen: int, **kw):
    """What the admin route does: record (commit), then send."""
    return send(request_refund(order_id, amount_fen, **kw).id)


def coupon_states(order_id: int) -> list[tuple[str, str | None, bool]]:
    return rows("SELECT c.status, c.reserved_for, c.stock_code_id IS NOT NULL FROM coupon_purchase_item i "
                "JOIN coupon c ON c.id = i.coupon_id WHERE i.order_id = :o ORDER BY c.id", o=order_id)


@pytest.fixture
def bought(any_db):
    """A paid order of 3 × ¥45 movie coupons and the wired WeChat Pay simulator."""
    with paid_order() as world:
        yield world


def test_refund_one_coupon_then_the_rest(bought) -> None:
    w, order, user = bought
    with pytest.raises(InvalidInput) as err:
        request_refund(order.id, 4_000)
    assert err.value.code == "REFUND_PER_COUPON"
    assert "1 张 ¥45.00" in err.value.message and "3 张 ¥135.00" in err.value.message
    r = refund(order.id, 4_500, reason="买多了一张")
    assert (r.status, r.coupons, r.full, r.out_refund_no) == ("processing", 1, False, f"RF{order.order_no[2:]}01")
    assert w.state.refunds[r.out_refund_no].refund == 4_500
    held = [c for c in coupon_states(order.id) if c[0] == "reserved"]
    assert held == [("reserved", f"refund:{r.out_refund_no}", True)]  # out of the user's hands meanwhile
    held_id = scalar("SELECT id FROM coupon WHERE status = 'reserved'")
    with session_scope() as s:
        with pytest.raises(Conflict) as cerr:
            coupons.use_coupon(s, user=s.get(MpUser, user.id), coupon_id=held_id)
    assert cerr.value.code == "COUPON_RESERVED"
    with pytest.raises(Conflict) as err2:  # one refund in flight per order
        request_refund(order.id, 4_500)
    assert err2.value.code == "REFUND_IN_PROGRESS"
    notify = finish_refund(w.state, r.out_refund_no)
    assert notify is not None and notify.status == 204
    done = get(order.id)
    assert (done.status, done.refunded_fen) == ("completed", 4_500)
    assert sorted(coupon_states(order.id)) == [("available", None, True), ("available", None, True),
                                               ("expired", f"revoked:{r.out_refund_no}", False)]
    with session_scope() as s:  # shown to the owner and to staff as revoked (已退回), not as expired
        me = s.get(MpUser, user.id)
        assert [c.status for c in coupons.list_user_coupons(s, user=me, status="revoked")] == ["revoked"]
        assert coupons.list_user_coupons(s, user=me, status="expired") == []
        assert sorted(c.status for c in coupons.user_coupons_for_staff(s, phone=me.phone)) == [
            "available", "available", "revoked"]
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 8  # 10 - 3 sold + 1 back
    # the rest: two coupons, which makes it a full refund
    with pytest.raises(Conflict) as err:
        request_refund(order.id, 13_500)
    assert err.value.code == "REFUND_EXCEEDS_PAID"
    r2 = refund(order.id, 9_000, reason="全部退掉")
    assert r2.full and r2.coupons == 2 and get(order.id).status == "refund_requested"
    finish_refund(w.state, r2.out_refund_no)
    final = get(order.id)
    assert (final.status, final.paid_fen, final.refunded_fen) == ("refunded", 13_500, 13_500)
    assert [c[0] for c in coupon_states(order.id)] == ["expired"] * 3
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 10
    assert rows("SELECT kind, amount_fen FROM ledger_entry ORDER BY id") == [
        ("payment", 13_500), ("refund", -4_500), ("refund", -9_000)]
    with session_scope() as s:
        actions = [e.action for e in orders.order_history(s, order_id=order.id)]
    assert actions == ["create", "pay", "complete", "refund_partial", "refund_succeeded", "request_refund", "refunded"]


def test_used_codes_are_not_refundable(bought) -> None:
    _, order, user = bought
    with session_scope() as s:
        first = coupons.list_user_coupons(s, user=s.get(MpUser, user.id))[0]
        coupons.use_coupon(s, user=s.get(MpUser, user.id), coupon_id=first.id)
    with pytest.raises(InvalidInput) as err:
        request_refund(order.id, 13_500)
    assert err.value.code == "REFUND_PER_COUPON"
    assert "2 张 ¥90.00" in err.value.message and "3 张" not in err.value.message
    r = refund(order.id, 9_000)
    assert r.coupons == 2 and not r.full  # the revealed coupon's share stays paid
    assert scalar("SELECT count(*) FROM coupon WHERE status = 'used'") == 1



def _refundable_everywhere(order_id: int) -> tuple[int, int, str, str, str, str]:
    """可退 as each place computes it: the service, the staff API view, the 订单看板 detail panel (figure,
    the refund dialog's default amount, whether it offers a refund, its note)."""
    with session_scope() as s:
        order = orders.get_order(s, order_id=order_id)
        scope = orders.scope_for("clerk")
        detail = display.order_detail(flows.staff_detail(s, order_id=order_id, scope=scope), scope=scope)["order"]
        return (refunds.refundable_fen(s, order=order),
                flows.order_view(s, order=order, for_staff=True)["refundable_fen"],
                detail["refundable"], detail["refund_default"], detail["can_refund"], detail["refund_note"])


def test_refundable_leaves_out_used_coupons_everywhere(bought) -> None:
    """Issue 7: 3 bought, 1 revealed — ¥90 can be refunded, and every figure says ¥90, not ¥135."""
    w, order, user = bought
    assert _refundable_everywhere(order.id) == (13_500, 13_500, "¥135.00", "135.00", "1", "")
    with session_scope() as s:
        first = coupons.list_user_coupons(s, user=s.get(MpUser, user.id))[0]
        coupons.use_coupon(s, user=s.get(MpUser, user.id), coupon_id=first.id)
    assert _refundable_everywhere(order.id) == (9_000, 9_000, "¥90.00", "90.00", "1", "")
    with pytest.raises(Conflict) as err:
        request_refund(order.id, 20_000)
    assert err.value.code == "REFUND_EXCEEDS_PAID" and err.value.message == "退款金额超过可退金额 ¥90.00"
    r = refund(order.id, 4_500)
    finish_refund(w.state, r.out_refund_no)
    assert _refundable_everywhere(order.id) == (4_500, 4_500, "¥45.00", "45.00", "1", "")
    with session_scope() as s:  # the user reveals the last unused one: nothing is refundable any more
        last = [c for c in coupons.list_user_coupons(s, user=s.get(MpUser, user.id), status="available")]
        assert len(last) == 1
        coupons.use_coupon(s, user=s.get(MpUser, user.id), coupon_id=last[0].id)
    assert _refundable_everywhere(order.id) == (0, 0, "¥0.00", "", "", "该订单购买的券已全部使用或已退，不能再退款。")
    with pytest.raises(Conflict) as err:
        request_refund(order.id, 4_500)
    assert err.value.code == "COUPONS_USED"

def test_uneven_split_sums_to_the_paid_amount(any_db) -> None:
    shop(price_fen=1_000)
    user = buyer()
    with session_scope() as s:
        balances.move_points(s, user_id=user.id, delta=1, reason="赠送", ref="g1")
    with wired() as w:
        order = buy(user, 3, points=1)  # pays 2999 for 3 coupons
        pay(w, order)
        with session_scope() as s:
            assert refunds.refund_values(s, order=get(order.id)) == [999, 1_999, 2_999]
        for amount in (999, 1_000, 1_000):  # one coupon at a time: the remainders spread, nothing lost
            with session_scope() as s:
                assert refunds.refund_values(s, order=get(order.id))[0] == amount
            r = refund(order.id, amount)
            finish_refund(w.state, r.out_refund_no)
    final = get(order.id)
    assert final.status == "refunded" and final.refunded_fen == final.paid_fen == 2_999
    with session_scope() as s:
        assert balances.balances(s, user_id=user.id) == (1, 0)  # the point came back with the full refund


def test_retry_reuses_the_refund_number(bought) -> None:
    w, order, _ = bought
    recorded = request_refund(order.id, 4_500)
    setup.set_transport(Down())
    try:
        first = send(recorded.id)
    finally:
        setup.set_transport(w.transport)
    assert first.status == "pending" and first.attempts == 1 and "TRANSPORT_ERROR" in (first.error or "")
    assert w.state.refunds == {}
    with session_scope() as s:
        assert refunds.retry_pending_refunds(s, older_than=dt.timedelta(0)) == 1
    again = send(recorded.id)  # already processing: a query, nothing sent again
    assert again.status == "processing" and again.out_refund_no == recorded.out_refund_no
    assert list(w.state.refunds) == [recorded.out_refund_no] and w.state.refunded(order.order_no) == 4_500
    # the client sends the very same out_refund_no again (as after a crash): WeChat de-duplicates
    with session_scope() as s:
        payments._client().refund(out_refund_no=recorded.out_refund_no, out_trade_no=order.order_no,
                                  refund_fen=4_500, total_fen=13_500)
    assert len(w.state.refunds) == 1 and w.state.refunded(order.order_no) == 4_500


def test_sync_refund_applies_the_result_without_a_notify(bought) -> None:
    w, order, _ = bought
    r = refund(order.id, 4_500)
    with session_scope() as s:
        assert refunds.sync_refund(s, refund_id=r.id).status == "processing"  # WeChat is still on it
    finish_refund(w.state, r.out_refund_no, deliver=False)  # done, but the notify is lost
    with session_scope() as s:  # the job looks at refunds still in flight
        assert refunds.retry_pending_refunds(s, older_than=dt.timedelta(0)) == 1
    with session_scope() as s:
        synced = payments.get_refund(s, refund_id=r.id)
        assert refunds.retry_pending_refunds(s, older_than=dt.timedelta(0)) == 0
    assert synced.status == "succeeded" and synced.refund_id == w.state.refunds[r.out_refund_no].refund_id
    assert scalar("SELECT count(*) FROM ledger_entry WHERE kind = 'refund'") == 1


def test_refusal_and_abnormal_refunds_are_undone(bought) -> None:
    w, order, _ = bought
    # someone refunded the whole order outside this system: WeChat refuses ours as NOT_ENOUGH
    payments._client().refund(out_refund_no="MANUAL1", out_trade_no=order.order_no, refund_fen=13_500,
                              total_fen=13_500)
    recorded = request_refund(order.id, 4_500)
    with pytest.raises(UpstreamError) as err:
        send(recorded.id)
    assert err.value.code == "REFUND_REFUSED"
    failed = get(order.id)
    assert failed.refunded_fen == 0 and failed.status == "completed"
    assert rows("SELECT status, provider_status FROM refund") == [("failed", "NOT_ENOUGH")]
    assert [c[0] for c in coupon_states(order.id)] == ["available"] * 3


def test_the_flow_commits_a_refusal_the_error_does_not(bought) -> None:
    """Issue 8: REFUND_REFUSED no longer carries "commit me" (keep_changes). Inside the caller's unit of
    work the refusal rolls back with it — the refund stays pending, its amount reserved, for the retry;
    refunds.send_refund_now commits the refusal in its own unit of work and then raises."""
    w, order, _ = bought
    payments._client().refund(out_refund_no="MANUAL1", out_trade_no=order.order_no, refund_fen=13_500,
                              total_fen=13_500)
    recorded = request_refund(order.id, 4_500)
    with pytest.raises(UpstreamError) as err:
        with session_scope() as s:
            refunds.send_refund(s, refund_id=recorded.id)
    assert err.value.code == "REFUND_REFUSED" and not getattr(err.value, "keep_changes", False)
    assert rows("SELECT status FROM refund") == [("pending",)] and get(order.id).refunded_fen == 4_500
    with pytest.raises(UpstreamError) as again:
        refunds.send_refund_now(refund_id=recorded.id)
    assert again.value.code == "REFUND_REFUSED" and not getattr(again.value, "keep_changes", False)
    assert rows("SELECT status, provider_status FROM refund") == [("failed", "NOT_ENOUGH")]
    assert get(order.id).refunded_fen == 0 and [c[0] for c in coupon_states(order.id)] == ["available"] * 3


def _uses(name: str) -> set[str]:
    """The app's modules that call or pass on a function called ``name`` (``f(...)``, ``x.f``)."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[3] / "gc_admin"
    out = set()
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            used = (isinstance(node, ast.Attribute) and node.attr == name) or (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name)
            if used:
                out.add(path.relative_to(root.parent).as_posix())
    return out


def test_the_refund_sequence_is_written_once() -> None:
    """Issue 8: "record → commit → ask WeChat Pay" was written in the staff API and in the 订单看板
    state; both now use refunds.refund, the only place that records a refund and then sends it (a failed
    order's flow records its full refund; orders.flows.act then sends it with send_refund_now)."""
    assert _uses("send_refund") <= {"gc_admin/orders/refunds.py"}
    assert _uses("refund_order") <= {"gc_admin/orders/refunds.py", "gc_admin/orders/flows.py"}
    assert _uses("refund") >= {"gc_admin/orders/api.py", "gc_admin/orders/state.py"}


def test_no_error_of_the_money_rooms_keeps_changes() -> None:
    """Issue 8: the caller decides what commits, not the error (ORDER_ALREADY_PAID, REFUND_REFUSED)."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[3] / "gc_admin"
    kept = [f"{path.relative_to(root)}:{node.lineno}"
            for room in ("orders", "payments") for path in sorted((root / room).rglob("*.py"))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.keyword) and node.arg == "keep_changes"]
    assert kept == []


def test_a_failed_full_refund_goes_to_after_sales(bought) -> None:
    w, order, _ = bought
    r = refund(order.id, 13_500, reason="不需要了")
    assert get(order.id).status == "refund_requested"
    notify = finish_refund(w.state, r.out_refund_no, status="CLOSED")
    assert notify is not None and notify.status == 204
    after = get(order.id)
    assert (after.status, after.refunded_fen) == ("after_sales", 0)
    assert [c[0] for c in coupon_states(order.id)] == ["available"] * 3
    assert scalar("SELECT count(*) FROM ledger_entry WHERE kind = 'refund'") == 0
    # customer service tries again from after-sales
    r2 = refund(order.id, 13_500, reason="再次退款")
    finish_refund(w.state, r2.out_refund_no)
    assert get(order.id).status == "refunded"


def test_refund_notify_checks_and_replays(bought) -> None:
    w, order, _ = bought
    r = refund(order.id, 4_500)
    finish_refund(w.state, r.out_refund_no, deliver=False)
    sim_refund = w.state.refunds[r.out_refund_no]
    good = refund_notify_resource(w.state, sim_refund)
    for change, status in (({"out_refund_no": "RF_UNKNOWN"}, 404),
                           ({"amount": {**good["amount"], "refund": 4_499}}, 400)):
        headers, body = make_notify(w.state, "REFUND.SUCCESS", {**good, **change})
        resp = w.post(REFUND_NOTIFY_PATH, headers, body)
        assert resp.status_code == status and resp.json()["code"] == "FAIL"
    assert rows("SELECT status FROM refund") == [("processing",)]
    headers, body = make_notify(w.state, "REFUND.SUCCESS", good)
    assert w.post(REFUND_NOTIFY_PATH, headers, body).status_code == 204
    assert w.post(REFUND_NOTIFY_PATH, headers, body).status_code == 204
    assert rows("SELECT status FROM refund") == [("succeeded",)]
    assert scalar("SELECT count(*) FROM ledger_entry WHERE kind = 'refund'") == 1
    assert rows("SELECT kind, outcome FROM payment_notify_log WHERE kind = 'refund' ORDER BY id") == [
        ("refund", "rejected"), ("refund", "rejected"), ("refund", "applied"), ("refund", "replay")]


def test_refund_validation(bought) -> None:
    _, order, _ = bought
    for amount, code in ((0, "INVALID_AMOUNT"), (4_500.0, "INVALID_AMOUNT"), (True, "INVALID_AMOUNT")):
        with pytest.raises(InvalidInput) as err:
            request_refund(order.id, amount)  # type: ignore[arg-type]
        assert err.value.code == code
    with pytest.raises(InvalidInput) as err:
        request_refund(order.id, 4_500, reason="  ")
    assert err.value.code == "REASON_REQUIRED"
    with pytest.raises(Conflict) as cerr:
        request_refund(order.id, 13_501)
    assert cerr.value.code == "REFUND_EXCEEDS_PAID"


def test_full_refund_returns_coupon_points_and_stored_value(any_db) -> None:
    user = buyer()
    shop(codes=0)
    coupon_id = purse(user, points=300, stored_value_fen=200)
    with wired() as w:
        with session_scope() as s:
            order = flows.create_order(s, user=user, body={
                "type": "topup", "details": {"mobile": "13812345678", "face_fen": 10_000}, "coupon_id": coupon_id,
                "points": 300, "use_stored_value": True})
        assert order.payable_fen == 10_000 - 3_000 - 300 - 200
        pay(w, order)
        assert rows("SELECT status FROM coupon WHERE id = :i", i=coupon_id) == [("used",)]
        with pytest.raises(Conflict) as err:  # only the WeChat-paid part is refundable in cash
            request_refund(order.id, 10_000)
        assert err.value.code == "REFUND_EXCEEDS_PAID"
        r = refund(order.id, 6_500, reason="充值失败")
        finish_refund(w.state, r.out_refund_no)
    assert get(order.id).status == "refunded"
    assert rows("SELECT status, reserved_for FROM coupon WHERE id = :i", i=coupon_id) == [("available", None)]
    with session_scope() as s:
        assert balances.balances(s, user_id=user.id) == (300, 200)
    assert sorted(rows("SELECT kind, amount_fen FROM ledger_entry")) == sorted([
        ("points", 300), ("stored_value", 200), ("points", -300), ("stored_value", -200), ("payment", 6_500),
        ("refund", -6_500), ("points", 300), ("stored_value", 200)])


@pytest.mark.parametrize("amount", [13_500, 4_500])
def test_concurrent_refund_requests_refund_once(any_db, amount) -> None:
    shop()
    user = buyer()
    with wired() as w:
        order = buy(user, 3)
        pay(w, order)
        results = race(8, lambda i: refund(order.id, amount, reason=f"第 {i} 位客服",
                                            actor=Actor("staff", str(i), f"客服{i}")).status)
    assert Counter(r for r in results if isinstance(r, str)) == {"processing": 1}, results
    assert {type(r) for r in results if not isinstance(r, str)} == {Conflict}, results
    assert scalar("SELECT count(*) FROM refund") == 1
    assert len(w.state.refunds) == 1 and w.state.refunded(order.order_no) == amount
    assert get(order.id).refunded_fen == amount
    assert scalar("SELECT count(*) FROM coupon WHERE status = 'reserved'") == amount // 4_500
