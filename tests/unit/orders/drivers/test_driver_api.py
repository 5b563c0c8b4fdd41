"""Designated driver (代驾) end to end over HTTP: booking, the roster, dispatch to an own driver or to the
third-party platform (through its simulator and its signed callbacks), the fee settled against the 代驾
coupon with the rest paid through the WeChat Pay simulator, cancellation and refunds.
Runs on SQLite and, with GC_TEST_PG_URL, PostgreSQL."""

from __future__ import annotations

import pytest

from gc_admin.integrations.driver.simulator import advance, make_callback
from tests.support import api_error, rows, scalar
from tests.unit.orders.drivers.support import A, PHONE, act, at, book, booking, ok

pytestmark = pytest.mark.usefixtures("any_db")

MP = "/api/v1/mp/orders"
NOTIFY = "/api/v1/pay/wechat/notify"


def _driver(api, headers, driver_id: int) -> dict:
    items = ok(api.get(A + "/drivers", headers=headers))["items"]
    return next(d for d in items if d["id"] == driver_id)


def _coupon_status(coupon_id: int) -> str:
    return scalar("SELECT status FROM coupon WHERE id = :i", i=coupon_id)


def _pay(api, me, order_id: int) -> dict:
    """The user pays what the order shows as due, through the WeChat Pay simulator (which notifies the app)."""
    mine = ok(api.get(f"{MP}/{order_id}", headers=me))
    assert mine["status"] == "awaiting_payment" and mine["payment"], mine
    prepay_id = mine["payment"]["package"].removeprefix("prepay_id=")
    paid = api.post("/sim/wechatpay/_pay", json={"prepay_id": prepay_id})
    assert paid.status_code == 200 and paid.json()["notify_status"] == 204, paid.text
    return ok(api.get(f"{MP}/{order_id}", headers=me))


# --- booking ----------------------------------------------------------------------------------------------

def test_booking_is_validated_and_free(api, world) -> None:
    me = world["me"]
    for changes, code in (({"at": at(-1)}, "INVALID_ORDER"), ({"at": "2026-12-01T20:00:00"}, "INVALID_ORDER"),
                          ({"at": at(24 * 40)}, "INVALID_ORDER"), ({"contact_phone": "12345"}, "INVALID_MOBILE"),
                          ({"plate_no": "ABC123"}, "INVALID_PLATE"), ({"plate_no": "桂I12345"}, "INVALID_PLATE"),
                          ({"pickup": {"city": "南宁"}}, "INVALID_ORDER"), ({"tip": 1}, "INVALID_ORDER"),
                          ({"pickup": {"city": "南宁", "address": "民族大道", "lat": 200}}, "INVALID_ORDER")):
        api_error(api.post(MP, json={"type": "driver", "driver": booking(**changes)}, headers=me), 422, code)
    api_error(api.post(MP, json={"type": "driver", "driver": booking(), "points": 10}, headers=me), 422,
              "INVALID_ORDER")
    assert scalar("SELECT count(*) FROM service_order") == 0

    quote = ok(api.post(MP + "/quote", json={"type": "driver", "driver": booking(), "coupon_id": world["coupon_id"]},
                        headers=me))
    assert quote["pricing"] == {"list_fen": 0, "steps": [], "payable_fen": 0}
    order = book(api, me, coupon_id=world["coupon_id"], plate_no="桂AD12345")
    assert order["status"] == "paid" and order["payment"] is None and order["paid_fen"] == 0
    d = order["details"]
    assert d["contact_phone"] == PHONE and d["plate_no"] == "桂AD12345" and d["pickup"]["city"] == "南宁市"
    assert d["pickup"]["lat"] == 22.817 and d["at"].endswith("+08:00")
    assert _coupon_status(world["coupon_id"]) == "used"  # used on the booking
    assert scalar("SELECT count(*) FROM payment") == 0  # nothing went through WeChat Pay
    # a flower coupon is a service_discount too, but a coupon purchase cannot fit: only service_discount kinds
    queue = ok(api.get(A + "/orders", params={"type": "driver"}, headers=world["diao"]))
    assert [r["id"] for r in queue["items"]] == [order["id"]]


