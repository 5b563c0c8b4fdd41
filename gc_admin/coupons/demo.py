"""Coupon demo data (SPEC.md §10), loaded by ``python -m gc_admin demo`` into an empty database.

Only through service functions, as a clerk or a partner would: the programme 广西人保车主权益, its
products, a few thousand redemption codes imported from in-memory CSV files (most valid > 60 days,
some 30–60 days, some under 30 days so the import discards them as 弃票, plus a few bad rows), batches
issued to the demo users' phones and to some phones that have not signed up yet, some codes
revealed by their owners, and some coupons that expired unused (issued "in the past" with the
service's ``now`` argument, then the expiry run). Everything is fictitious.
"""

from __future__ import annotations

import datetime as dt
import random

from sqlmodel import Session

from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.core.principal import Actor
from gc_admin.coupons import service
from gc_admin.users.service import list_users

DEMO_STAFF = Actor("staff", None, "陈静（演示）")
DEMO_PARTNER = Actor("partner", "picc_gx", "人保之友俱乐部（演示）")
PROGRAMME = "picc_gx"
TPP_APP_ID = "wxtaopiaopiaodemo0"  # fictitious: wx + 16 letters/digits

_TPP = {"kind": "redemption_code", "supplier": "淘票票", "programme_code": PROGRAMME, "jump_app_id": TPP_APP_ID,
        "jump_path": "pages/index"}
PRODUCTS: tuple[dict, ...] = (
    {"code": "tpp_tongdui_50", "name": "淘票票通兑券 50 元", "face_fen": 5000, "cost_fen": 4200, **_TPP},
    {"code": "tpp_tongdui_60", "name": "淘票票通兑券 60 元", "face_fen": 6000, "cost_fen": 5000, **_TPP},
    {"code": "tpp_tongdui_70", "name": "淘票票通兑券 70 元", "face_fen": 7000, "cost_fen": 5800, **_TPP},
    {"code": "tpp_daijin_5", "name": "淘票票代金券 5 元", "face_fen": 500, "cost_fen": 430, **_TPP},
    {"code": "tpp_daijin_10", "name": "淘票票代金券 10 元", "face_fen": 1000, "cost_fen": 860, **_TPP},
    {"code": "tpp_daijin_15", "name": "淘票票代金券 15 元", "face_fen": 1500, "cost_fen": 1290, **_TPP},
    {"code": "tpp_daijin_30", "name": "淘票票代金券 30 元", "face_fen": 3000, "cost_fen": 2580, **_TPP},
    {"code": "flower_30", "name": "鲜花立减 30 元", "kind": "service_discount", "face_fen": 3000, "cost_fen": 3000,
     "supplier": "美团鲜花", "programme_code": PROGRAMME, "validity_days": 180},
    {"code": "fuel_cashback_50", "name": "加油返现 50 元", "kind": "cashback", "category": "fuel", "face_fen": 5000,
     "cost_fen": 5000, "programme_code": PROGRAMME, "validity_days": 90, "price_fen": 4500, "on_sale": True,
     "per_user_limit": 2},
    {"code": "ev_cashback_30", "name": "充电返现 30 元", "kind": "cashback", "category": "ev_charging", "face_fen": 3000,
     "cost_fen": 3000, "programme_code": PROGRAMME, "validity_days": 90, "price_fen": 2700, "on_sale": True},
    {"code": "wash_cashback_20", "name": "洗车返现 20 元", "kind": "cashback", "category": "car_wash", "face_fen": 2000,
     "cost_fen": 2000, "programme_code": PROGRAMME, "validity_days": 90, "price_fen": 1800, "on_sale": True},
    {"code": "maint_cashback_100", "name": "保养返现 100 元", "kind": "cashback", "category": "maintenance",
     "face_fen": 10000, "cost_fen": 10000, "programme_code": PROGRAMME, "validity_days": 180, "price_fen": 9000, "on_sale": True},
    {"code": "paint_cashback_80", "name": "喷漆返现 80 元", "kind": "cashback", "category": "paint", "face_fen": 8000,
     "cost_fen": 8000, "programme_code": PROGRAMME, "validity_days": 180, "price_fen": 7200, "on_sale": True},
    {"code": "aroma_exchange", "name": "车载香薰 兑换券", "kind": "goods_exchange", "face_fen": 12800, "cost_fen": 6500,
     "supplier": "桂林香氛工坊", "programme_code": PROGRAMME, "validity_days": 120},
    {"code": "tpp_daijin_10_platform", "name": "淘票票代金券 10 元（平台促销）", "face_fen": 1000, "cost_fen": 860,
     "funded_by": "platform", "price_fen": 900, "on_sale": True, "per_user_limit": 5,
     **{k: v for k, v in _TPP.items() if k != "programme_code"}},
)

# product -> codes in stock to import (today), spread over expiries
CODE_STOCK = {"tpp_tongdui_50": 800, "tpp_tongdui_60": 500, "tpp_tongdui_70": 300, "tpp_daijin_5": 600,
              "tpp_daijin_10": 600, "tpp_daijin_15": 400, "tpp_daijin_30": 300, "tpp_daijin_10_platform": 200}


def _day(now: dt.datetime, days: int) -> str:
    return (now.astimezone(SHANGHAI) + dt.timedelta(days=days)).date().isoformat()


