"""Claims test support: rendered receipts (Pillow + the WenQuanYi CJK font), cashback products for the
five categories, coupons, and a multipart claim as the mini-program sends it."""

from __future__ import annotations

from typing import Any


from gc_admin.claims.receipts import (  # noqa: F401  (re-exported for the tests)
    alipay_receipt,
    gps_exif,
    luhn_card,
    render,
    station_slip,
    wechat_receipt,
)

from tests.support import SETUP

PRODUCTS = {  # category -> (code, face_fen)
    "fuel": ("t_fuel50", 5000), "ev_charging": ("t_ev30", 3000), "car_wash": ("t_wash20", 2000),
    "maintenance": ("t_maint100", 10000), "paint": ("t_paint80", 8000),
}


def make_products() -> None:
    from gc_admin.coupons import service
    from gc_admin.db import session_scope

    with session_scope() as s:
        for category, (code, face) in PRODUCTS.items():
            service.create_product(s, actor=SETUP, code=code, name=f"{category} 返现", kind="cashback", face_fen=face,
                                   cost_fen=face, category=category, funded_by="platform")


def give_coupons(phone: str, category: str = "fuel", n: int = 1, batch: str | None = None) -> list[int]:
    from gc_admin.coupons import service
    from gc_admin.db import session_scope

    from tests.support import rows

    with session_scope() as s:
        service.issue_batch(s, actor=SETUP, source="staff", batch_id=batch or f"B-{phone}-{category}-{n}",
                            product_code=PRODUCTS[category][0], phones=[phone], per_phone=n)
    return [r[0] for r in rows("SELECT id FROM coupon WHERE phone = :p ORDER BY id", p=phone)][-n:]


def claim_form(**over: Any) -> dict[str, str]:
    form = {"category": "fuel", "amount_paid_fen": "12800", "station": "中国石化南宁民族大道加油站", "payout_method": "alipay",
            "alipay_account": "13812345678", "real_name": "张三", "contact_phone": "13812345678",
            "client_ref": "c-1"}
    form.update({k: str(v) for k, v in over.items()})
    return form


def post_claim(api: Any, headers: dict[str, str], *, images: list[bytes] | None = None, names: list[str] | None = None,
               **over: Any) -> Any:
    images = [wechat_receipt()] if images is None else images
    files = [("images", ((names or [])[i] if names else f"r{i}.png", data, "image/png")) for i, data in enumerate(images)]
    return api.post("/api/v1/mp/claims", data=claim_form(**over), files=files, headers=headers)


CARD = luhn_card()  # a card number whose check digit is right


def staff_world(make_staff) -> None:
    """Reviewers (two clerks, a manager) and roles that may not review."""
    for name, role in [("chen", "clerk"), ("liu", "clerk"), ("mgr", "manager"), ("kefu", "service"),
                       ("picc", "insurer"), ("sup", "supplier")]:
        make_staff(name, role, name={"chen": "陈内勤", "liu": "李内勤", "mgr": "王经理"}.get(name, name))


def filed_claim(api: Any, phone: str = "13812345678", category: str = "fuel", **over: Any) -> dict:
    """A user with a coupon of ``category`` files a claim; returns its body."""
    give_coupons(phone, category, batch=f"B-{phone}-{category}-{over.get('client_ref', 'c-1')}")
    resp = post_claim(api, user_headers(api, phone), category=category, **over)
    assert resp.status_code == 201, resp.text
    return resp.json()


def user_headers(api: Any, phone: str) -> dict[str, str]:
    """A signed-in user's headers, signed in once per test client (SMS codes are throttled per phone)."""
    from tests.support import sms_user

    cache = api.__dict__.setdefault("_claims_users", {})
    if phone not in cache:
        cache[phone] = sms_user(api, phone)
    return cache[phone]


def sim_transfers(out_biz_no: str) -> int:
    from gc_admin.integrations import sims
    from gc_admin.integrations.alipay.simulator import transfers_for

    return len(transfers_for(sims.simulators().alipay, out_biz_no))


def all_sim_transfers() -> int:
    from tests.support import scalar

    return scalar("SELECT count(*) FROM sim_alipay_order")