# --- own driver ------------------------------------------------------------------------------------------

def test_own_driver_happy_path_coupon_covers_part_and_the_user_pays_the_rest(api, world) -> None:
    me, diao, (li, zhou) = world["me"], world["diao"], world["drivers"]
    order = book(api, me, coupon_id=world["coupon_id"])
    oid = order["id"]
    # a clerk cannot set a fee on an order that is not in service; no driver, no start
    api_error(act(api, diao, oid, "set_fee", fee_fen=8800), 409, "ORDER_STATE_INVALID")
    api_error(act(api, diao, oid, "assign_driver", driver_id=999999), 404, "DRIVER_NOT_FOUND")

    got = ok(act(api, diao, oid, "assign_driver", driver_id=li))
    assert got["status"] == "accepted" and got["fulfilment"]["driver_name"] == "李师傅"
    assert _driver(api, diao, li)["status"] == "busy"
    # re-assigning before arrival frees the first driver
    got = ok(act(api, diao, oid, "assign_driver", driver_id=zhou))
    assert got["fulfilment"]["driver_name"] == "周师傅" and got["fulfilment"]["driver_phone"] == "13700000002"
    assert (_driver(api, diao, li)["status"], _driver(api, diao, zhou)["status"]) == ("available", "busy")
    mine = ok(api.get(f"{MP}/{oid}", headers=me))
    assert mine["fulfilment"]["driver_name"] == "周师傅" and mine["fulfilment"]["driver_phone"] == "13700000002"

    assert ok(act(api, diao, oid, "arrive"))["status"] == "arrived"
    api_error(api.post(f"{MP}/{oid}/cancel", json={}, headers=me), 409, "DRIVER_ALREADY_ARRIVED")
    assert ok(act(api, diao, oid, "start"))["status"] == "in_fulfilment"
    api_error(act(api, diao, oid, "set_fee", fee_fen=8800.0), 422, "VALIDATION_ERROR")
    api_error(act(api, diao, oid, "set_fee", fee_fen=-1), 422, "VALIDATION_ERROR")
    api_error(act(api, diao, oid, "set_fee", fee_fen=300_000), 422, "INVALID_FIELD")  # over ¥2,000: a typo
    settled = ok(act(api, diao, oid, "set_fee", fee_fen=8800))
    assert settled["status"] == "awaiting_payment"
    assert settled["pricing"]["list_fen"] == 8800 and settled["pricing"]["payable_fen"] == 5800
    assert [(s["kind"], s["amount_fen"]) for s in settled["pricing"]["steps"]] == [("coupon", 3000)]
    assert settled["fulfilment"]["fee_fen"] == 8800 and settled["fulfilment"]["due_fen"] == 5800
    assert _driver(api, diao, zhou)["status"] == "available"  # the drive is over

    done = _pay(api, me, oid)
    assert done["status"] == "completed" and done["paid_fen"] == 5800 and done["payment"] is None
    assert [h["status"] for h in done["history"]][-2:] == ["awaiting_payment", "completed"]
    assert rows("SELECT kind, amount_fen FROM ledger_entry WHERE order_id = :o", o=oid) == [("payment", 5800)]
    assert scalar("SELECT count(*) FROM payment WHERE order_id = :o", o=oid) == 1
    # WeChat Pay repeats its notify: nothing is paid twice
    from gc_admin.integrations import sims
    notify = sims.simulators().wxpay.notifies[-1]
    assert api.post(NOTIFY, headers=notify.headers, content=notify.body).status_code == 204
    assert rows("SELECT kind, amount_fen FROM ledger_entry WHERE order_id = :o", o=oid) == [("payment", 5800)]
    assert ok(api.get(f"{MP}/{oid}", headers=me))["paid_fen"] == 5800
    # the refund path of a settled order: customer service refunds the remainder paid; the coupon comes back
    refunded = ok(act(api, world["kefu"], oid, "refund", amount_fen=5800, reason="司机绕路，全额退还补款"))
    assert refunded["status"] == "refund_requested"
    out_refund_no = refunded["refunds"][0]["out_refund_no"]
    assert api.post("/sim/wechatpay/_refund", json={"out_refund_no": out_refund_no}).status_code == 200
    final = ok(api.get(f"{MP}/{oid}", headers=me))
    assert final["status"] == "refunded" and final["refunded_fen"] == 5800
    assert sorted(rows("SELECT kind, amount_fen FROM ledger_entry WHERE order_id = :o", o=oid)) == [
        ("payment", 5800), ("refund", -5800)]
    assert _coupon_status(world["coupon_id"]) == "available"


