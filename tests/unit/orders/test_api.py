"""Orders and payments over HTTP, end to end: a mini-program user signed in with WeChat buys 3 movie
coupons, pays through the WeChat Pay simulator (which notifies the app's own route), sees them in
"my coupons"; a clerk refunds one from the admin API; ledger, stock and coupon states agree.
Runs on SQLite and, with GC_TEST_PG_URL, PostgreSQL."""

from __future__ import annotations

import pytest

from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.db import session_scope
from gc_admin.integrations.sms.service import list_outbox
from tests.support import api_error, rows, run_queued, scalar, sms_user, staff_headers, wechat_user
from tests.unit.orders.support import shop

pytestmark = pytest.mark.usefixtures("any_db")  # every test on SQLite and PostgreSQL


@pytest.fixture
def staff(api, make_staff) -> dict[str, dict[str, str]]:
    for username, role, phone in (("chen", "clerk", "13600000001"), ("liu", "service", None),
                                  ("mgr", "manager", None), ("sup", "supplier", None), ("ins", "insurer", None)):
        make_staff(username, role, phone=phone)
    return {username: staff_headers(api, username) for username in ("chen", "liu", "mgr", "sup", "ins")}


BUY3 = {"type": "coupon_purchase", "product_code": "tpp50", "quantity": 3}


