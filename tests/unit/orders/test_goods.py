"""实物 (goods) orders over HTTP, end to end, on SQLite and PostgreSQL: a user redeems an exchange voucher for
a supplier's item, the supplier (who sees only its own orders) ships it, the user sees the tracking number
and confirms; a paid goods order is refunded; stock never goes below zero under a race."""

from __future__ import annotations

import datetime as dt

import pytest

from gc_admin.core.clock import utcnow
from gc_admin.core.errors import Conflict, NotFound
from gc_admin.db import session_scope
from gc_admin.orders import flows
from gc_admin.orders import service as orders
from gc_admin.orders.kanban import service as kanban
from gc_admin.orders.kinds.goods import auto_confirm_shipped
from tests.support import api_error, race, scalar, staff_headers, wechat_user
from tests.unit.orders.goods_support import ADDRESS, give_voucher, goods_body, goods_world
from tests.unit.orders.support import buyer

pytestmark = pytest.mark.usefixtures("any_db")

A = "/api/v1/admin"


@pytest.fixture
def world(api, make_staff):
    goods_world(make_staff)
    return {u: staff_headers(api, u) for u in ("sup", "sup2", "chen", "kefu")}


def _voucher_id(api, me) -> int:
    wallet = api.get("/api/v1/mp/coupons", headers=me).json()["items"]
    return next(c["id"] for c in wallet if c["product"]["code"] == "aroma_x")


def test_redeem_ship_confirm_end_to_end(api, world) -> None:
    me = wechat_user(api, "oGoods00000000000000000001", "13812345678")
    give_voucher("13812345678")
    catalog = api.get("/api/v1/mp/catalog", headers=me).json()
    assert {g["code"]: (g["price_fen"], g["in_stock"], g["exchange_products"]) for g in catalog["goods"]} == {
        "aroma1": (12_800, True, ["aroma_x"]), "mug": (3_000, True, [])}
    # the voucher does not redeem the mug
    api_error(api.post("/api/v1/mp/orders", json=goods_body("mug", exchange_coupon_id=_voucher_id(api, me)),
                       headers=me), 409, "COUPON_NOT_APPLICABLE")
    bad = goods_body(exchange_coupon_id=_voucher_id(api, me))
    bad["goods"]["address"] = {**ADDRESS, "phone": "23812345678"}
    api_error(api.post("/api/v1/mp/orders", json=bad, headers=me), 422, "INVALID_ADDRESS")

    created = api.post("/api/v1/mp/orders", json=goods_body(exchange_coupon_id=_voucher_id(api, me)), headers=me)
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "paid" and order["pricing"]["payable_fen"] == 0  # the voucher pays it all
    assert order["details"]["address"]["city"] == "南宁市"
    assert scalar("SELECT stock FROM goods WHERE code = 'aroma1'") == 4
    oid = order["id"]

    # the supplier sees it (and only its own), the other supplier does not
    mine = api.get(A + "/orders", headers=world["sup"]).json()
    assert [r["id"] for r in mine["items"]] == [oid]
    assert api.get(A + "/orders", headers=world["sup2"]).json()["items"] == []
    api_error(api.get(f"{A}/orders/{oid}", headers=world["sup2"]), 404, "ORDER_NOT_FOUND")
    api_error(api.post(f"{A}/orders/{oid}/actions/ship", json={"carrier": "顺丰", "tracking_no": "SF1"},
                       headers=world["sup2"]), 404, "ORDER_NOT_FOUND")
    # a supplier ships; it cannot refund, claim or complete
    api_error(api.post(f"{A}/orders/{oid}/actions/refund", json={"amount_fen": 1, "reason": "x"},
                       headers=world["sup"]), 403, "FORBIDDEN")
    api_error(api.post(f"{A}/orders/{oid}/actions/claim", json={}, headers=world["sup"]), 403, "FORBIDDEN")
    api_error(api.post(f"{A}/orders/{oid}/actions/complete", json={}, headers=world["sup"]), 403, "FORBIDDEN")
    api_error(api.post(f"{A}/orders/{oid}/actions/ship", json={"carrier": "顺丰"}, headers=world["sup"]),
              422, "FIELD_REQUIRED")
    shipped = api.post(f"{A}/orders/{oid}/actions/ship", json={"carrier": "顺丰速运", "tracking_no": "SF1234567890"},
                       headers=world["sup"])
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["status"] == "shipped"

    seen = api.get(f"/api/v1/mp/orders/{oid}", headers=me).json()
    assert seen["status"] == "shipped"
    assert (seen["fulfilment"]["carrier"], seen["fulfilment"]["tracking_no"]) == ("顺丰速运", "SF1234567890")
    confirmed = api.post(f"/api/v1/mp/orders/{oid}/confirm", headers=me)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "completed", confirmed.text
    assert [h["status"] for h in confirmed.json()["history"]] == ["created", "paid", "shipped", "completed"]
    assert scalar("SELECT status FROM coupon WHERE id = :i", i=_voucher_id(api, me)) == "used"


def test_paid_goods_order_refunded(api, world) -> None:
    me = wechat_user(api, "oGoods00000000000000000002", "13812345679")
    created = api.post("/api/v1/mp/orders", json=goods_body("mug"), headers=me)
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "created" and order["pricing"]["payable_fen"] == 3_000
    paid = api.post("/sim/wechatpay/_pay", json={"prepay_id": order["payment"]["package"].removeprefix("prepay_id=")})
    assert paid.status_code == 200 and paid.json()["notify_status"] == 204, paid.text
    assert api.get(f"/api/v1/mp/orders/{order['id']}", headers=me).json()["status"] == "paid"
    assert [r["id"] for r in api.get(A + "/orders", headers=world["sup2"]).json()["items"]] == [order["id"]]
    refunded = api.post(f"{A}/orders/{order['id']}/actions/refund", json={"amount_fen": 3_000, "reason": "缺货"},
                        headers=world["kefu"])
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["refunded_fen"] == 3_000
    assert api.get(f"/api/v1/mp/orders/{order['id']}", headers=me).json()["status"] in ("refund_requested", "refunded")


