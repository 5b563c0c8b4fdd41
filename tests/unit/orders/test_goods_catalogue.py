"""商品管理 over HTTP, on SQLite and PostgreSQL: goods photos go through the bouquets' checks and are served to
the mini-program; a supplier sees and edits only its own goods (404 for another supplier's by code); price,
上架 / 下架, exchange products and stock changes are audited and stock never goes below zero; a goods order
refunded before it ships gives its stock back once (also when refunds and their results race), after shipping
not at all."""

from __future__ import annotations

import pytest

from gc_admin.integrations import sims
from gc_admin.integrations.wechatpay.simulator import finish_refund
from gc_admin.orders import refunds
from tests.support import api_error, race, rows, scalar, staff_headers, wechat_user
from tests.unit.orders.flowers.support import png
from tests.unit.orders.goods_support import goods_body, goods_world

pytestmark = pytest.mark.usefixtures("any_db", "private_uploads")

A = "/api/v1/admin"


@pytest.fixture
def world(api, make_staff):
    goods_world(make_staff)
    make_staff("mgr", "manager")
    return {u: staff_headers(api, u) for u in ("sup", "sup2", "chen", "kefu", "mgr")}


def _upload(api, headers, code: str, data: bytes, name: str = "p.png", ctype: str = "image/png"):
    return api.post(f"{A}/goods/{code}/image", files={"file": (name, data, ctype)}, headers=headers)


def test_photo_checked_stored_and_served_to_the_mini_program(api, world, private_uploads) -> None:
    me = wechat_user(api, "oGoodsPic000000000000000001", "13812340101")
    before = api.get("/api/v1/mp/catalog", headers=me).json()["goods"]
    assert {g["code"]: g["image_url"] for g in before} == {"aroma1": None, "mug": None}
    api_error(api.get("/api/v1/mp/goods/aroma1/image"), 404, "GOODS_IMAGE_NOT_FOUND")

    # refused by content, whatever the name says; nothing is stored
    api_error(_upload(api, world["sup"], "aroma1", b"<svg xmlns='http://www.w3.org/2000/svg'/>"), 422,
              "UPLOAD_NOT_IMAGE")
    api_error(_upload(api, world["sup"], "aroma1", png()[:60]), 422, "UPLOAD_BAD_IMAGE")
    assert not (private_uploads / "goods").exists() or not any((private_uploads / "goods").iterdir())

    up = _upload(api, world["sup"], "aroma1", png(80, 60))
    assert up.status_code == 200, up.text
    item = up.json()
    assert (item["image_width"], item["image_height"]) == (80, 60)
    assert item["image_url"].startswith("/api/v1/mp/goods/aroma1/image?v=")
    catalog = {g["code"]: g for g in api.get("/api/v1/mp/catalog", headers=me).json()["goods"]}
    assert catalog["aroma1"]["image_url"] == item["image_url"] and catalog["aroma1"]["supplier"] == "桂林香氛工坊"
    served = api.get(catalog["aroma1"]["image_url"])  # public: an <image src> sends no token
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff" and served.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert api.get(catalog["aroma1"]["image_url"], headers={"If-None-Match": served.headers["etag"]}).status_code == 304
    stored = list((private_uploads / "goods").iterdir())
    assert len(stored) == 1 and stored[0].name.endswith(".png")  # by content hash, outside every public path

    # a new photo is a new URL; the audit says who changed it
    again = _upload(api, world["mgr"], "aroma1", png(40, 40, color=(0, 120, 0))).json()
    assert again["image_url"] != item["image_url"]
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'goods.image_set'") == 2


def test_supplier_sees_and_edits_only_its_own_goods(api, world) -> None:
    own = api.get(f"{A}/goods/aroma1", headers=world["sup"])
    assert own.status_code == 200 and own.json()["supplier_code"] == "xiangfen"
    for call in (lambda h: api.get(f"{A}/goods/mug", headers=h),
                 lambda h: api.patch(f"{A}/goods/mug", json={"price_fen": 1}, headers=h),
                 lambda h: _upload(api, h, "mug", png())):
        api_error(call(world["sup"]), 404, "GOODS_NOT_FOUND")  # the other supplier's item, by code
    assert scalar("SELECT price_fen FROM goods WHERE code = 'mug'") == 3_000
    assert api.get(f"{A}/goods/mug", headers=world["sup2"]).status_code == 200
    # platform staff: a clerk reads, only admin / manager change
    assert api.get(f"{A}/goods/mug", headers=world["chen"]).status_code == 200
    api_error(api.patch(f"{A}/goods/mug", json={"on_sale": False}, headers=world["chen"]), 403, "FORBIDDEN")
    api_error(_upload(api, world["chen"], "mug", png()), 403, "FORBIDDEN")
    assert api.patch(f"{A}/goods/mug", json={"on_sale": False}, headers=world["mgr"]).json()["on_sale"] is False


