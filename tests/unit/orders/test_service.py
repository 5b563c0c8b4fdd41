"""Orders: creation and what it holds, the state machine, cancelling and the unpaid-order expiry job,
staff notices and the dashboard badge. On SQLite and (with GC_TEST_PG_URL) PostgreSQL."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlmodel import select

from gc_admin.audit.models import AuditLog
from gc_admin.audit.service import SYSTEM, Actor
from gc_admin.config import get_settings
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound, UpstreamError
from gc_admin.db import session_scope
from gc_admin.integrations.sms.models import SmsMessage
from gc_admin.orders import flows
from gc_admin.orders import service as orders
from gc_admin.orders.models import OrderEvent, OrderNotice
from gc_admin.payments import balances
from tests.support import race, rows, run_queued, scalar, wired
from tests.unit.orders.support import CLERK, age, buy, buyer, get, pay, purse, shop, table_counts


def topup(user, *, face=5_000, **kw):
    with session_scope() as s:
        return flows.create_order(s, user=user, body={"type": "topup", "details": {"mobile": "13812345678",
                                                                                    "face_fen": face}, **kw})


def history(order_id: int) -> list[tuple[str, str | None, str, str]]:
    with session_scope() as s:
        events = orders.order_history(s, order_id=order_id)
    return [(e.action, e.from_status, e.to_status, e.actor_type) for e in events]


def act(order_id: int, action: str, actor: Actor = CLERK, **kw):
    with session_scope() as s:
        return flows.staff_action(s, order_id=order_id, action=action, actor=actor, **kw)


# --- creation -------------------------------------------------------------------------------------------

def test_create_holds_stock_and_opens_a_wechat_order(any_db) -> None:
    shop()
    user = buyer()
    with wired() as w:
        order = buy(user, 3)
    assert order.status == "created" and order.order_no.startswith("GC") and len(order.order_no) == 20
    assert (order.list_fen, order.payable_fen, order.paid_fen) == (13_500, 13_500, 0)
    assert order.pay_expires_at - order.created_at == dt.timedelta(minutes=get_settings().order_unpaid_minutes)
    sim = w.state.orders[order.order_no]
    assert sim.total == 13_500 and sim.openid == user.openid and sim.prepay_id == order.prepay_id
    assert sim.time_expire is not None and abs((sim.time_expire - order.pay_expires_at).total_seconds()) < 1
    assert rows("SELECT state, count(*) FROM coupon_purchase_item GROUP BY state") == [("held", 3)]
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 7
    assert scalar("SELECT count(*) FROM coupon") == 0  # nothing in the wallet before it is paid
    assert history(order.id) == [("create", None, "created", "user")]


def test_wechat_login_and_phone_are_required(any_db) -> None:
    shop()
    before = table_counts()
    with wired():
        with pytest.raises(Conflict) as err:
            buy(buyer("13800000001", openid=None), 1)
        assert err.value.code == "WECHAT_LOGIN_REQUIRED" and "微信登录" in err.value.message
        with pytest.raises(Conflict) as err:
            buy(buyer(None, openid="oNoPhone"), 1)
        assert err.value.code == "PHONE_REQUIRED"
    after = table_counts()
    assert {k: v for k, v in after.items() if k != "audit_log"} == {k: v for k, v in before.items() if k != "audit_log"}


def test_no_stock_holds_nothing(any_db) -> None:
    shop(codes=2)
    with wired():
        with pytest.raises(Conflict) as err:
            buy(buyer(), 3)
    assert err.value.code == "NO_STOCK" and "库存不足" in err.value.message
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 2
    assert scalar("SELECT count(*) FROM service_order") == 0


def test_prepay_failure_rolls_everything_back(any_db) -> None:
    from gc_admin.integrations.wechatpay import setup

    class Down(httpx.BaseTransport):
        def handle_request(self, request):
            raise httpx.ConnectError("down", request=request)

    shop()
    setup.set_transport(Down())
    try:
        with pytest.raises(UpstreamError) as err:
            buy(buyer(), 2)
    finally:
        setup.set_transport(None)
    assert err.value.code == "WXPAY_UNAVAILABLE"
    assert scalar("SELECT count(*) FROM service_order") == 0
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 10


def test_per_user_limit_counts_held_and_bought(any_db) -> None:
    shop()
    user = buyer()
    with wired() as w:
        first = buy(user, 3)
        with pytest.raises(Conflict) as err:
            buy(user, 3)
        assert err.value.code == "PURCHASE_LIMIT" and "还可购买 2 张" in err.value.message
        with session_scope() as s:
            flows.cancel_order(s, order_id=first.id, user=user, actor=orders.user_actor(user), reason="")
        second = buy(user, 5)
        pay(w, second)
        with pytest.raises(Conflict) as err:
            buy(user, 1)
        assert err.value.code == "PURCHASE_LIMIT"
    assert get(second.id).status == "completed"


# --- the state machine ------------------------------------------------------------------------------------

def test_state_machine(any_db) -> None:
    user = buyer()
    with wired() as w:
        order = topup(user)
        with pytest.raises(Conflict) as err:
            act(order.id, "accept")
        assert err.value.code == "ORDER_STATE_INVALID" and "待支付" in err.value.message
        pay(w, order)
        assert get(order.id).status == "paid"
        with pytest.raises(Conflict) as err:  # a user cannot accept, a clerk cannot confirm for the user
            with session_scope() as s:
                orders.transition(s, order_id=order.id, action="accept", actor=orders.user_actor(user))
        assert err.value.code == "ACTION_NOT_ALLOWED"
        with pytest.raises(InvalidInput) as err:
            act(order.id, "teleport")
        assert err.value.code == "INVALID_ACTION"
        act(order.id, "accept", reason="已在支付宝充值中", fulfilment={"channel": "支付宝"})
        act(order.id, "fulfil")
        with session_scope() as s:
            orders.confirm_order(s, user=user, order_id=order.id)
        with pytest.raises(Conflict) as err:
            act(order.id, "complete")
        assert err.value.code == "ORDER_STATE_INVALID"
    done = get(order.id)
    assert done.status == "completed" and done.completed_at is not None and done.fulfilment == {"channel": "支付宝"}
    assert history(order.id) == [
        ("create", None, "created", "user"), ("pay", "created", "paid", "system"),
        ("accept", "paid", "accepted", "staff"), ("fulfil", "accepted", "in_fulfilment", "staff"),
        ("confirm", "in_fulfilment", "completed", "user")]
    with session_scope() as s:
        actions = [a.action for a in s.exec(select(AuditLog).where(AuditLog.target_type == "service_order")
                                            .order_by(AuditLog.id)).all()]
    assert actions == ["order.created", "order.pay", "order.accept", "order.fulfil", "order.confirm"]


def test_a_transition_happens_once_under_a_race(any_db) -> None:
    user = buyer()
    with wired() as w:
        order = topup(user)
        pay(w, order)
    results = race(8, lambda i: act(order.id, "accept", actor=Actor("staff", str(i), f"内勤{i}")).status)
    assert results.count("accepted") == 1, results
    # a loser read "paid" before the winner committed (the conditional update then finds it changed) or after:
    # either way the winner took the claim lease with the move, and every loser is told who has the order
    winner = get(order.id).claimed_by_name
    assert all(isinstance(r, Conflict) and r.code == "ORDER_CLAIMED_BY_OTHER" and winner in r.message
               and r.details["claimed_by"] == winner for r in results if r != "accepted"), results
    assert [h[0] for h in history(order.id)].count("accept") == 1


def test_someone_elses_order_is_not_found(any_db) -> None:
    user, other = buyer(), buyer("13900000009", openid="oOther9")
    with wired():
        order = topup(user)
    with session_scope() as s:
        with pytest.raises(NotFound) as err:
            orders.get_user_order(s, user=other, order_id=order.id)
        assert err.value.code == "ORDER_NOT_FOUND"
        with pytest.raises(NotFound) as err2:
            orders.get_user_order(s, user=other, order_id=order.id + 1000)
        assert err2.value.code == "ORDER_NOT_FOUND"
    assert err.value.to_dict() == err2.value.to_dict()


# --- cancelling -------------------------------------------------------------------------------------------

def _coupon_status(coupon_id: int) -> tuple[str, str | None]:
    return rows("SELECT status, reserved_for FROM coupon WHERE id = :i", i=coupon_id)[0]


def test_a_cancel_that_finds_the_order_paid_commits_the_payment_then_refuses(any_db) -> None:
    """The notify was lost and the user cancels: WeChat reports the order paid (ORDERPAID), so the payment
    is applied instead. Inside the caller's unit of work that rolls back with it (the error no longer says
    "commit me"); flows.cancel commits it in its own unit of work, then raises ORDER_ALREADY_PAID."""
    shop()
    user = buyer()
    with wired() as w:
        order = buy(user, 1)
        pay(w, order, deliver=False)
        actor = orders.user_actor(user)
        with pytest.raises(Conflict) as err:
            with session_scope() as s:
                flows.cancel_order(s, order_id=order.id, user=user, actor=actor, reason="不要了")
        assert err.value.code == "ORDER_ALREADY_PAID" and not getattr(err.value, "keep_changes", False)
        assert get(order.id).status == "created" and scalar("SELECT count(*) FROM payment") == 0
        with pytest.raises(Conflict) as err:
            flows.cancel(order_id=order.id, user=user, actor=actor, reason="不要了")
        assert err.value.code == "ORDER_ALREADY_PAID" and not getattr(err.value, "keep_changes", False)
    assert get(order.id).status == "completed" and get(order.id).paid_fen == 4_500  # paid, its coupon issued
    assert scalar("SELECT count(*) FROM payment") == 1
    assert scalar("SELECT count(*) FROM coupon_purchase_item WHERE order_id = :o", o=order.id) == 1


def test_every_order_type_has_a_kind_and_all_are_orderable(any_db) -> None:
    """Issue 8/10: one module per order kind (orders/kinds/); since issue 10 every type can be ordered. A kind
    registered without a catalogue (``not_orderable_yet``) still tells the mini-program so, by name."""
    from gc_admin.orders.kinds import KINDS, ORDERABLE_TYPES
    from gc_admin.orders.kinds.base import OrderDraft, not_orderable_yet
    from gc_admin.orders.models import ORDER_TYPES

    assert list(KINDS) == list(ORDER_TYPES) and ORDERABLE_TYPES == ("coupon_purchase", "flower", "topup", "driver", "goods")
    assert {t: k.coupon_fits for t, k in KINDS.items()} == {
        "coupon_purchase": (), "flower": ("service_discount",), "topup": ("service_discount",),
        "driver": ("service_discount",), "goods": ("goods_discount",)}
    assert {t: k.exchange_fits for t, k in KINDS.items() if k.exchange_fits} == {"goods": ("goods_exchange",)}
    with pytest.raises(InvalidInput) as err:
        not_orderable_yet("goods").make_lines(None, buyer(), OrderDraft(type="goods"))  # type: ignore[arg-type]
    assert err.value.code == "ORDER_TYPE_UNAVAILABLE" and err.value.message.startswith(ORDER_TYPES["goods"])


def test_lists_are_the_shared_page(any_db) -> None:
    """Issue 8: the queue, the ledger and the refunds are db.paginate() pages (no OrderPage / RefundPage)."""
    from gc_admin.db import Page
    from gc_admin.payments import ledger
    from gc_admin.payments import service as payments

    with session_scope() as s:
        for page in (orders.list_orders(s), ledger.list_ledger(s), payments.list_refunds(s)):
            assert isinstance(page, Page) and (page.rows, page.total) == ([], 0)


def test_cancel_releases_everything_exactly_once(any_db) -> None:
    shop()
    user = buyer()
    coupon_id = purse(user, points=500, stored_value_fen=700)
    with wired() as w:
        order = topup(user, face=10_000, coupon_id=coupon_id, points=500, use_stored_value=True)
        assert order.payable_fen == 10_000 - 3_000 - 500 - 700
        assert _coupon_status(coupon_id) == ("reserved", f"order:{order.id}")
        with session_scope() as s:
            assert balances.balances(s, user_id=user.id) == (0, 0)
        with session_scope() as s:
            flows.cancel_order(s, order_id=order.id, user=user, actor=orders.user_actor(user), reason="不要了")
        assert w.state.orders[order.order_no].trade_state == "CLOSED"
        with pytest.raises(Conflict) as err:
            with session_scope() as s:
                flows.cancel_order(s, order_id=order.id, user=user, actor=orders.user_actor(user), reason="again")
        assert err.value.code == "ORDER_STATE_INVALID"
        with session_scope() as s:  # the job finds nothing more to do
            assert flows._cancel_ids(s, ids=[order.id], actor=SYSTEM, reason="x", now=utcnow()) == []
    assert _coupon_status(coupon_id) == ("available", None)
    with session_scope() as s:
        assert balances.balances(s, user_id=user.id) == (500, 700)
    assert scalar("SELECT count(*) FROM points_entry") == 3 and scalar("SELECT sum(delta) FROM points_entry") == 500
    assert get(order.id).status == "cancelled" and get(order.id).cancelled_at is not None
    assert history(order.id)[-1] == ("cancel", "created", "cancelled", "user")


def test_unpaid_orders_expire_once(any_db) -> None:
    shop()
    user = buyer()
    with wired() as w:
        old, fresh = buy(user, 2), buy(user, 1)
        age(old.id, 5)
        with session_scope() as s:
            result = flows.cancel_expired_unpaid(s)
        assert result.cancelled == [old.id] and result.paid_late == [] and result.close_errors == 0
        with session_scope() as s:
            assert flows.cancel_expired_unpaid(s).cancelled == []
        assert w.state.orders[old.order_no].trade_state == "CLOSED"
        assert w.state.orders[fresh.order_no].trade_state == "NOTPAY"
    assert get(old.id).status == "cancelled" and get(fresh.id).status == "created"
    assert rows("SELECT state, count(*) FROM coupon_purchase_item GROUP BY state ORDER BY state") == [
        ("held", 1), ("released", 2)]
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 9
    assert history(old.id)[-1] == ("cancel", "created", "cancelled", "system")


def test_expiry_applies_a_payment_wechat_already_has(any_db) -> None:
    shop()
    user = buyer()
    with wired() as w:
        order = buy(user, 2)
        pay(w, order, deliver=False)  # paid, but the notify is lost
        age(order.id, 5)
        with session_scope() as s:
            result = flows.cancel_expired_unpaid(s)
    assert result.cancelled == [] and result.paid_late == [order.id]
    paid = get(order.id)
    assert paid.status == "completed" and paid.paid_fen == 9_000
    assert scalar("SELECT count(*) FROM coupon WHERE source = 'purchase'") == 2
    assert rows("SELECT source FROM payment") == [("query",)]


def test_expiry_tolerates_wechat_being_down(any_db) -> None:
    from gc_admin.integrations.wechatpay import setup

    shop()
    user = buyer()
    with wired():
        order = buy(user, 1)
    age(order.id, 5)

    class Down(httpx.BaseTransport):
        def handle_request(self, request):
            raise httpx.ConnectError("down", request=request)

    setup.set_transport(Down())
    try:
        with session_scope() as s:
            result = flows.cancel_expired_unpaid(s)
    finally:
        setup.set_transport(None)
    assert result.cancelled == [order.id] and result.close_errors == 1


# --- paid with nothing to pay, staff notices, badge ------------------------------------------------------

def test_fully_covered_order_is_paid_at_once_and_clerks_are_told(any_db, monkeypatch) -> None:
    monkeypatch.setenv("GC_ONDUTY_PHONES", "13700000001, 13700000002")
    get_settings.cache_clear()
    user = buyer()
    with session_scope() as s:
        balances.move_points(s, user_id=user.id, delta=5_000, reason="赠送", ref="gift:2")
    since = utcnow() - dt.timedelta(seconds=1)
    order = topup(user, points=5_000)
    assert order.status == "paid" and order.payable_fen == 0 and order.prepay_id is None
    with session_scope() as s:
        assert orders.unseen_paid_orders_count(s, since=since) == 1
        assert orders.unseen_paid_orders_count(s, since=utcnow()) == 0
    with session_scope() as s:
        assert orders.send_order_notices(s) == 1
    with session_scope() as s:
        assert orders.send_order_notices(s) == 0  # each notice once
        sms = s.exec(select(SmsMessage).order_by(SmsMessage.id)).all()
        notice = s.get(OrderNotice, order.id)
    assert [m.phone for m in sms] == ["13700000001", "13700000002"]
    assert all(m.template == "new_order" and order.order_no in m.content and "话费充值" in m.content for m in sms)
    assert notice is not None and (notice.status, notice.recipients, notice.sent) == ("sent", 2, 2)
    act(order.id, "accept")
    with session_scope() as s:
        assert orders.unseen_paid_orders_count(s, since=since) == 0


def test_clerks_with_a_phone_are_on_duty_and_a_broken_sender_breaks_nothing(any_db) -> None:
    from gc_admin.accounts.service import create_staff
    from gc_admin.integrations.sms.base import SmsError
    from gc_admin.integrations.sms.service import set_sender

    with session_scope() as s:
        for username, role, phone in (("chen", "clerk", "13600000001"), ("liu", "clerk", None),
                                      ("boss", "admin", "13600000009")):
            create_staff(s, actor=SYSTEM, username=username, display_name=username, password="secret2026", role=role,
                         phone=phone)
    user = buyer()
    with wired() as w:
        order = topup(user)

        class Broken:
            name = "aliyun"

            def send(self, **kw):
                raise SmsError("vendor down")

        set_sender(Broken())
        try:
            pay(w, order)  # the notify route answers, then queues the notice task
            run_queued()
        finally:
            set_sender(None)
    assert w.delivered == [204]
    assert get(order.id).status == "paid"
    with session_scope() as s:
        notice = s.get(OrderNotice, order.id)
        sms = s.exec(select(SmsMessage)).all()
    assert notice is not None and (notice.status, notice.recipients, notice.failed) == ("failed", 1, 1)
    assert [(m.phone, m.status) for m in sms] == [("13600000001", "failed")]


def test_events_are_kept_per_order(any_db) -> None:
    user = buyer()
    with wired():
        a, b = topup(user), topup(user)
    with session_scope() as s:
        flows.cancel_order(s, order_id=a.id, actor=CLERK, reason="重复下单")
    with session_scope() as s:
        events = s.exec(select(OrderEvent).where(OrderEvent.order_id == b.id)).all()
    assert [e.action for e in events] == ["create"]
    assert history(a.id)[-1] == ("cancel", "created", "cancelled", "staff")
    with pytest.raises(InvalidInput) as err:
        act(b.id, "cancel")  # staff must give a reason
    assert err.value.code == "REASON_REQUIRED"


def test_a_bought_coupon_s_history_starts_with_its_issue(any_db) -> None:
    """The 用户 page's 历史 of a coupon bought on an order shows its 发放 (the order's issue row) first."""
    from gc_admin.coupons.wallet import service as wallet

    shop()
    user = buyer()
    with wired() as w:
        order = buy(user, 2)
        pay(w, order)
    ids = rows("SELECT id FROM coupon ORDER BY id")
    assert len(ids) == 2
    with session_scope() as s:
        for (cid,) in ids:
            trail = wallet.coupon_history(s, coupon_id=cid)
            assert [a.action for a in trail] == ["coupon.issued"]
            assert trail[0].target_type == "service_order" and trail[0].target_id == str(order.id)
            assert wallet.COUPON_ACTION_LABELS[trail[0].action] == "发放"
