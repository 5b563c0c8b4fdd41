"""Claims test support: rendered receipts (Pillow + the WenQuanYi CJK font), cashback products for the
five categories, coupons, and a multipart claim as the mini-program sends it."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from tests.support import SETUP

FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
PRODUCTS = {  # category -> (code, face_fen)
    "fuel": ("t_fuel50", 5000), "ev_charging": ("t_ev30", 3000), "car_wash": ("t_wash20", 2000),
    "maintenance": ("t_maint100", 10000), "paint": ("t_paint80", 8000),
}


def luhn_card(prefix: str = "622202020011223344") -> str:
    from gc_admin.claims.service import luhn_ok

    return next(prefix + str(d) for d in range(10) if luhn_ok(prefix + str(d)))


def wechat_receipt(*, merchant: str = "中国石化南宁民族大道加油站", amount: str = "128.00",
                   paid_at: str = "2026-11-28 10:15:32", txn: str = "4200002345202611281234567890",
                   mch_no: str = "GX20261128101532001", fmt: str = "PNG", size: tuple[int, int] = (720, 900),
                   exif: bytes | None = None, seed_text: str = "") -> bytes:
    """A WeChat Pay 账单详情 screen as a phone screenshot."""
    lines = [(merchant, 30), (f"-{amount}", 56), ("当前状态  支付成功", 28), (f"支付时间  {paid_at}", 28),
             ("商品  加油费", 28), (f"商户全称  {merchant}", 28), ("支付方式  零钱", 28), (f"交易单号  {txn}", 26),
             (f"商户单号  {mch_no}", 26)]
    if seed_text:
        lines.append((seed_text, 26))
    return render(lines, fmt=fmt, size=size, exif=exif)


def alipay_receipt(*, merchant: str = "特来电新能源南宁站", amount: str = "66.50", paid_at: str = "2026-11-27 21:03:11",
                   txn: str = "2026112722001412345678901234", fmt: str = "PNG") -> bytes:
    lines = [(merchant, 30), (f"-{amount}", 56), ("交易成功", 28), (f"支付时间  {paid_at}", 28),
             ("付款方式  余额宝", 28), (f"收款方全称  {merchant}", 28), (f"订单号  {txn}", 26),
             ("商家订单号  TLD7788990011", 26), ("支付宝", 24)]
    return render(lines, fmt=fmt)


def station_slip(*, station: str = "中国石油广西桂林七星加油站", amount: str = "300.00",
                 paid_at: str = "2026/11/26 08:40", serial: str = "SN20261126084000123") -> bytes:
    lines = [(station, 30), ("油品  92#汽油  40.00升", 26), (f"实付金额  {amount}", 30), (f"交易时间  {paid_at}", 26),
             (f"流水号  {serial}", 26), ("谢谢惠顾", 26)]
    return render(lines, size=(640, 640))


def render(lines: list[tuple[str, int]], *, fmt: str = "PNG", size: tuple[int, int] = (720, 900),
           exif: bytes | None = None) -> bytes:
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    y = 36
    for text, px in lines:
        d.text((40, y), text, fill="black", font=ImageFont.truetype(FONT, px))
        y += px + 48
    out = io.BytesIO()
    kw: dict[str, Any] = {"exif": exif} if exif else {}
    img.save(out, format=fmt, **kw)
    return out.getvalue()


def gps_exif() -> bytes:
    ex = Image.Exif()
    ex[0x010F] = "TestPhoneMaker"  # Make
    ex[0x0132] = "2026:11:28 10:15:32"  # DateTime
    ex[0x8825] = {1: "N", 2: (22.0, 49.0, 0.0)}  # GPS IFD: latitude
    return ex.tobytes()


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
