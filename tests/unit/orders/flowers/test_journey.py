"""A flower order from the mini-program through the clerk to completion, and its refund path, over HTTP:
catalog → slots → quote → order → pay (WeChat Pay simulator) → claim → accept with the Meituan shop's name,
phone and ETA (the user sees them) → delivered → completed; the user confirming receipt; no shop can
deliver → after-sales → full refund (the coupon comes back, the slot is freed). SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from gc_admin.core.clock import SHANGHAI
from tests.support import api_error, scalar
from tests.unit.orders.flowers.support import A, M, buyer, pay, flower_body, give_flower_coupon, tomorrow_at

pytestmark = pytest.mark.usefixtures("any_db", "private_uploads")


def _act(api, headers, order_id: int, action: str, **body):
    return api.post(f"{A}/orders/{order_id}/actions/{action}", json=body, headers=headers)


def _paid_order(api, me, **extra) -> dict:
    created = api.post(f"{M}/orders", json=flower_body(**extra), headers=me)
    assert created.status_code == 201, created.text
    pay(api, created.json())
    return created.json()


ETA = tomorrow_at(10) + dt.timedelta(minutes=40)
SHOP = {"shop_name": "花语小筑（青秀店）", "shop_phone": "0771-5551234", "eta": ETA.isoformat()}


def test_the_whole_journey_to_completed(api, shop) -> None:
    me = buyer(api)
    clerk = shop["chen"]
    catalog = api.get(f"{M}/catalog", headers=me).json()
    rose = catalog["bouquets"][0]
    assert rose["code"] == "Rose-11" and "南宁" in catalog["flower_cities"]
    day = tomorrow_at(10).date().isoformat()
    slots = api.get(f"{M}/flower/slots", params={"city": "南宁市", "date": day}, headers=me).json()["slots"]
    slot = next(s for s in slots if dt.datetime.fromisoformat(s["start"]) == tomorrow_at(10))
    assert slot["available"] == 5
    coupon_id = give_flower_coupon(api, me)
    body = flower_body(coupon_id=coupon_id)
    body["flower"]["slot_start"] = slot["start"]
    assert api.post(f"{M}/orders/quote", json=body, headers=me).json()["pricing"]["payable_fen"] == 12_000
    order = api.post(f"{M}/orders", json=body, headers=me).json()
    pay(api, order)
    oid = order["id"]
    assert api.get(f"{M}/flower/slots", params={"city": "南宁", "date": day},
                   headers=me).json()["slots"][1]["available"] == 4

    # the clerk claims it; a colleague's move is refused naming who holds it
    assert _act(api, clerk, oid, "claim").status_code == 200
    other = api_error(_act(api, shop["liu"], oid, "accept", **SHOP), 409, "ORDER_CLAIMED_BY_OTHER")
    assert "chen" in other
    # accept needs the shop's name, phone and ETA, valid
    api_error(_act(api, clerk, oid, "accept", shop_name="花语小筑", eta=ETA.isoformat()), 422, "FIELD_REQUIRED")
    api_error(_act(api, clerk, oid, "accept", **{**SHOP, "shop_phone": "12ab"}), 422, "INVALID_FIELD")
    api_error(_act(api, clerk, oid, "accept", **{**SHOP, "eta": "明天"}), 422, "INVALID_FIELD")
    api_error(_act(api, clerk, oid, "accept", **{**SHOP, "eta": "2020-01-01T10:00:00+08:00"}), 422, "INVALID_FIELD")
    assert api.get(f"{M}/orders/{oid}", headers=me).json()["status"] == "paid"
    accepted = _act(api, clerk, oid, "accept", **SHOP)
    assert accepted.status_code == 200, accepted.text
    api_error(_act(api, clerk, oid, "accept", **SHOP), 409, "ORDER_STATE_INVALID")  # not twice

    mine = api.get(f"{M}/orders/{oid}", headers=me).json()
    assert mine["status"] == "accepted"
    f = mine["fulfilment"]
    assert (f["shop_name"], f["shop_phone"]) == ("花语小筑（青秀店）", "0771-5551234")
    assert dt.datetime.fromisoformat(f["eta"]) == ETA

    delivered = _act(api, clerk, oid, "fulfil")
    assert delivered.status_code == 200, delivered.text
    assert "delivered_at" in api.get(f"{M}/orders/{oid}", headers=me).json()["fulfilment"]
    done = _act(api, clerk, oid, "complete")
    assert done.status_code == 200, done.text
    mine = api.get(f"{M}/orders/{oid}", headers=me).json()
    assert mine["status"] == "completed"
    assert [h["status"] for h in mine["history"] if h["from_status"] != h["status"]] == [
        "created", "paid", "accepted", "in_fulfilment", "completed"]
    api_error(_act(api, clerk, oid, "complete"), 409, "ORDER_STATE_INVALID")
    api_error(api.post(f"{M}/orders/{oid}/confirm", headers=me), 409, "ORDER_STATE_INVALID")


def test_the_user_confirms_receipt(api, shop) -> None:
    me = buyer(api)
    order = _paid_order(api, me)
    api_error(api.post(f"{M}/orders/{order['id']}/confirm", headers=me), 409, "ORDER_STATE_INVALID")  # not yet accepted
    assert _act(api, shop["chen"], order["id"], "accept", **SHOP).status_code == 200
    someone = buyer(api, "oFlower000000000000000009", "13812340009")
    api_error(api.post(f"{M}/orders/{order['id']}/confirm", headers=someone), 404, "ORDER_NOT_FOUND")
    confirmed = api.post(f"{M}/orders/{order['id']}/confirm", headers=me)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "completed"
    assert confirmed.json()["history"][-1]["by"] == "您"


def test_no_shop_can_deliver_after_sales_cancels_and_refunds_in_full(api, shop) -> None:
    me = buyer(api)
    coupon_id = give_flower_coupon(api, me)
    order = _paid_order(api, me, coupon_id=coupon_id)
    oid = order["id"]
    kefu = shop["liu"]
    api_error(_act(api, kefu, oid, "after_sales"), 422, "REASON_REQUIRED")
    moved = _act(api, kefu, oid, "after_sales", reason="附近花店均无法在该时段配送，已电话联系用户同意退款")
    assert moved.status_code == 200 and moved.json()["status"] == "after_sales", moved.text
    refunded = _act(api, kefu, oid, "refund", amount_fen=12_000, reason="无花店可配送，全额退款")
    assert refunded.status_code == 200, refunded.text
    refund = refunded.json()["refunds"][0]
    assert (refund["amount_fen"], refund["full"]) == (12_000, True)
    done = api.post("/sim/wechatpay/_refund", json={"out_refund_no": refund["out_refund_no"]})
    assert done.json()["notify_status"] == 204, done.text

    mine = api.get(f"{M}/orders/{oid}", headers=me).json()
    assert (mine["status"], mine["refunded_fen"]) == ("refunded", 12_000)
    assert mine["refunds"][0]["status"] == "succeeded"
    assert api.get(f"{M}/coupons/{coupon_id}", headers=me).json()["status"] == "available"  # the coupon comes back
    # the slot is free again
    day = tomorrow_at(10).date().isoformat()
    slot = next(s for s in api.get(f"{M}/flower/slots", params={"city": "南宁", "date": day}, headers=me).json()["slots"]
                if dt.datetime.fromisoformat(s["start"]) == tomorrow_at(10))
    assert slot["available"] == 5
    assert scalar("SELECT sum(amount_fen) FROM ledger_entry WHERE order_id = :o", o=oid) == 0
    assert dt.datetime.fromisoformat(mine["details"]["slot_start"]).astimezone(SHANGHAI).hour == 10
