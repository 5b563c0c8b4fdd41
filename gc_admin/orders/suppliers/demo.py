"""Demo goods (实物): the demo supplier 桂林香氛工坊 (its account ``supplier`` is linked to it), two items
(the car diffuser redeemed by the ``aroma_exchange`` voucher) and goods orders waiting to ship, shipped
with a tracking no., confirmed and cancelled. Rows are written directly, as orders/demo.py does."""

from __future__ import annotations

import datetime as dt
import random

from sqlmodel import Session, col, select

from gc_admin.accounts.models import StaffUser
from gc_admin.core.clock import SHANGHAI, iso, utcnow
from gc_admin.core.principal import Actor, SYSTEM
from gc_admin.orders.models import OrderEvent, ServiceOrder
from gc_admin.orders.suppliers import service as suppliers
from gc_admin.users.models import MpUser

DEMO = Actor("system", None, "演示数据")
SUPPLIER = ("guilin_aroma", "桂林香氛工坊")
GOODS = (("aroma_car", "车载香薰", 12_800, 200, ["aroma_exchange"]), ("aroma_refill", "香薰补充液", 2_500, 500, []))
# (goods, status, minutes since paid)
PLAN = (("aroma_car", "paid", 30), ("aroma_car", "paid", 300), ("aroma_refill", "paid", 90),
        ("aroma_car", "shipped", 2_000), ("aroma_refill", "shipped", 4_000), ("aroma_car", "completed", 12_000),
        ("aroma_refill", "cancelled", 0))
CITIES = (("广西", "南宁市", "青秀区"), ("广西", "桂林市", "七星区"), ("广西", "柳州市", "城中区"))


def load(session: Session, rng: random.Random) -> None:
    now = utcnow()
    code, name = SUPPLIER
    suppliers.create_supplier(session, actor=DEMO, code=code, name=name)
    for g, gname, price, stock, exchange in GOODS:
        suppliers.create_goods(session, actor=DEMO, supplier_code=code, code=g, name=gname, price_fen=price,
                               stock=stock, exchange_products=exchange)
    account = session.exec(select(StaffUser.id).where(col(StaffUser.role) == "supplier")).first()
    if account is not None:
        suppliers.link_staff(session, actor=DEMO, staff_id=account, supplier_code=code)
    users = session.exec(select(MpUser).where(col(MpUser.phone).is_not(None)).order_by(col(MpUser.id).desc())
                         .limit(len(PLAN))).all()
    prices = {g[0]: (g[1], g[2]) for g in GOODS}
    clerk = Actor("staff", None, name)
    for i, ((g, status, minutes), user) in enumerate(zip(PLAN, users, strict=False)):
        gname, price = prices[g]
        paid_at = now - dt.timedelta(minutes=minutes) if status != "cancelled" else None
        created = (paid_at or now - dt.timedelta(minutes=50)) - dt.timedelta(minutes=1)
        province, city, district = CITIES[i % len(CITIES)]
        fulfilment = {}
        if status in ("shipped", "completed"):
            fulfilment = {"carrier": "顺丰速运", "tracking_no": f"SF{1_300_000_000 + i:010d}",
                          "shipped_at": iso((paid_at or now) + dt.timedelta(hours=20))}
        order = ServiceOrder(
            order_no=f"GC{created.astimezone(SHANGHAI):%Y%m%d}{8_000_000_000 + i:010d}", type="goods", status=status,
            user_id=user.id or 0, list_fen=price, payable_fen=price, paid_fen=price if paid_at else 0,
            pricing={"list_fen": price, "steps": [], "payable_fen": price},
            details={"lines": [{"code": g, "name": gname, "quantity": 1, "unit_fen": price, "amount_fen": price}],
                     "goods_code": g, "quantity": 1, "supplier_code": code,
                     "address": {"name": "车主", "phone": user.phone, "province": province, "city": city,
                                 "district": district, "detail": f"民族大道 {rng.randrange(1, 300)} 号"}},
            fulfilment=fulfilment, supplier_code=code, city=city.removesuffix("市"),
            pay_expires_at=created + dt.timedelta(minutes=30), created_at=created, updated_at=paid_at or created,
            paid_at=paid_at, completed_at=now - dt.timedelta(days=1) if status == "completed" else None,
            cancelled_at=created + dt.timedelta(minutes=30) if status == "cancelled" else None)
        session.add(order)
        session.flush()
        steps = [("create", None, "created", Actor("user", str(user.id), "用户"))]
        if paid_at:
            steps.append(("pay", "created", "paid", SYSTEM))
        if status in ("shipped", "completed"):
            steps.append(("ship", "paid", "shipped", clerk))
        if status == "completed":
            steps.append(("confirm", "shipped", "completed", Actor("user", str(user.id), "用户")))
        if status == "cancelled":
            steps.append(("cancel", "created", "cancelled", SYSTEM))
        at = created
        for action, src, dst, actor in steps:
            at = min(at + dt.timedelta(minutes=1 if action != "ship" else 1_200), now)
            session.add(OrderEvent(order_id=order.id or 0, action=action, from_status=src, to_status=dst,
                                   actor_type=actor.type, actor_id=actor.id, actor_name=actor.name, at=at,
                                   reason=f"{fulfilment.get('carrier', '')} {fulfilment.get('tracking_no', '')}"
                                   if action == "ship" else ""))
    session.flush()