def test_a_fee_the_coupon_covers_completes_at_once(api, world) -> None:
    me, diao, (li, _) = world["me"], world["diao"], world["drivers"]
    oid = book(api, me, coupon_id=world["coupon_id"])["id"]
    for action, fields in (("assign_driver", {"driver_id": li}), ("start", {})):
        ok(act(api, diao, oid, action, **fields))
    done = ok(act(api, diao, oid, "set_fee", fee_fen=2500))
    assert done["status"] == "completed" and done["pricing"]["payable_fen"] == 0
    assert ok(api.get(f"{MP}/{oid}", headers=me))["payment"] is None
    assert scalar("SELECT count(*) FROM ledger_entry WHERE order_id = :o", o=oid) == 0


def test_cancellation_rules(api, world) -> None:
    me, diao, (li, _) = world["me"], world["diao"], world["drivers"]
    # before a driver is assigned: the user cancels free, the coupon comes back
    first = book(api, me, coupon_id=world["coupon_id"])
    cancelled = ok(api.post(f"{MP}/{first['id']}/cancel", json={}, headers=me))
    assert cancelled["status"] == "cancelled" and _coupon_status(world["coupon_id"]) == "available"
    # after assignment, before arrival: the dispatcher cancels (with a reason), the driver is freed
    second = book(api, me)
    ok(act(api, diao, second["id"], "assign_driver", driver_id=li))
    api_error(act(api, diao, second["id"], "cancel"), 422, "REASON_REQUIRED")
    assert ok(act(api, diao, second["id"], "cancel", reason="用户电话取消"))["status"] == "cancelled"
    assert _driver(api, diao, li)["status"] == "available"
    # after arrival: no cancellation (the dispatcher settles a fee instead)
    third = book(api, me)
    for action, fields in (("assign_driver", {"driver_id": li}), ("arrive", {})):
        ok(act(api, diao, third["id"], action, **fields))
    api_error(act(api, diao, third["id"], "cancel", reason="不要了"), 409, "DRIVER_ALREADY_ARRIVED")
    assert _driver(api, diao, li)["status"] == "busy"


def test_a_busy_or_off_driver_cannot_be_assigned(api, world) -> None:
    me, diao, (li, zhou) = world["me"], world["diao"], world["drivers"]
    a, b = book(api, me)["id"], book(api, me)["id"]
    ok(act(api, diao, a, "assign_driver", driver_id=li))
    api_error(act(api, diao, b, "assign_driver", driver_id=li), 409, "DRIVER_NOT_AVAILABLE")
    api_error(api.patch(f"{A}/drivers/{li}", json={"status": "off"}, headers=diao), 409, "DRIVER_BUSY")
    ok(api.patch(f"{A}/drivers/{zhou}", json={"status": "off"}, headers=diao))
    api_error(act(api, diao, b, "assign_driver", driver_id=zhou), 409, "DRIVER_NOT_AVAILABLE")
    assert scalar("SELECT status FROM service_order WHERE id = :i", i=b) == "paid"


def test_roster_api(api, world) -> None:
    diao = world["diao"]
    api_error(api.post(A + "/drivers", json={"name": "重复", "phone": "13700000001"}, headers=diao), 409,
              "DRIVER_EXISTS")
    api_error(api.post(A + "/drivers", json={"name": "王师傅", "phone": "12345678901"}, headers=diao), 422,
              "INVALID_PHONE")
    new = api.post(A + "/drivers", json={"name": "王师傅", "phone": "137-0000-0003"}, headers=world["mgr"])
    assert new.status_code == 201 and new.json()["phone"] == "13700000003"
    page = ok(api.get(A + "/drivers", params={"q": "王"}, headers=diao))
    assert page["total"] == 1 and page["items"][0]["status_label"] == "空闲"
    ok(api.patch(f"{A}/drivers/{new.json()['id']}", json={"active": False}, headers=diao))
    assert ok(api.get(A + "/drivers", params={"active": "false"}, headers=diao))["total"] == 1
    api_error(api.get(A + "/drivers", headers=world["chen"]), 403, "FORBIDDEN")
    assert scalar("SELECT count(*) FROM audit_log WHERE action LIKE 'driver.%'") == 4  # 3 created + 1 updated


