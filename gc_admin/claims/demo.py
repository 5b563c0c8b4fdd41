"""Demo claims (SPEC.md §10): claims waiting for review with generated receipt images — clean ones,
ones whose receipt disagrees with the claim, and one duplicate of an earlier receipt. Runs inside the
demo loader's unit of work (after the coupons loader issued the cashback coupons it reserves); OCR of
the images is left to the ``claims.ocr`` job, as for any real submission."""

from __future__ import annotations

import datetime as dt
import random

from sqlmodel import Session, col, select

from gc_admin.claims import images, receipts, service
from gc_admin.claims.checks import refresh_flags
from gc_admin.claims.storage import get_storage
from gc_admin.config import get_settings
from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.coupons.models import Coupon, Product
from gc_admin.users.models import MpUser

# (category, station, amount paid ¥, receipt kwargs, what the demo shows)
CLAIMS = (
    ("fuel", "中国石化南宁民族大道加油站", "128.00", {}, "clean"),
    ("fuel", "中国石油桂林七星加油站", "300.00", {"slip": True}, "clean"),
    ("ev_charging", "特来电", "66.50", {"alipay": True}, "clean"),
    ("fuel", "中国石化柳州东环加油站", "200.00", {"amount": "128.00"}, "mismatch: amount"),
    ("fuel", "中国石化南宁江南加油站", "150.00", {"merchant": "南宁老友粉餐饮店"}, "mismatch: merchant"),
    ("fuel", "中国石化南宁民族大道加油站", "128.00", {"same_as": 0}, "duplicate of the first"),
)


def _receipt(category: str, station: str, amount: str, kw: dict, i: int, when: dt.datetime) -> bytes:
    paid = when.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    if kw.get("slip"):
        return receipts.station_slip(station=station, amount=amount, paid_at=paid[:16].replace("-", "/"),
                                     serial=f"SN{when:%Y%m%d%H%M}{i:03d}")
    if kw.get("alipay"):
        return receipts.alipay_receipt(merchant="特来电新能源南宁站", amount=amount, paid_at=paid,
                                       txn=f"{when:%Y%m%d}2200141{i:013d}")
    return receipts.wechat_receipt(merchant=kw.get("merchant", station), amount=kw.get("amount", amount), paid_at=paid,
                                   txn=f"42000{i:05d}{when:%Y%m%d}{i:010d}", mch_no=f"GX{when:%Y%m%d%H%M%S}{i:03d}")


def load(session: Session, rng: random.Random) -> None:
    now = utcnow()
    storage = get_storage()
    c = get_settings().claims
    shots: list[bytes] = []
    for i, (category, station, amount, kw, _) in enumerate(CLAIMS):
        row = session.exec(
            select(MpUser, Coupon.id).join(Coupon, col(Coupon.phone) == col(MpUser.phone))
            .join(Product, col(Product.id) == col(Coupon.product_id))
            .where(col(Coupon.status) == "available", col(Product.kind) == "cashback", col(Product.category) == category,
                   col(Coupon.expires_at) > now)
            .order_by(col(Coupon.id)).offset(rng.randrange(5))).first()
        if row is None:
            continue
        user = row[0]
        when = now - dt.timedelta(hours=rng.randrange(2, 40), minutes=rng.randrange(60))
        data = shots[kw["same_as"]] if "same_as" in kw else _receipt(category, station, amount, kw, i, when)
        shots.append(data)
        img = images.check_image(data, n=1, max_bytes=c.image_max_bytes, max_pixels=c.image_max_pixels)
        key = f"demo/{i:02d}-{img.sha256[:16]}.{img.ext}"
        storage.put(key, img.data, content_type=img.content_type)
        yuan, _, fen = amount.partition(".")
        form = service.ClaimForm(category=category, amount_paid_fen=int(yuan) * 100 + int(fen), station=station,
                                 payout_method="alipay", client_ref=f"demo-{i}", alipay_account=user.phone or "",
                                 real_name="张三", contact_phone=user.phone or "")
        form = service.validate_form(session, form)
        stored = service.StoredImage(key, img.content_type, len(img.data), img.sha256, img.width, img.height)
        claim, _ = service.submit_claim(session, user=user, form=form, images=[stored], now=when + dt.timedelta(hours=1))
        refresh_flags(session, claim=claim)
