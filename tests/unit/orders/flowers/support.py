"""The flower shop of the flower tests: bouquets with photos made by the admin API, a 鲜花立减 30 coupon,
a buyer signed in with WeChat, and the body of an order for tomorrow 10:00 in 南宁."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from PIL import Image

from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.coupons import service as coupons
from gc_admin.db import session_scope
from tests.support import SETUP, staff_headers, wechat_user

A = "/api/v1/admin"
M = "/api/v1/mp"
BUYER_PHONE = "13812345678"


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 60), **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG", **save)
    return out.getvalue()


def jpeg(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (250, 200, 0)).save(out, format="JPEG")
    return out.getvalue()


def tomorrow_at(hour: int) -> dt.datetime:
    day = utcnow().astimezone(SHANGHAI).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=SHANGHAI)


def add_bouquet(api, headers, code: str = "Rose-11", *, price_fen: int = 15_000, name: str = "红玫瑰 11 枝",
                photo: bytes | None = None, **extra: Any) -> dict[str, Any]:
    made = api.post(f"{A}/bouquets", json={"code": code, "name": name, "price_fen": price_fen, **extra},
                    headers=headers)
    assert made.status_code == 201, made.text
    up = api.post(f"{A}/bouquets/{code}/image", files={"file": ("p.png", photo or png(), "image/png")},
                  headers=headers)
    assert up.status_code == 200, up.text
    return up.json()


def flower_shop(api, make_staff) -> dict[str, dict[str, str]]:
    """Staff (mgr: manager, chen: clerk, liu: service), two bouquets with photos, and the flower_30 coupon."""
    make_staff("mgr", "manager")
    make_staff("chen", "clerk", phone="13600000001")
    make_staff("liu", "service")
    staff = {u: staff_headers(api, u) for u in ("mgr", "chen", "liu")}
    add_bouquet(api, staff["mgr"])
    add_bouquet(api, staff["mgr"], "lily-9", price_fen=19_900, name="百合 9 枝", sort=2)
    with session_scope() as s:
        coupons.create_product(s, actor=SETUP, code="flower_30", name="鲜花立减 30 元", kind="service_discount",
                               face_fen=3000, cost_fen=3000, funded_by="insurer")
    return staff


def give_flower_coupon(api, me: dict[str, str], phone: str = BUYER_PHONE) -> int:
    with session_scope() as s:
        coupons.issue_batch(s, actor=SETUP, source="staff", batch_id=f"FL-{phone}", product_code="flower_30",
                            phones=[phone])
    mine = api.get(f"{M}/coupons", headers=me).json()["items"]
    return next(c["id"] for c in mine if c["product"]["code"] == "flower_30")


def buyer(api, openid: str = "oFlower000000000000000001", phone: str = BUYER_PHONE) -> dict[str, str]:
    return wechat_user(api, openid, phone)


def flower_body(*, slot: dt.datetime | None = None, city: str = "南宁市", bouquet: str = "Rose-11",
                **extra: Any) -> dict[str, Any]:
    return {"type": "flower", "flower": {
        "bouquet_code": bouquet, "recipient_name": "张晓梅", "recipient_phone": "13987654321", "city": city,
        "district": "青秀区", "address": "民族大道 100 号 5 栋 1201", "greeting": "生日快乐！",
        "slot_start": (slot or tomorrow_at(10)).isoformat()}, **extra}


def pay(api, order: dict) -> None:
    """Pay ``order`` at the WeChat Pay simulator; its notify must reach the app and be taken (204)."""
    prepay_id = order["payment"]["package"].removeprefix("prepay_id=")
    paid = api.post("/sim/wechatpay/_pay", json={"prepay_id": prepay_id})
    assert paid.status_code == 200 and paid.json()["notify_status"] == 204, paid.text