# --- the third-party platform ----------------------------------------------------------------------------

def _handed_off(api, world, sim, **book_kw) -> tuple[int, str]:
    oid = book(api, world["me"], **book_kw)["id"]
    api_error(act(api, world["diao"], oid, "hand_off", platform="nope"), 422, "UNKNOWN_PLATFORM")
    got = ok(act(api, world["diao"], oid, "hand_off", platform="edaijia"))
    f = got["fulfilment"]
    assert got["status"] == "accepted" and f["platform"] == "edaijia" and f["platform_status"] == "pending"
    sim_order = sim.orders[f["platform_order_id"]]
    assert sim_order.out_order_no == got["order_no"] and sim_order.request["contact_phone"] == PHONE
    assert sim_order.callback_url.endswith("/api/v1/driver/edaijia/callback")
    return oid, f["platform_order_id"]


def test_hand_off_path_through_the_platform_callbacks(api, world, sim) -> None:
    me, diao = world["me"], world["diao"]
    oid, pid = _handed_off(api, world, sim, coupon_id=world["coupon_id"])
    api_error(act(api, diao, oid, "arrive"), 409, "PLATFORM_ORDER")  # the platform drives it now
    api_error(act(api, diao, oid, "assign_driver", driver_id=world["drivers"][0]), 409, "PLATFORM_ORDER")

    assert advance(sim, pid, "accepted").status == 200
    mine = ok(api.get(f"{MP}/{oid}", headers=me))
    assert mine["fulfilment"]["driver_name"] == sim.orders[pid].driver["name"] and mine["status"] == "accepted"
    assert advance(sim, pid, "arrived").status == 200
    assert ok(api.get(f"{MP}/{oid}", headers=me))["status"] == "arrived"
    assert advance(sim, pid, "in_service").status == 200
    assert advance(sim, pid, "completed", fee_fen=6000).status == 200
    due = ok(api.get(f"{MP}/{oid}", headers=me))
    assert due["status"] == "awaiting_payment" and due["pricing"]["payable_fen"] == 3000
    assert due["fulfilment"]["platform_status"] == "completed" and due["fulfilment"]["fee_fen"] == 6000
    done = _pay(api, me, oid)
    assert done["status"] == "completed" and done["paid_fen"] == 3000
    assert rows("SELECT status, outcome FROM driver_callback ORDER BY id") == [
        ("accepted", "applied"), ("arrived", "applied"), ("in_service", "applied"), ("completed", "applied")]
    by = {h["action"]: h["by"] for h in ok(api.get(f"{A}/orders/{oid}", headers=diao))["history"]}
    assert by["arrive"] == "代驾平台 edaijia"


def _state(oid: int) -> tuple:
    return (scalar("SELECT status FROM service_order WHERE id = :i", i=oid),
            scalar("SELECT count(*) FROM order_event WHERE order_id = :i", i=oid),
            scalar("SELECT count(*) FROM driver_callback"))