def test_buy_pay_see_and_refund_end_to_end(api, staff) -> None:
    shop()
    me = wechat_user(api, "oE2E000000000000000000001", "13812345678")

    catalog = api.get("/api/v1/mp/catalog", headers=me).json()
    movie = next(p for p in catalog["coupons"] if p["code"] == "tpp50")
    assert (movie["price_fen"], movie["per_user_limit"], movie["can_buy"], movie["stock_hint"]) == (4_500, 5, 5, 10)
    assert catalog["topup"]["faces_fen"] == [5_000, 10_000]

    quote = api.post("/api/v1/mp/orders/quote", json=BUY3, headers=me)
    assert quote.status_code == 200, quote.text
    assert quote.json()["pricing"] == {"list_fen": 13_500, "steps": [], "payable_fen": 13_500}

    created = api.post("/api/v1/mp/orders", json=BUY3, headers=me)
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "created" and order["pricing"]["payable_fen"] == 13_500
    params = order["payment"]
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["package"].startswith("prepay_id=") and params["signType"] == "RSA"
    assert [h["status"] for h in order["history"]] == ["created"]
    prepay_id = params["package"].removeprefix("prepay_id=")

    paid = api.post("/sim/wechatpay/_pay", json={"prepay_id": prepay_id})
    assert paid.status_code == 200 and paid.json()["notify_status"] == 204, paid.text

    mine = api.get(f"/api/v1/mp/orders/{order['id']}", headers=me).json()
    assert mine["status"] == "completed" and mine["payment"] is None and len(mine["coupon_ids"]) == 3
    assert [h["status"] for h in mine["history"]] == ["created", "paid", "completed"]
    wallet = api.get("/api/v1/mp/coupons", headers=me).json()["items"]
    assert sorted(c["id"] for c in wallet) == sorted(mine["coupon_ids"])
    assert {(c["product"]["code"], c["status"]) for c in wallet} == {("tpp50", "available")}
    assert api.get("/api/v1/mp/orders", headers=me).json()["items"][0]["id"] == order["id"]
    # the clerk on duty was told by SMS (the notice task the notify queued)
    run_queued()
    with session_scope() as s:
        sms = list_outbox(s, phone="13600000001").rows
    assert len(sms) == 1 and order["order_no"] in sms[0].content

    clerk = staff["chen"]
    queue = api.get("/api/v1/admin/orders", params={"type": "coupon_purchase", "status": "completed"}, headers=clerk)
    assert queue.status_code == 200 and [r["id"] for r in queue.json()["items"]] == [order["id"]]
    assert queue.json()["items"][0]["phone_masked"] == "138****5678"
    bad = api.post(f"/api/v1/admin/orders/{order['id']}/actions/refund", json={"amount_fen": 4_500.0, "reason": "x"},
                   headers=clerk)
    api_error(bad, 422, "VALIDATION_ERROR")  # money is strict integer fen
    api_error(api.post(f"/api/v1/admin/orders/{order['id']}/actions/refund", json={"amount_fen": "4500", "reason": "x"},
                       headers=clerk), 422, "VALIDATION_ERROR")
    api_error(api.post(f"/api/v1/admin/orders/{order['id']}/actions/refund", json={"amount_fen": 4_500}, headers=clerk),
           422, "REASON_REQUIRED")
    refunded = api.post(f"/api/v1/admin/orders/{order['id']}/actions/refund",
                        json={"amount_fen": 4_500, "reason": "用户只需要两张"}, headers=clerk)
    assert refunded.status_code == 200, refunded.text
    refund = refunded.json()["refunds"][0]
    assert (refund["status"], refund["amount_fen"], refund["coupons"]) == ("processing", 4_500, 1)
    done = api.post("/sim/wechatpay/_refund", json={"out_refund_no": refund["out_refund_no"]})
    assert done.json()["notify_status"] == 204, done.text

    detail = api.get(f"/api/v1/admin/orders/{order['id']}", headers=clerk).json()
    assert (detail["status"], detail["paid_fen"], detail["refunded_fen"], detail["refundable_fen"]) == (
        "completed", 13_500, 4_500, 9_000)
    assert detail["refunds"][0]["status"] == "succeeded"
    assert detail["payment"]["amount_fen"] == 13_500

    # --- the figures agree: ledger, stock and coupons ----------------------------------------------------
    ledger = api.get("/api/v1/admin/ledger", headers=staff["mgr"]).json()
    assert [(e["kind"], e["amount_fen"], e["order_no"]) for e in ledger["items"]] == [
        ("refund", -4_500, order["order_no"]), ("payment", 13_500, order["order_no"])]
    assert ledger["net_fen"] == 9_000
    available = api.get("/api/v1/mp/coupons", params={"status": "available"}, headers=me).json()["items"]
    # the coupon the refund took back is "revoked" (已退回) to its owner, not "expired" (issue 7)
    revoked = api.get("/api/v1/mp/coupons", params={"status": "revoked"}, headers=me).json()["items"]
    assert len(available) == 2 and len(revoked) == 1
    assert api.get("/api/v1/mp/coupons", params={"status": "expired"}, headers=me).json()["items"] == []
    assert sorted(c["status"] for c in api.get("/api/v1/mp/coupons", headers=me).json()["items"]) == [
        "available", "available", "revoked"]
    assert api.get(f"/api/v1/mp/coupons/{revoked[0]['id']}", headers=me).json()["status"] == "revoked"
    assert "已退回" in api_error(api.post(f"/api/v1/mp/coupons/{revoked[0]['id']}/use", headers=me), 409,
                              "COUPON_REVOKED")
    schema = api.get("/api/openapi.json").json()["components"]["schemas"]["CouponOut"]["properties"]["status"]
    assert "revoked" in schema["enum"] and "已退回" in schema["description"]
    summary = api.get("/api/v1/admin/stock/summary", headers=clerk).json()
    in_stock = sum(r["count"] for r in summary if r["state"] == "in_stock")
    held_by_buyer = sum(r["count"] for r in summary if r["state"] == "issued")
    # net money = paid − refunded = the price of the coupons the buyer still holds
    assert ledger["net_fen"] == detail["paid_fen"] - detail["refunded_fen"] == len(available) * movie["price_fen"]
    # every code is either in stock or behind one of the buyer's available coupons
    assert (in_stock, held_by_buyer) == (10 - len(available), len(available))
    assert scalar("SELECT count(*) FROM coupon c JOIN stock_code sc ON sc.id = c.stock_code_id "
                  "WHERE c.status = 'available' AND sc.state = 'issued'") == 2
    assert rows("SELECT status, stock_code_id FROM coupon WHERE id = :i", i=revoked[0]["id"]) == [("expired", None)]
    received = scalar("SELECT sum(amount_fen) FROM payment")
    returned = scalar("SELECT sum(amount_fen) FROM refund WHERE status = 'succeeded'")
    assert scalar("SELECT sum(amount_fen) FROM ledger_entry WHERE provider = 'wechatpay'") == received - returned
    assert api.get("/api/v1/mp/catalog", headers=me).json()["coupons"][0]["can_buy"] == 3  # 5 − 2 kept


