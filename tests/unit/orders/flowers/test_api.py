"""鲜花配送 over HTTP: the catalogue with its photos, slots, the service area, quote → order → pay through the
WeChat Pay simulator with the 鲜花立减 30 coupon (¥150 → ¥120). Runs on SQLite and, with GC_TEST_PG_URL,
PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update
from sqlmodel import select

from gc_admin.config import get_settings
from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.core.regions import GUANGXI_CITIES
from gc_admin.db import session_scope
from gc_admin.orders import flows
from gc_admin.orders.models import ServiceOrder
from gc_admin.users.models import MpUser
from tests.support import api_error, race, scalar, statuses
from tests.unit.orders.flowers.support import (
    M,
    pay,
    buyer,
    flower_body,
    give_flower_coupon,
    tomorrow_at,
)

pytestmark = pytest.mark.usefixtures("any_db", "private_uploads")


def _capacity(monkeypatch, n: int) -> None:
    monkeypatch.setenv("GC_FLOWER_SLOT_CAPACITY", str(n))
    get_settings.cache_clear()


def test_catalog_lists_the_active_bouquets_with_their_photos_and_the_14_cities(api, shop) -> None:
    me = buyer(api)
    catalog = api.get(f"{M}/catalog", headers=me).json()
    assert [(b["code"], b["name"], b["price_fen"]) for b in catalog["bouquets"]] == [
        ("Rose-11", "红玫瑰 11 枝", 15_000), ("lily-9", "百合 9 枝", 19_900)]
    assert all("可能与图片略有不同" in b["note"] for b in catalog["bouquets"])
    assert catalog["flower_cities"] == list(GUANGXI_CITIES) and len(GUANGXI_CITIES) == 14

    photo = api.get(catalog["bouquets"][0]["image_url"])  # public: a mini-program <image> sends no token
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/png"
    assert photo.content.startswith(b"\x89PNG") and photo.headers["x-content-type-options"] == "nosniff"
    again = api.get(catalog["bouquets"][0]["image_url"], headers={"If-None-Match": photo.headers["etag"]})
    assert again.status_code == 304

    # taken off the menu: no longer listed, no longer orderable
    off = api.patch("/api/v1/admin/bouquets/lily-9", json={"active": False}, headers=shop["mgr"])
    assert off.status_code == 200 and off.json()["active"] is False
    assert [b["code"] for b in api.get(f"{M}/catalog", headers=me).json()["bouquets"]] == ["Rose-11"]
    api_error(api.post(f"{M}/orders/quote", json=flower_body(bouquet="lily-9"), headers=me), 409, "BOUQUET_INACTIVE")
    api_error(api.post(f"{M}/orders/quote", json=flower_body(bouquet="nope"), headers=me), 404, "BOUQUET_NOT_FOUND")


def test_quote_order_and_pay_with_the_flower_coupon(api, shop) -> None:
    me = buyer(api)
    coupon_id = give_flower_coupon(api, me)
    body = flower_body(coupon_id=coupon_id, bouquet="rose-11")  # a code in any case finds the bouquet

    quote = api.post(f"{M}/orders/quote", json=body, headers=me)
    assert quote.status_code == 200, quote.text
    q = quote.json()
    assert q["pricing"]["list_fen"] == 15_000 and q["pricing"]["payable_fen"] == 12_000
    assert [(s["kind"], s["amount_fen"], s["funded_by"]) for s in q["pricing"]["steps"]] == [("coupon", 3_000, "insurer")]
    assert q["lines"] == [{"code": "Rose-11", "name": "红玫瑰 11 枝", "quantity": 1, "unit_fen": 15_000,
                           "amount_fen": 15_000}]
    assert scalar("SELECT count(*) FROM service_order") == 0  # a quote has no side effects

    created = api.post(f"{M}/orders", json=body, headers=me)
    assert created.status_code == 201, created.text
    order = created.json()
    d = order["details"]
    assert (d["city"], d["district"], d["recipient_name"], d["recipient_phone"], d["greeting"]) == (
        "南宁", "青秀区", "张晓梅", "13987654321", "生日快乐！")
    assert dt.datetime.fromisoformat(d["slot_start"]) == tomorrow_at(10)
    assert dt.datetime.fromisoformat(d["slot_end"]) == tomorrow_at(11)
    assert "可能与图片略有不同" in d["note"]
    assert order["pricing"]["payable_fen"] == 12_000 and order["status"] == "created"
    assert api.get(f"{M}/coupons/{coupon_id}", headers=me).json()["status"] == "reserved"

    pay(api, order)
    mine = api.get(f"{M}/orders/{order['id']}", headers=me).json()
    assert mine["status"] == "paid" and mine["paid_fen"] == 12_000
    assert [h["status"] for h in mine["history"]] == ["created", "paid"]
    assert api.get(f"{M}/coupons/{coupon_id}", headers=me).json()["status"] == "used"
    queue = api.get("/api/v1/admin/orders", params={"type": "flower"}, headers=shop["chen"]).json()
    assert [r["id"] for r in queue["items"]] == [order["id"]]


@pytest.mark.parametrize("city", ["深圳", "深圳市", "广州市", "南宁区", "", "Nanning"])
def test_a_city_outside_guangxi_is_refused_at_quote_and_at_order_naming_all_14(api, shop, city) -> None:
    me = buyer(api)
    body = flower_body(city=city)
    for path in ("/orders/quote", "/orders"):
        resp = api.post(M + path, json=body, headers=me)
        if city == "":
            api_error(resp, 422, "VALIDATION_ERROR")
            continue
        message = api_error(resp, 422, "CITY_NOT_SERVED")
        assert all(c in message for c in GUANGXI_CITIES), message
    assert scalar("SELECT count(*) FROM service_order") == 0
    if city:
        api_error(api.get(f"{M}/flower/slots", params={"city": city, "date": tomorrow_at(10).date().isoformat()},
                          headers=me), 422, "CITY_NOT_SERVED")


@pytest.mark.parametrize("city", ["桂林", "桂林市", "广西桂林市", " 崇左市 "])
def test_a_guangxi_city_with_or_without_shi_is_served(api, shop, city) -> None:
    resp = api.post(f"{M}/orders/quote", json=flower_body(city=city), headers=buyer(api))
    assert resp.status_code == 200, resp.text
    assert resp.json()["details"]["city"] in ("桂林", "崇左")


def test_slots_are_future_hours_inside_opening_hours_with_the_lead_time(api, shop, monkeypatch) -> None:
    me = buyer(api)
    tomorrow = tomorrow_at(0).date()
    slots = api.get(f"{M}/flower/slots", params={"city": "南宁", "date": tomorrow.isoformat()}, headers=me).json()
    starts = [dt.datetime.fromisoformat(s["start"]) for s in slots["slots"]]
    assert starts == [tomorrow_at(h) for h in range(9, 21)]  # 09:00 … 20:00-21:00
    assert all(s["available"] == 5 for s in slots["slots"])
    assert all(dt.datetime.fromisoformat(s["end"]) - dt.datetime.fromisoformat(s["start"]) == dt.timedelta(hours=1)
               for s in slots["slots"])

    # today: only slots starting at least the lead time from now
    today = utcnow().astimezone(SHANGHAI).date()
    now = utcnow()
    todays = api.get(f"{M}/flower/slots", params={"city": "南宁", "date": today.isoformat()}, headers=me).json()
    for s in todays["slots"]:
        assert dt.datetime.fromisoformat(s["start"]) >= now + dt.timedelta(minutes=120) - dt.timedelta(seconds=5)
    # yesterday and past the booking window: nothing
    for day in (today - dt.timedelta(days=1), today + dt.timedelta(days=15)):
        assert api.get(f"{M}/flower/slots", params={"city": "南宁", "date": day.isoformat()},
                       headers=me).json()["slots"] == []

    # configurable: other hours, another lead time
    monkeypatch.setenv("GC_FLOWER_OPEN", "10:00")
    monkeypatch.setenv("GC_FLOWER_CLOSE", "12:00")
    get_settings.cache_clear()
    slots = api.get(f"{M}/flower/slots", params={"city": "南宁", "date": tomorrow.isoformat()}, headers=me).json()
    assert [dt.datetime.fromisoformat(s["start"]) for s in slots["slots"]] == [tomorrow_at(10), tomorrow_at(11)]
    api_error(api.post(f"{M}/orders/quote", json=flower_body(slot=tomorrow_at(9)), headers=me), 422, "SLOT_INVALID")
    monkeypatch.setenv("GC_FLOWER_LEAD_MINUTES", str(3 * 24 * 60))
    get_settings.cache_clear()
    assert api.get(f"{M}/flower/slots", params={"city": "南宁", "date": tomorrow.isoformat()},
                   headers=me).json()["slots"] == []
    api_error(api.post(f"{M}/orders/quote", json=flower_body(), headers=me), 422, "SLOT_INVALID")


@pytest.mark.parametrize("slot", [
    lambda: tomorrow_at(10) + dt.timedelta(minutes=30),  # not on the hour
    lambda: tomorrow_at(8),  # before opening
    lambda: tomorrow_at(21),  # the last slot starts at 20:00
    lambda: tomorrow_at(10) - dt.timedelta(days=2),  # past
    lambda: tomorrow_at(10) + dt.timedelta(days=20),  # past the booking window
])
def test_a_slot_outside_the_rules_is_refused(api, shop, slot) -> None:
    me = buyer(api)
    for path in ("/orders/quote", "/orders"):
        message = api_error(api.post(M + path, json=flower_body(slot=slot()), headers=me), 422, "SLOT_INVALID")
        assert message
    naive = flower_body()
    naive["flower"]["slot_start"] = tomorrow_at(10).replace(tzinfo=None).isoformat()
    api_error(api.post(f"{M}/orders/quote", json=naive, headers=me), 422, "SLOT_INVALID")


def test_a_full_slot_is_refused_and_a_cancelled_order_frees_its_place(api, shop, monkeypatch) -> None:
    _capacity(monkeypatch, 1)
    first, second = buyer(api), buyer(api, "oFlower000000000000000002", "13812340002")
    taken = api.post(f"{M}/orders", json=flower_body(), headers=first)
    assert taken.status_code == 201, taken.text
    day = tomorrow_at(10).date().isoformat()
    slots = {s["start"]: s["available"]
             for s in api.get(f"{M}/flower/slots", params={"city": "南宁", "date": day}, headers=second).json()["slots"]}
    assert slots[tomorrow_at(10).isoformat()] == 0 and slots[tomorrow_at(11).isoformat()] == 1
    for path in ("/orders/quote", "/orders"):
        message = api_error(api.post(M + path, json=flower_body(), headers=second), 409, "SLOT_FULL")
        assert "约满" in message
    # another city's slot at the same hour is its own
    assert api.post(f"{M}/orders/quote", json=flower_body(city="柳州"), headers=second).status_code == 200

    cancelled = api.post(f"{M}/orders/{taken.json()['id']}/cancel", json={"reason": "不要了"}, headers=first)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = api.post(f"{M}/orders", json=flower_body(), headers=second)
    assert again.status_code == 201, again.text


def test_an_unpaid_order_past_its_deadline_holds_no_place(api, shop, monkeypatch) -> None:
    _capacity(monkeypatch, 1)
    taken = api.post(f"{M}/orders", json=flower_body(), headers=buyer(api)).json()
    with session_scope() as s:
        s.execute(update(ServiceOrder).where(ServiceOrder.id == taken["id"])
                  .values(pay_expires_at=utcnow() - dt.timedelta(minutes=1)))
    second = buyer(api, "oFlower000000000000000002", "13812340002")
    assert api.post(f"{M}/orders/quote", json=flower_body(), headers=second).status_code == 200


def test_two_buyers_racing_for_the_last_place_one_wins(api, shop, monkeypatch) -> None:
    _capacity(monkeypatch, 1)
    users = []
    for i in range(4):
        buyer(api, f"oFlowerRace00000000000000{i}", f"1381234{i:04d}")
        with session_scope() as s:
            users.append(s.exec(select(MpUser).where(MpUser.phone == f"1381234{i:04d}")).one())

    def order(i: int):
        with session_scope() as s:
            return flows.create_order(s, user=users[i], body={"type": "flower", "details": flower_body()["flower"]})

    results = race(4, order)
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1, results
    assert {getattr(r, "code", repr(r)) for r in lost} == {"SLOT_FULL"}, lost
    assert scalar("SELECT count(*) FROM flower_delivery") == 1
    assert scalar("SELECT count(*) FROM service_order") == 1


def test_unknown_fields_and_a_stray_type_object_are_refused(api, shop) -> None:
    me = buyer(api)
    body = flower_body()
    body["flower"]["colour"] = "red"
    api_error(api.post(f"{M}/orders/quote", json=body, headers=me), 422, "VALIDATION_ERROR")
    stray = {**flower_body(), "topup": {"mobile": "13812345678", "face_fen": 5000}}
    api_error(api.post(f"{M}/orders/quote", json=stray, headers=me), 422, "INVALID_ORDER")
    bad_phone = flower_body()
    bad_phone["flower"]["recipient_phone"] = "12345678901"
    api_error(api.post(f"{M}/orders/quote", json=bad_phone, headers=me), 422, "INVALID_PHONE")
    api_error(api.post(f"{M}/orders/quote", json={"type": "flower"}, headers=me), 422, "INVALID_ORDER")
    assert statuses([api.post(f"{M}/orders/quote", json=flower_body(), headers=me)]) == {200: 1}