def test_cancelled_unpaid_goods_order_gives_stock_back(api, world) -> None:
    me = wechat_user(api, "oGoods00000000000000000003", "13812345670")
    order = api.post("/api/v1/mp/orders", json=goods_body("mug"), headers=me).json()
    assert scalar("SELECT stock FROM goods WHERE code = 'mug'") == 1
    assert api.post(f"/api/v1/mp/orders/{order['id']}/cancel", json={}, headers=me).status_code == 200
    assert scalar("SELECT stock FROM goods WHERE code = 'mug'") == 2
    # cancelling again gives nothing back twice
    assert api.post(f"/api/v1/mp/orders/{order['id']}/cancel", json={}, headers=me).status_code == 409
    assert scalar("SELECT stock FROM goods WHERE code = 'mug'") == 2


def test_supplier_scope_in_the_dashboard_service(api, world) -> None:
    me = wechat_user(api, "oGoods00000000000000000004", "13812345671")
    oid = api.post("/api/v1/mp/orders", json=goods_body("mug"), headers=me).json()["id"]
    theirs = orders.scope_for("supplier", supplier_code="taoci")
    other = orders.scope_for("supplier", supplier_code="xiangfen")
    unlinked = orders.scope_for("supplier")
    with session_scope() as s:
        assert flows.staff_detail(s, order_id=oid, scope=theirs).order.id == oid
        assert orders.staff_actions("paid", theirs, ("ship", "complete", "cancel")) == ["ship"]
        for scope in (other, unlinked):
            with pytest.raises(NotFound):
                flows.staff_detail(s, order_id=oid, scope=scope)
        assert orders.list_orders(s, types=other.types, supplier=other.supplier).total == 0
        assert orders.list_orders(s, types=theirs.types, supplier=theirs.supplier).total == 1
        # the 订单看板 board: the supplier's columns hold its own orders only
        for scope, n in ((theirs, 1), (other, 0)):
            cols = kanban.board(s, filters=kanban.BoardFilters.within(scope))
            assert sum(len(c.cards) for c in cols) == n


def test_goods_catalogue_admin(api, world, make_staff) -> None:
    make_staff("mgr", "manager")
    mgr = staff_headers(api, "mgr")
    assert {g["code"] for g in api.get(A + "/goods", headers=world["sup"]).json()["items"]} == {"aroma1"}
    assert {g["code"] for g in api.get(A + "/goods", headers=mgr).json()["items"]} == {"aroma1", "mug"}
    made = api.post(A + "/goods", json={"code": "aroma2", "name": "香薰补充液", "price_fen": 2_000, "stock": 3},
                    headers=world["sup"])
    assert made.status_code == 201 and made.json()["supplier_code"] == "xiangfen", made.text
    api_error(api.post(A + "/goods", json={"code": "x9", "name": "别家", "price_fen": 1, "supplier_code": "taoci"},
                       headers=world["sup"]), 403, "FORBIDDEN")
    api_error(api.post(A + "/goods", json={"code": "x9", "name": "无主", "price_fen": 1}, headers=mgr),
              422, "SUPPLIER_REQUIRED")
    api_error(api.post(A + "/goods", json={"code": "x9", "name": "x", "price_fen": 1}, headers=world["chen"]),
              403, "FORBIDDEN")
    assert api.post(A + "/goods", json={"code": "x9", "name": "陶壶", "price_fen": 9_900, "supplier_code": "taoci"},
                    headers=mgr).status_code == 201


def test_stock_never_below_zero_under_a_race(api, world) -> None:
    users = [buyer(f"1390001{i:04d}", openid=f"oGoodsRace{i:04d}") for i in range(6)]

    def work(i: int):
        with session_scope() as s:
            return flows.create_order(s, user=users[i], body={"type": "goods", "details": {
                "goods_code": "mug", "quantity": 1, "address": ADDRESS}}).id

    results = race(6, work)
    made = [r for r in results if not isinstance(r, Exception)]
    assert len(made) == 2, results
    assert all(isinstance(r, Conflict) and r.code == "GOODS_OUT_OF_STOCK" for r in results if isinstance(r, Exception))
    assert scalar("SELECT stock FROM goods WHERE code = 'mug'") == 0


def test_shipped_orders_confirmed_automatically(api, world) -> None:
    me = wechat_user(api, "oGoods00000000000000000005", "13812345672")
    give_voucher("13812345672")
    oid = api.post("/api/v1/mp/orders", json=goods_body(exchange_coupon_id=_voucher_id(api, me)), headers=me).json()["id"]
    assert api.post(f"{A}/orders/{oid}/actions/ship", json={"carrier": "中通", "tracking_no": "ZT1"},
                    headers=world["sup"]).status_code == 200
    with session_scope() as s:
        assert auto_confirm_shipped(s, now=utcnow() + dt.timedelta(days=3)) == 0
    with session_scope() as s:
        assert auto_confirm_shipped(s, now=utcnow() + dt.timedelta(days=11)) == 1
    assert api.get(f"/api/v1/mp/orders/{oid}", headers=me).json()["status"] == "completed"