def test_user_side_rules(api, staff) -> None:
    shop()
    me = wechat_user(api, "oRules00000000000000000001", "13812345670")
    other = wechat_user(api, "oRules00000000000000000002", "13812345671")
    sms_only = sms_user(api, "13812345672")
    wx_no_phone = wechat_user(api, "oRules00000000000000000003", None)

    msg = api_error(api.post("/api/v1/mp/orders", json=BUY3, headers=sms_only), 409, "WECHAT_LOGIN_REQUIRED")
    assert "微信登录" in msg
    api_error(api.post("/api/v1/mp/orders", json=BUY3, headers=wx_no_phone), 409, "PHONE_REQUIRED")
    api_error(api.post("/api/v1/mp/orders", json={**BUY3, "quantity": 3.0}, headers=me), 422, "VALIDATION_ERROR")
    api_error(api.post("/api/v1/mp/orders", json={**BUY3, "quantity": 9}, headers=me), 422, "INVALID_ORDER")
    api_error(api.post("/api/v1/mp/orders", json={**BUY3, "discount_fen": 1}, headers=me), 422, "VALIDATION_ERROR")
    api_error(api.post("/api/v1/mp/orders", json={"type": "goods"}, headers=me), 422, "INVALID_ORDER")  # no goods body
    api_error(api.post("/api/v1/mp/orders", json=BUY3), 401, "UNAUTHORIZED")

    order = api.post("/api/v1/mp/orders", json=BUY3, headers=me).json()
    missing = api_error(api.get("/api/v1/mp/orders/999999", headers=me), 404, "ORDER_NOT_FOUND")
    assert api_error(api.get(f"/api/v1/mp/orders/{order['id']}", headers=other), 404, "ORDER_NOT_FOUND") == missing
    api_error(api.post(f"/api/v1/mp/orders/{order['id']}/cancel", headers=other), 404, "ORDER_NOT_FOUND")
    again = api.get(f"/api/v1/mp/orders/{order['id']}", headers=me).json()
    assert again["payment"]["package"] == order["payment"]["package"]  # can pay later with the same prepay id

    cancelled = api.post(f"/api/v1/mp/orders/{order['id']}/cancel", headers=me)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
    assert cancelled.json()["payment"] is None
    api_error(api.post(f"/api/v1/mp/orders/{order['id']}/cancel", headers=me), 409, "ORDER_STATE_INVALID")
    api_error(api.post(f"/api/v1/mp/orders/{order['id']}/confirm", headers=me), 409, "ORDER_STATE_INVALID")
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 10

    topup = api.post("/api/v1/mp/orders", headers=me, json={"type": "topup", "topup": {"mobile": "13812345670",
                                                                                         "face_fen": 5_000}})
    assert topup.status_code == 201, topup.text
    assert topup.json()["details"] == {"mobile": "13812345670", "face_fen": 5_000}
    api_error(api.post("/api/v1/mp/orders", headers=me, json={"type": "topup", "topup": {"mobile": "13812345670",
                                                                                      "face_fen": 5_000.0}}),
           422, "VALIDATION_ERROR")