def test_bad_signature_replay_and_out_of_order_callbacks_change_nothing(api, world, sim) -> None:
    oid, pid = _handed_off(api, world, sim)
    url = "/api/v1/driver/edaijia/callback"
    assert advance(sim, pid, "accepted").status == 200
    arrived = advance(sim, pid, "arrived", deliver=False)  # the platform's step, not yet delivered
    before = _state(oid)

    forged_headers, forged_body = make_callback(sim, arrived.payload, secret="not-the-secret")
    r = api.post(url, headers=forged_headers, content=forged_body)
    assert (r.status_code, r.json()["code"]) == (401, "SIGN_ERROR")
    tampered = arrived.body.replace(b'"arrived"', b'"in_service"')
    r = api.post(url, headers=arrived.headers, content=tampered)
    assert (r.status_code, r.json()["code"]) == (401, "SIGN_ERROR")
    stale_headers, stale_body = make_callback(sim, arrived.payload, timestamp=1_700_000_000)
    r = api.post(url, headers=stale_headers, content=stale_body)
    assert (r.status_code, r.json()["code"]) == (401, "TIMESTAMP_EXPIRED")
    r = api.post("/api/v1/driver/other/callback", headers=arrived.headers, content=arrived.body)
    assert r.status_code == 404
    assert _state(oid) == before

    r = api.post(url, headers=arrived.headers, content=arrived.body)
    assert r.status_code == 200 and r.json()["outcome"] == "applied"
    after_arrival = _state(oid)
    assert after_arrival[0] == "arrived"
    # the same request again: a replay (its nonce was used) is refused
    r = api.post(url, headers=arrived.headers, content=arrived.body)
    assert (r.status_code, r.json()["code"]) == (409, "REPLAY")
    # the same event redelivered with a fresh signature: received, applied once only
    again_headers, again_body = make_callback(sim, arrived.payload)
    r = api.post(url, headers=again_headers, content=again_body)
    assert r.status_code == 200 and r.json()["duplicate"] is True
    assert _state(oid) == after_arrival

    # out of order: in_service applies, then a late "accepted" (a different event) changes nothing
    advance(sim, pid, "in_service")
    in_service = _state(oid)
    assert in_service[0] == "in_fulfilment"
    late = {**arrived.payload, "event_id": "ev-late-accepted", "status": "accepted",
            "driver": {"name": "冒名师傅", "phone": "13700009999"}}
    h, b = make_callback(sim, late)
    r = api.post(url, headers=h, content=b)
    assert r.status_code == 200 and r.json()["outcome"] == "ignored"
    order = ok(api.get(f"{A}/orders/{oid}", headers=world["diao"]))
    assert order["status"] == "in_fulfilment" and order["fulfilment"]["driver_name"] != "冒名师傅"
    assert _state(oid)[:2] == in_service[:2]
    assert rows("SELECT outcome FROM driver_callback WHERE event_id = 'ev-late-accepted'") == [("ignored",)]


def test_a_callback_the_orders_state_refuses_is_ignored_not_half_applied(api, world, sim) -> None:
    oid, pid = _handed_off(api, world, sim)
    advance(sim, pid, "accepted")
    ok(act(api, world["diao"], oid, "after_sales", reason="用户投诉司机迟到"))
    before = ok(api.get(f"{A}/orders/{oid}", headers=world["diao"]))
    cb = advance(sim, pid, "arrived")
    assert cb.status == 200 and cb.payload["status"] == "arrived"
    after = ok(api.get(f"{A}/orders/{oid}", headers=world["diao"]))
    assert (after["status"], after["fulfilment"], len(after["history"])) == (
        "after_sales", before["fulfilment"], len(before["history"]))
    assert rows("SELECT status, outcome FROM driver_callback ORDER BY id")[-1] == ("arrived", "ignored")


def test_platform_cancellation_rules(api, world, sim) -> None:
    me, diao, (li, _) = world["me"], world["diao"], world["drivers"]
    # the platform finds no driver: the order waits for an own driver
    oid, pid = _handed_off(api, world, sim)
    advance(sim, pid, "cancelled")
    got = ok(api.get(f"{A}/orders/{oid}", headers=diao))
    assert got["status"] == "accepted" and got["fulfilment"]["platform_status"] == "cancelled"
    assert ok(act(api, diao, oid, "assign_driver", driver_id=li))["fulfilment"]["driver_name"] == "李师傅"
    # the user cancels a handed-off order before arrival: cancelled at the platform too
    oid2, pid2 = _handed_off(api, world, sim)
    advance(sim, pid2, "accepted")
    assert ok(api.post(f"{MP}/{oid2}/cancel", json={}, headers=me))["status"] == "cancelled"
    assert sim.orders[pid2].status == "cancelled"
