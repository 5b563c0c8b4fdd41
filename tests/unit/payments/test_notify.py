"""WeChat Pay payment notifies through the real route: applied exactly once (also under 10 concurrent
replays, on SQLite and PostgreSQL), rejected with nothing changed and the attempt logged, and a payment for a
cancelled order recorded without reviving the order."""

from __future__ import annotations


import contextlib

import httpx
import pytest
from sqlmodel import select

from gc_admin.core.clock import utcnow
from gc_admin.db import session_scope
from gc_admin.integrations.wechatpay import crypto
from gc_admin.integrations.wechatpay.simulator import DevKeys, make_notify, transaction_resource
from gc_admin.orders import flows
from gc_admin.orders import service as orders
from gc_admin.payments.models import PaymentNotifyLog
from tests.support import race, rows, scalar, wired
from tests.unit.orders.support import (
    NOTIFY_PATH,
    REFUND_NOTIFY_PATH,
    age,
    buy,
    buyer,
    get,
    paid_notify,
    shop,
    table_counts,
)

OTHER_KEYS = DevKeys.generate()


def notify_log() -> list[tuple[str, str, str]]:
    with session_scope() as s:
        return [(r.kind, r.outcome, r.reason) for r in s.exec(select(PaymentNotifyLog).order_by(PaymentNotifyLog.id))]


def _fail(resp: httpx.Response, status: int) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["code"] == "FAIL" and body["message"], body


@contextlib.contextmanager
def ordered(coupons: int):
    """The shop, a buyer's unpaid order for ``coupons`` coupons, and WeChat Pay's signed "paid" notify for it
    (headers, body): ``(wired, order, headers, body)``, inside :func:`wired`."""
    shop()
    user = buyer()
    with wired() as w:
        order = buy(user, coupons)
        yield (w, order, *paid_notify(w, order))


def test_notify_is_applied_once_and_replays_change_nothing(any_db) -> None:
    with ordered(3) as (w, order, headers, body):
        assert w.post(NOTIFY_PATH, headers, body).status_code == 204
        after_first = table_counts()
        for _ in range(3):
            assert w.post(NOTIFY_PATH, headers, body).status_code == 204
    assert table_counts() == after_first
    assert after_first["payment"] == 1 and after_first["coupon"] == 3 and after_first["order_notice"] == 1
    assert rows("SELECT kind, amount_fen, provider FROM ledger_entry") == [("payment", 13_500, "wechatpay")]
    paid = get(order.id)
    assert paid.status == "completed" and paid.paid_fen == 13_500
    assert [(k, o) for k, o, _ in notify_log()] == [("payment", "applied")] + [("payment", "replay")] * 3
    tx = w.state.orders[order.order_no].transaction_id
    assert rows("SELECT transaction_id, amount_fen, source FROM payment") == [(tx, 13_500, "notify")]


def _forged(headers: dict[str, str], body: bytes) -> dict[str, str]:
    key = crypto.load_private_key(OTHER_KEYS.platform_private_key_pem)
    message = crypto.response_message(headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], body)
    sig = crypto.rsa_sign(key, message)
    return {**headers, "Wechatpay-Signature": sig}


@pytest.mark.parametrize("case", ["bad_signature", "tampered_body", "stale", "wrong_amount", "unknown_order",
                                  "other_merchant", "no_headers"])