def test_edit_price_sale_exchange_and_stock(api, world) -> None:
    me = wechat_user(api, "oGoodsEdit00000000000000001", "13812340102")
    changed = api.patch(f"{A}/goods/aroma1", json={"price_fen": 9_900, "exchange_products": ["aroma_x", "aroma_y"],
                                                  "stock_delta": 10}, headers=world["sup"])
    assert changed.status_code == 200, changed.text
    assert (changed.json()["price_fen"], changed.json()["stock"], changed.json()["exchange_products"]) == (
        9_900, 15, ["aroma_x", "aroma_y"])
    api_error(api.patch(f"{A}/goods/aroma1", json={"stock_delta": -16}, headers=world["sup"]), 409,
              "GOODS_OUT_OF_STOCK")
    assert scalar("SELECT stock FROM goods WHERE code = 'aroma1'") == 15
    api_error(api.patch(f"{A}/goods/aroma1", json={"stock": 3}, headers=world["sup"]), 422, "VALIDATION_ERROR")
    off = api.patch(f"{A}/goods/aroma1", json={"on_sale": False, "stock_delta": -5}, headers=world["sup"]).json()
    assert (off["on_sale"], off["stock"]) == (False, 10)
    assert "aroma1" not in {g["code"] for g in api.get("/api/v1/mp/catalog", headers=me).json()["goods"]}
    api_error(api.post("/api/v1/mp/orders", json=goods_body(), headers=me), 409, "GOODS_NOT_ON_SALE")
    audit = rows("SELECT summary, before, after FROM audit_log WHERE action = 'goods.updated' ORDER BY id")
    assert [a[0] for a in audit] == ["修改实物 车载香薰（aroma1）：价格、可兑换券种、库存", "修改实物 车载香薰（aroma1）：上架、库存"]


def _paid_mug_order(api, phone: str) -> tuple[dict, dict]:
    me = wechat_user(api, f"oGoodsRef{phone}", phone)
    order = api.post("/api/v1/mp/orders", json=goods_body("mug"), headers=me).json()
    paid = api.post("/sim/wechatpay/_pay", json={"prepay_id": order["payment"]["package"].removeprefix("prepay_id=")})
    assert paid.status_code == 200 and paid.json()["notify_status"] == 204, paid.text
    return me, order


def _refund_then_finish(api, world, order_id: int) -> None:
    made = api.post(f"{A}/orders/{order_id}/actions/refund", json={"amount_fen": 3_000, "reason": "缺货"},
                    headers=world["kefu"])
    assert made.status_code == 200, made.text
    rid, no = rows("SELECT id, out_refund_no FROM refund WHERE order_id = :o", o=order_id)[0]
    finish_refund(sims.simulators().wxpay, no, deliver=False)
    refunds.sync_refund_now(refund_id=rid)


def test_refund_before_shipping_gives_stock_back_once(api, world) -> None:
    _me, order = _paid_mug_order(api, "13812340103")
    assert scalar("SELECT stock FROM goods WHERE code = 'mug'") == 1
    # two customer-service agents refund at once: one refund is recorded
    answers = race(2, lambda i: api.post(f"{A}/orders/{order['id']}/actions/refund",
                                         json={"amount_fen": 3_000, "reason": f"缺货 {i}"}, headers=world["kefu"]))
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    rid, no = rows("SELECT id, out_refund_no FROM refund WHERE order_id = :o", o=order["id"])[0]
    finish_refund(sims.simulators().wxpay, no, deliver=False)
    # its result applied by several syncs (and the notify) at once: the stock comes back once
    race(3, lambda i: refunds.sync_refund_now(refund_id=rid))
    assert scalar("SELECT status FROM service_order WHERE id = :i", i=order["id"]) == "refunded"
    assert scalar("SELECT stock FROM goods WHERE code = 'mug'") == 2
    refunds.sync_refund_now(refund_id=rid)
    assert scalar("SELECT stock FROM goods WHERE code = 'mug'") == 2
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'goods.stock_returned'") == 1


def test_after_sales_cancel_before_shipping_gives_stock_back(api, world) -> None:
    _me, order = _paid_mug_order(api, "13812340104")
    moved = api.post(f"{A}/orders/{order['id']}/actions/after_sales", json={"reason": "用户要求取消"},
                     headers=world["kefu"])
    assert moved.status_code == 200, moved.text
    _refund_then_finish(api, world, order["id"])
    assert scalar("SELECT status FROM service_order WHERE id = :i", i=order["id"]) == "refunded"
    assert scalar("SELECT stock FROM goods WHERE code = 'mug'") == 2


def test_refund_after_shipping_gives_no_stock_back(api, world) -> None:
    _me, order = _paid_mug_order(api, "13812340105")
    shipped = api.post(f"{A}/orders/{order['id']}/actions/ship", json={"carrier": "顺丰速运", "tracking_no": "SF77"},
                       headers=world["sup2"])
    assert shipped.status_code == 200, shipped.text
    _refund_then_finish(api, world, order["id"])
    assert scalar("SELECT status FROM service_order WHERE id = :i", i=order["id"]) == "refunded"
    assert scalar("SELECT stock FROM goods WHERE code = 'mug'") == 1  # the mug left with the carrier
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'goods.stock_returned'") == 0
