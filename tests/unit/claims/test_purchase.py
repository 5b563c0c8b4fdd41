"""Cashback coupons of every category are bought through the ordinary purchase flow (WeChat Pay
simulator) and then back a claim."""

from __future__ import annotations

import pytest

from gc_admin.coupons import service as coupons
from gc_admin.db import session_scope
from tests.support import SETUP, wechat_user
from tests.unit.claims.support import PRODUCTS, post_claim

STATIONS = {"fuel": "中国石化南宁民族大道加油站", "ev_charging": "特来电", "car_wash": "南宁车之美洗车店",
            "maintenance": "南宁途虎养车工场店", "paint": "南宁钣喷中心"}


@pytest.mark.parametrize("category", list(PRODUCTS))
def test_a_bought_cashback_coupon_backs_a_claim(api, claims_env, category):
    code, face = PRODUCTS[category]
    with session_scope() as s:
        coupons.update_product(s, actor=SETUP, code=code, on_sale=True, price_fen=face - 500, per_user_limit=2)
    me = wechat_user(api, "oClaimBuyer00000000000001", "13812345678")
    catalog = api.get("/api/v1/mp/catalog", headers=me).json()
    assert code in [p["code"] for p in catalog["coupons"]]
    order = api.post("/api/v1/mp/orders", json={"type": "coupon_purchase", "product_code": code, "quantity": 1},
                     headers=me)
    assert order.status_code == 201, order.text
    prepay_id = order.json()["payment"]["package"].removeprefix("prepay_id=")
    assert api.post("/sim/wechatpay/_pay", json={"prepay_id": prepay_id}).json()["notify_status"] == 204
    (coupon,) = api.get("/api/v1/mp/coupons?status=available", headers=me).json()["items"]
    assert coupon["product"]["kind"] == "cashback"
    items = '["oil"]' if category == "maintenance" else ""
    claim = post_claim(api, me, category=category, station=STATIONS[category], items=items, client_ref=f"buy-{category}")
    assert claim.status_code == 201, claim.text
    assert claim.json()["status"] == "pending_review" and claim.json()["coupon_id"] == coupon["id"]
    assert claim.json()["payout"]["amount_fen"] == face