def test_bad_notifies_are_rejected_logged_and_change_nothing(any_db, case) -> None:
    with ordered(2) as (w, order, good_headers, good_body):
        if case == "bad_signature":
            headers, body, status = _forged(good_headers, good_body), good_body, 401
        elif case == "tampered_body":
            body = good_body.replace(b'"TRANSACTION.SUCCESS"', b'"TRANSACTION.FAKE"')
            headers, status = good_headers, 401
        elif case == "stale":
            sim = w.state.orders[order.order_no]
            headers, body = make_notify(w.state, "TRANSACTION.SUCCESS", transaction_resource(w.state, sim),
                                        timestamp=int(utcnow().timestamp()) - 301)
            status = 401
        elif case == "wrong_amount":
            sim = w.state.orders[order.order_no]
            resource = transaction_resource(w.state, sim)
            resource["amount"] = {**resource["amount"], "total": order.payable_fen - 1}
            headers, body = make_notify(w.state, "TRANSACTION.SUCCESS", resource)
            status = 400
        elif case == "unknown_order":
            sim = w.state.orders[order.order_no]
            headers, body = make_notify(w.state, "TRANSACTION.SUCCESS",
                                        {**transaction_resource(w.state, sim), "out_trade_no": "GC20990101000000"})
            status = 404
        elif case == "other_merchant":
            sim = w.state.orders[order.order_no]
            headers, body = make_notify(w.state, "TRANSACTION.SUCCESS",
                                        {**transaction_resource(w.state, sim), "mchid": "1900000999"})
            status = 401
        else:
            headers, body, status = {"Content-Type": "application/json"}, good_body, 401
        before = table_counts()
        _fail(w.post(NOTIFY_PATH, headers, body), status)
        assert table_counts() == before
        assert get(order.id).status == "created"
        log = notify_log()
        assert len(log) == 1 and log[0][:2] == ("payment", "rejected") and log[0][2]
        # the genuine notify still works afterwards
        assert w.post(NOTIFY_PATH, good_headers, good_body).status_code == 204
    assert get(order.id).status == "completed"


def test_notify_for_a_cancelled_order_does_not_revive_it(any_db) -> None:
    from gc_admin.integrations.wechatpay import setup

    shop()
    user = buyer()
    with wired() as w:
        order = buy(user, 2)
        headers, body = paid_notify(w, order)  # the user paid at the last second; the notify is delayed
        age(order.id, 10)

        class Down(httpx.BaseTransport):
            def handle_request(self, request):
                raise httpx.ConnectError("down", request=request)

        setup.set_transport(Down())  # WeChat unreachable: the job cannot learn the order was paid
        with session_scope() as s:
            assert flows.cancel_expired_unpaid(s).cancelled == [order.id]
        setup.set_transport(w.transport)
        assert w.post(NOTIFY_PATH, headers, body).status_code == 204  # received: WeChat must stop retrying
        assert w.post(NOTIFY_PATH, headers, body).status_code == 204
    o = get(order.id)
    assert o.status == "after_sales" and o.anomaly == "paid_after_cancelled" and o.paid_fen == 9_000
    assert scalar("SELECT count(*) FROM coupon") == 0  # nothing issued for a cancelled order
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 10
    assert rows("SELECT kind, amount_fen FROM ledger_entry") == [("payment", 9_000)]  # the money is on record
    assert [(k, o_) for k, o_, _ in notify_log()] == [("payment", "anomaly"), ("payment", "replay")]
    with session_scope() as s:
        hist = [(e.action, e.to_status) for e in orders.order_history(s, order_id=order.id)]
    assert hist[-2:] == [("cancel", "cancelled"), ("paid_after_cancel", "after_sales")]


def test_other_events_on_the_payment_route_are_acknowledged_and_ignored(any_db) -> None:
    shop()
    with wired() as w:
        order = buy(buyer(), 1)
        headers, body = make_notify(w.state, "REFUND.SUCCESS", {"mchid": w.state.mchid, "out_trade_no": order.order_no})
        before = table_counts()
        assert w.post(NOTIFY_PATH, headers, body).status_code == 204
        assert table_counts() == before
        # and a payment event on the refund route is refused
        _fail(w.post(REFUND_NOTIFY_PATH, *paid_notify(w, order)), 400)
    assert [(k, o) for k, o, _ in notify_log()] == [("payment", "ignored"), ("refund", "rejected")]


def test_ten_concurrent_replays_apply_once(any_db) -> None:
    with ordered(3) as (w, order, headers, body):
        statuses = race(10, lambda i: w.post(NOTIFY_PATH, headers, body).status_code)
    assert statuses == [204] * 10, statuses
    assert scalar("SELECT count(*) FROM payment") == 1
    assert rows("SELECT kind, amount_fen FROM ledger_entry") == [("payment", 13_500)]
    assert scalar("SELECT count(*) FROM coupon") == 3  # one issuance
    assert scalar("SELECT count(DISTINCT stock_code_id) FROM coupon") == 3
    assert scalar("SELECT count(*) FROM order_event WHERE action = 'pay'") == 1
    assert scalar("SELECT count(*) FROM order_notice") == 1
    outcomes = sorted(o for _, o, _ in notify_log())
    assert outcomes == ["applied"] + ["replay"] * 9
    assert get(order.id).status == "completed"
