"""Demo data of 鲜花配送 (SPEC.md §10, additive): the bouquet menu with its pictures (``assets/bouquets/``,
drawn by ``scripts/draw_bouquets.py``, uploaded through the same photo checks as a clerk's upload) and
flower orders in the clerk's states, made through the same flows as real ones.

The demo loads before the server runs, so it cannot reach the WeChat Pay simulator: its flower orders
are paid from the buyers' stored-value cards (储值卡, loaded first), which pays them at once through the
real order flow, with the 鲜花立减 30 coupon on some. They are then walked by the clerk's own actions.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from typing import Any

from sqlmodel import Session, col, select

from gc_admin.config import PROJECT_ROOT
from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.core.errors import DomainError
from gc_admin.core.principal import Actor
from gc_admin.orders.flowers import service
from gc_admin.users.models import MpUser

log = logging.getLogger(__name__)

ASSETS = PROJECT_ROOT / "assets" / "bouquets"
SYSTEM = Actor("system", None, "演示数据")

# code, name, price (fen), description, active
BOUQUETS: tuple[tuple[str, str, int, str, bool], ...] = (
    ("rose-11", "红玫瑰 11 枝", 15_000, "一心一意：11 枝卡罗拉红玫瑰，黑色雾面纸包装", True),
    ("rose-19-pink", "粉玫瑰 19 枝", 19_900, "19 枝戴安娜粉玫瑰，白色韩式包装", True),
    ("champagne-rose", "香槟玫瑰 13 枝", 22_900, "13 枝香槟玫瑰配尤加利叶", True),
    ("lily-6", "香水百合 6 枝", 16_800, "6 枝多头白百合，清新绿色包装", True),
    ("sunflower-3", "向日葵 3 枝", 12_900, "3 枝向日葵配小雏菊，牛皮纸包装", True),
    ("carnation-mix", "康乃馨混搭 12 枝", 9_900, "粉红康乃馨 12 枝，适合送长辈", True),
    ("tulip-10", "郁金香 10 枝", 18_900, "季节性花材，暂时下架", False),
)
# the state each demo order is walked to, in order; (state, with the flower coupon)
ORDERS: tuple[tuple[str, bool], ...] = (
    ("paid", True), ("paid", False), ("paid", True), ("accepted", True), ("accepted", False),
    ("in_fulfilment", True), ("completed", True), ("completed", False), ("after_sales", True),
)
ADDRESSES = (("南宁", "青秀区", "民族大道 136 号华润大厦 A 座 1203"), ("南宁", "西乡塘区", "大学东路 100 号 6 栋"),
             ("柳州", "城中区", "文昌路 8 号 2 单元 501"), ("桂林", "七星区", "漓江路 36 号"),
             ("北海", "海城区", "北部湾中路 2 号"), ("玉林", "玉州区", "人民中路 55 号"))
SHOPS = (("花语小筑（青秀店）", "0771-5551234"), ("柳州花间集", "0772-2881234"), ("桂林漓江花坊", "0773-3391234"))
RECIPIENTS = ("林晓雯", "黄丽娟", "陈思颖", "韦美玲", "覃雅琪", "李婉婷", "蒙佳怡", "梁慧敏", "陆欣然")


def load_bouquets(session: Session) -> None:
    for i, (code, name, price, description, active) in enumerate(BOUQUETS):
        service.create_bouquet(session, actor=SYSTEM, code=code, name=name, price_fen=price, description=description,
                               active=active, sort=(i + 1) * 10)
        picture = ASSETS / f"{code}.png"
        if picture.is_file():
            service.set_image(session, actor=SYSTEM, code=code, data=picture.read_bytes())
        else:  # pragma: no cover - the pictures are committed
            log.warning("demo bouquet %s has no picture at %s", code, picture)


def _body(rng: random.Random, i: int, coupon_id: int | None, now: dt.datetime) -> dict[str, Any]:
    city, district, address = ADDRESSES[i % len(ADDRESSES)]
    day = (now.astimezone(SHANGHAI) + dt.timedelta(days=1 + i % 3)).date()
    slot = dt.datetime.combine(day, dt.time(10 + i % 9), tzinfo=SHANGHAI)
    code = rng.choice([b[0] for b in BOUQUETS if b[4]])
    body: dict[str, Any] = {"type": "flower", "use_stored_value": True, "details": {
        "bouquet_code": code, "recipient_name": RECIPIENTS[i % len(RECIPIENTS)],
        "recipient_phone": f"139{rng.randrange(10**8):08d}", "city": city, "district": district, "address": address,
        "slot_start": slot.isoformat(), "greeting": rng.choice(("生日快乐！", "节日快乐，永远爱你", "", "早日康复"))}}
    if coupon_id:
        body["coupon_id"] = coupon_id
    return body


def _walk(session: Session, *, order_id: int, state: str, clerk: Actor, i: int) -> None:
    """The clerk's moves that bring a paid order to ``state`` (stops one step early if one is refused)."""
    from gc_admin.orders import flows

    shop, phone = SHOPS[i % len(SHOPS)]
    eta = (utcnow() + dt.timedelta(hours=3)).astimezone(SHANGHAI).replace(second=0, microsecond=0)
    steps: list[tuple[str, dict[str, Any], str]] = []
    if state in ("accepted", "in_fulfilment", "completed", "after_sales"):
        steps.append(("accept", {"shop_name": shop, "shop_phone": phone, "eta": eta.isoformat()}, ""))
    if state in ("in_fulfilment", "completed"):
        steps.append(("fulfil", {}, ""))
    if state == "completed":
        steps.append(("complete", {}, ""))
    if state == "after_sales":
        steps.append(("after_sales", {}, "花店无法配送，需联系用户"))
    for action, fields, reason in steps:
        try:
            with session.begin_nested():
                flows.staff_action(session, order_id=order_id, action=action, actor=clerk, reason=reason,
                                   fields=fields)
        except DomainError as exc:
            log.info("demo flower order %s stops before %s: %s", order_id, action, exc.message)
            return


def load_orders(session: Session, rng: random.Random) -> None:
    from gc_admin.orders import flows
    from gc_admin.orders.demokit import give_coupons, staff_actor
    from gc_admin.payments import balances

    now = utcnow()
    users = list(session.exec(select(MpUser).where(col(MpUser.phone).is_not(None)).order_by(col(MpUser.id).desc())
                              .limit(len(ORDERS))).all())
    if len(users) < len(ORDERS):
        return
    coupon_of = give_coupons(session, actor=SYSTEM, users=users, product_code="flower_30",
                             batch_id=f"B{now:%Y%m%d}-FL", now=now)
    clerk = staff_actor(session, role="clerk", fallback="内勤")
    for i, (user, (state, with_coupon)) in enumerate(zip(users, ORDERS)):
        assert user.id is not None
        balances.move_stored_value(session, user_id=user.id, delta_fen=30_000, reason="演示：储值卡充值",
                                   ref=f"demo:flower:{user.id}", now=now)
        coupon_id = coupon_of.get(user.phone or "") if with_coupon else None
        try:
            with session.begin_nested():
                order = flows.create_order(session, user=user, body=_body(rng, i, coupon_id, now), now=now)
        except DomainError as exc:
            log.info("demo flower order %s not made: %s", i, exc.message)
            continue
        assert order.id is not None
        _walk(session, order_id=order.id, state=state, clerk=clerk, i=i)


def load(session: Session, rng: random.Random) -> None:
    load_bouquets(session)
    load_orders(session, rng)