def _codes_csv(rng: random.Random, prefix: str, n: int, now: dt.datetime, *, bad_rows: bool = False,
               days: tuple[int, int] | None = None) -> bytes:
    """``券码,有效期,批次号``: 65 % valid > 60 days, 25 % 30–60 days, 10 % under 30 days (discarded at import)."""
    lines = ["券码,有效期,批次号"]
    for i in range(n):
        code = f"{prefix}{rng.randrange(16**10):010X}{i:05d}"
        if days is not None:
            d = rng.randint(*days)
        else:
            roll = rng.random()
            d = rng.randint(65, 92) if roll < 0.65 else rng.randint(35, 58) if roll < 0.9 else rng.randint(5, 26)
        lines.append(f"{code},{_day(now, d)},{prefix}-{now.astimezone(SHANGHAI):%Y%m}")
    if bad_rows:  # what real vendor files contain now and then
        lines += [f",{_day(now, 80)},", f"{prefix}BADDATE0001,2026/13/45,", lines[1]]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _phones(session: Session) -> list:
    users, offset = [], 0
    while True:
        page = list_users(session, offset=offset, limit=200)
        users += [u for u in page.rows if u.phone]
        offset += 200
        if offset >= page.total:
            return users


def _issue(session: Session, *, batch_id: str, product: str, phones: list[str], now: dt.datetime | None = None,
           per_phone: int = 1, partner: bool = False) -> service.IssuanceResult:
    return service.issue_batch(session, actor=DEMO_PARTNER if partner else DEMO_STAFF,
                               source="partner" if partner else "staff", batch_id=batch_id, product_code=product,
                               phones=phones, per_phone=per_phone, programme_code=PROGRAMME if partner else None, now=now)


def load(session: Session, rng: random.Random) -> None:
    """Programme, products, code stock, issued / revealed / expired coupons."""
    now = utcnow()
    service.create_programme(session, actor=DEMO_STAFF, code=PROGRAMME, name="广西人保车主权益",
                             insurer="中国人民财产保险股份有限公司广西分公司")
    for spec in PRODUCTS:
        service.create_product(session, actor=DEMO_STAFF, **spec)

    # An old delivery of 50-yuan vouchers, issued three months ago: those codes have expired by now.
    past = now - dt.timedelta(days=100)
    service.import_codes(session, actor=DEMO_STAFF, product_code="tpp_tongdui_50", now=past,
                         data=_codes_csv(rng, "TPA", 60, past, days=(95, 95)), filename="淘票票通兑50-首批.csv")
    # Today's stock, one file per product (the first with a few bad rows, as vendors' files have).
    for i, (product, n) in enumerate(CODE_STOCK.items()):
        prefix = f"TP{i}"
        service.import_codes(session, actor=DEMO_STAFF, product_code=product, filename=f"{product}-{_day(now, 0)}.csv",
                             data=_codes_csv(rng, prefix, n, now, bad_rows=i == 0))

    users = _phones(session)
    rng.shuffle(users)
    phones = [u.phone for u in users]
    waiting = sorted({f"1{rng.choice('3578')}{rng.randrange(10**9):09d}" for _ in range(25)} - set(phones))
    ymd = f"{now.astimezone(SHANGHAI):%Y%m%d}"

    # Three months ago: 50 of the old vouchers and 40 car-wash cashbacks; never used, so they expire.
    _issue(session, batch_id=f"B{past.astimezone(SHANGHAI):%Y%m%d}-OLD1", product="tpp_tongdui_50", phones=phones[:50],
           now=past + dt.timedelta(days=5))
    _issue(session, batch_id=f"B{past.astimezone(SHANGHAI):%Y%m%d}-OLD2", product="wash_cashback_20",
           phones=phones[50:90], now=past)

    # Recent batches (some rows invalid or repeated, as pasted lists are).
    movie = _issue(session, batch_id=f"B{ymd}-DM01", product="tpp_tongdui_50",
                   phones=phones[:140] + waiting[:10] + ["1381234567", phones[3]])
    _issue(session, batch_id=f"B{ymd}-DM02", product="tpp_daijin_10", phones=phones[100:220] + waiting[10:20])
    _issue(session, batch_id=f"B{ymd}-DM03", product="tpp_tongdui_70", phones=phones[200:260])
    _issue(session, batch_id=f"B{ymd}-DM04", product="fuel_cashback_50", phones=phones[:120], per_phone=2)
    _issue(session, batch_id=f"B{ymd}-DM05", product="ev_cashback_30", phones=phones[120:200])
    _issue(session, batch_id=f"B{ymd}-DM06", product="aroma_exchange", phones=phones[40:80] + waiting[20:])
    _issue(session, batch_id=f"B{ymd}-DM07", product="maint_cashback_100", phones=phones[150:190])
    _issue(session, batch_id=f"PICC-{ymd}-001", product="flower_30", phones=phones[60:260], partner=True)

    # Owners reveal some codes ("去使用"): about a third of the recent movie vouchers held by registered users.
    by_phone = {u.phone: u for u in users}
    for row in movie.rows():
        user = by_phone.get(row["phone"])
        if user is not None and row["status"] == "issued" and rng.random() < 0.35:
            for coupon_id in row.get("coupon_ids", []):
                service.use_coupon(session, user=user, coupon_id=coupon_id)

    # The daily job: what was issued three months ago and never used is now expired.
    service.run_expiry(session, actor=DEMO_STAFF, now=now)
