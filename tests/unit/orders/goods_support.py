"""The goods world shared by the goods / shipment tests: two suppliers with their accounts, their goods,
an exchange-voucher product that redeems the aroma diffuser."""

from __future__ import annotations

from gc_admin.accounts.models import StaffUser
from gc_admin.coupons import service as coupons
from gc_admin.db import session_scope
from gc_admin.orders.suppliers import service as suppliers
from sqlmodel import col, select
from tests.support import SETUP, staff_headers, wechat_user
from tests.unit.coupons.support import STAFF, issue, setup_catalogue

ADDRESS = {"name": "张三", "phone": "13812345678", "province": "广西", "city": "南宁市", "district": "青秀区",
           "detail": "民族大道 100 号"}


def goods_world(make_staff) -> None:
    setup_catalogue()
    with session_scope() as s:
        coupons.create_product(s, actor=STAFF, code="aroma_x", name="车载香薰兑换券", kind="goods_exchange",
                               face_fen=12_800, programme_code="picc_gx")
        suppliers.create_supplier(s, actor=SETUP, code="xiangfen", name="桂林香氛工坊")
        suppliers.create_supplier(s, actor=SETUP, code="taoci", name="钦州坭兴陶")
        suppliers.create_goods(s, actor=SETUP, supplier_code="xiangfen", code="aroma1", name="车载香薰",
                               price_fen=12_800, stock=5, exchange_products=["aroma_x"])
        suppliers.create_goods(s, actor=SETUP, supplier_code="taoci", code="mug", name="坭兴陶杯", price_fen=3_000,
                               stock=2)
    for username, code in (("sup", "xiangfen"), ("sup2", "taoci")):
        make_staff(username, "supplier")
        with session_scope() as s:
            sid = s.exec(select(StaffUser.id).where(col(StaffUser.username) == username)).one()
            suppliers.link_staff(s, actor=SETUP, staff_id=sid, supplier_code=code)
    for username, role in (("chen", "clerk"), ("kefu", "service")):
        make_staff(username, role)


def give_voucher(phone: str) -> None:
    result = issue([phone], batch_id=f"aroma-{phone}", product="aroma_x")
    assert result.issued == 1, result


def goods_body(code: str = "aroma1", **extra) -> dict:
    return {"type": "goods", "goods": {"goods_code": code, "quantity": 1, "address": ADDRESS}, **extra}


def paid_goods_order(api, phone: str, code: str, *, openid_prefix: str = "oGoods") -> int:
    """A mini-program user of ``phone`` orders one of the goods ``code`` and pays (the WeChat Pay simulator): its id."""
    from tests.support import wechat_user

    me = wechat_user(api, f"{openid_prefix}{phone}", phone)
    order = api.post("/api/v1/mp/orders", json=goods_body(code), headers=me).json()
    paid = api.post("/sim/wechatpay/_pay", json={"prepay_id": order["payment"]["package"].removeprefix("prepay_id=")})
    assert paid.status_code == 200, paid.text
    return order["id"]


def shipping_world(api, make_staff) -> tuple[dict[str, dict], list[dict], dict]:
    """The goods world with three paid orders of xiangfen's aroma diffuser (each redeemed with a voucher) and an
    unpaid one of taoci's mug; the sign-in headers of ``sup`` (xiangfen), ``sup2`` (taoci) and ``chen`` (clerk)."""
    goods_world(make_staff)
    heads = {u: staff_headers(api, u) for u in ("sup", "sup2", "chen")}
    made = []
    for i in range(3):
        phone = f"1381234560{i}"
        me = wechat_user(api, f"oShip000000000000000000{i:03d}", phone)
        give_voucher(phone)
        vid = next(c["id"] for c in api.get("/api/v1/mp/coupons", headers=me).json()["items"])
        order = api.post("/api/v1/mp/orders", json=goods_body(exchange_coupon_id=vid), headers=me).json()
        assert order["status"] == "paid", order
        made.append(order)
    me = wechat_user(api, "oShip000000000000000000999", "13812345699")
    mug = api.post("/api/v1/mp/orders", json=goods_body("mug"), headers=me).json()  # taoci's, unpaid
    return heads, made, mug


def ship_sheet(rows: list[tuple[str, str, str]]) -> bytes:
    """A shipment sheet (订单号, 快递公司, 快递单号) of these rows."""
    return ("订单号,快递公司,快递单号\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)).encode()