def test_staff_roles_and_actions(api, staff) -> None:
    shop()
    me = wechat_user(api, "oStaff0000000000000000001", "13812345600")
    order = api.post("/api/v1/mp/orders", headers=me, json={"type": "topup", "topup": {"mobile": "13812345600",
                                                                                         "face_fen": 10_000}}).json()
    clerk, cs, mgr, sup, ins = (staff[k] for k in ("chen", "liu", "mgr", "sup", "ins"))
    since = "2000-01-01T00:00:00+00:00"
    assert api.get("/api/v1/admin/orders/badge", params={"since": since}, headers=clerk).json() == {"unseen_paid": 0}
    api.post("/sim/wechatpay/_pay", json={"prepay_id": order["payment"]["package"].removeprefix("prepay_id=")})
    assert api.get("/api/v1/admin/orders/badge", params={"since": since}, headers=clerk).json() == {"unseen_paid": 1}

    api_error(api.get("/api/v1/admin/orders", headers=sup), 403, "FORBIDDEN")
    api_error(api.get("/api/v1/admin/orders", headers=ins), 403, "FORBIDDEN")
    api_error(api.get("/api/v1/admin/ledger", headers=clerk), 403, "FORBIDDEN")
    api_error(api.get("/api/v1/admin/ledger", headers=ins), 403, "FORBIDDEN")
    api_error(api.post(f"/api/v1/admin/orders/{order['id']}/actions/fulfil", headers=clerk), 409, "ORDER_STATE_INVALID")
    api_error(api.post(f"/api/v1/admin/orders/{order['id']}/actions/launch", headers=clerk), 422, "VALIDATION_ERROR")

    accepted = api.post(f"/api/v1/admin/orders/{order['id']}/actions/accept", headers=clerk,
                        json={"reason": "支付宝充值", "fulfilment": {"channel": "支付宝"}})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted" and accepted.json()["fulfilment"] == {"channel": "支付宝"}
    assert accepted.json()["history"][-1]["by"] == "chen"
    mine = api.get(f"/api/v1/mp/orders/{order['id']}", headers=me).json()
    assert mine["history"][-1]["by"] == "平台客服"  # users do not see staff names
    assert api.get("/api/v1/admin/orders/badge", params={"since": since}, headers=clerk).json() == {"unseen_paid": 0}

    # top-up failed: customer service refunds in full
    resp = api.post(f"/api/v1/admin/orders/{order['id']}/actions/refund", headers=cs,
                    json={"amount_fen": 10_000, "reason": "充值失败"})
    assert resp.status_code == 200 and resp.json()["status"] == "refund_requested", resp.text
    out_refund_no = resp.json()["refunds"][0]["out_refund_no"]
    api.post("/sim/wechatpay/_refund", json={"out_refund_no": out_refund_no})
    assert api.get(f"/api/v1/admin/orders/{order['id']}", headers=mgr).json()["status"] == "refunded"

    refunds = api.get("/api/v1/admin/refunds", headers=mgr).json()
    assert refunds["total"] == 1 and refunds["items"][0]["status"] == "succeeded"
    export = api.get("/api/v1/admin/ledger.xlsx", headers=mgr)
    assert export.status_code == 200 and export.content[:2] == b"PK"
    day = utcnow().astimezone(SHANGHAI).date().isoformat()  # bills are per Asia/Shanghai day
    run = api.post("/api/v1/admin/reconciliations/fetch", headers=mgr, json={"bill_date": day})
    assert run.status_code == 201, run.text
    assert run.json()["ok"] and run.json()["matched"] == 2 and run.json()["ledger_net_fen"] == 0
    assert api.get("/api/v1/admin/reconciliations", headers=mgr).json()[0]["id"] == run.json()["id"]


def test_what_must_stay_on_record_is_committed_before_the_error(api, staff) -> None:
    """The routes answer ORDER_ALREADY_PAID / REFUND_REFUSED only after committing what happened: the
    payment WeChat reported while the order was being cancelled (user or staff), the refund WeChat refused
    (recorded as failed, the refundable amount back)."""
    from gc_admin.integrations import sims
    from gc_admin.integrations.wechatpay.setup import get_client
    from gc_admin.integrations.wechatpay.simulator import pay_order

    shop()
    me = wechat_user(api, "oKept000000000000000000001", "13812345602")
    clerk = staff["chen"]
    bought = api.post("/api/v1/mp/orders", json=BUY3, headers=me).json()
    topup = api.post("/api/v1/mp/orders", headers=me, json={"type": "topup", "topup": {"mobile": "13812345602",
                                                                                         "face_fen": 5_000}}).json()
    for order in (bought, topup):  # paid at WeChat, the notify lost
        pay_order(sims.simulators().wxpay, order["payment"]["package"].removeprefix("prepay_id="), deliver=False)
    api_error(api.post(f"/api/v1/mp/orders/{bought['id']}/cancel", headers=me), 409, "ORDER_ALREADY_PAID")
    api_error(api.post(f"/api/v1/admin/orders/{topup['id']}/actions/cancel", json={"reason": "用户来电取消"},
                    headers=clerk), 409, "ORDER_ALREADY_PAID")
    mine = api.get(f"/api/v1/mp/orders/{bought['id']}", headers=me).json()
    assert mine["status"] == "completed" and len(mine["coupon_ids"]) == 3
    assert api.get(f"/api/v1/admin/orders/{topup['id']}", headers=clerk).json()["status"] == "paid"
    assert scalar("SELECT count(*) FROM payment") == 2

    # someone refunded the whole top-up outside this system: WeChat refuses ours
    get_client().refund(out_refund_no="MANUAL1", out_trade_no=topup["order_no"], refund_fen=5_000, total_fen=5_000)
    api_error(api.post(f"/api/v1/admin/orders/{topup['id']}/actions/refund",
                    json={"amount_fen": 5_000, "reason": "充值失败"}, headers=clerk), 502, "REFUND_REFUSED")
    after = api.get(f"/api/v1/admin/orders/{topup['id']}", headers=clerk).json()
    assert (after["status"], after["refunded_fen"], after["refundable_fen"]) == ("after_sales", 0, 5_000)
    assert [(r["status"], r["amount_fen"]) for r in after["refunds"]] == [("failed", 5_000)]
