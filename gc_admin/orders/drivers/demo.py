"""Demo data of the designated-driver service (SPEC.md §10, additive): a driver roster, a 代驾 coupon
given to some users, and driver orders in several states, made through the same flows as real ones.

The demo loads before the server runs, so nothing here can reach the WeChat Pay or driver-platform
simulators over HTTP: the orders whose next step needs them (a fee the user must top up, a hand-off to
the platform) are tried inside a savepoint and left one step earlier if the simulator is not reachable.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from typing import Any

from sqlmodel import Session, col, select

from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.core.errors import DomainError
from gc_admin.core.principal import Actor
from gc_admin.coupons import service as coupons
from gc_admin.orders import flows
from gc_admin.orders.demokit import give_coupons, staff_actor
from gc_admin.orders.drivers import service as roster
from gc_admin.orders.service import user_actor
from gc_admin.users.models import MpUser

log = logging.getLogger(__name__)

DRIVERS = (("韦建华", "13707710001"), ("覃志强", "13707710002"), ("黄国平", "13707710003"), ("莫海涛", "13707710004"),
           ("蒙德胜", "13707710005"), ("陆永清", "13707710006"), ("梁少锋", "13707710007"))
PLACES = (("南宁市", "青秀区民族大道 136 号 华润大厦"), ("南宁市", "西乡塘区大学东路 100 号"),
          ("南宁市", "江南区星光大道 213 号"), ("柳州市", "城中区文昌路 8 号"), ("桂林市", "七星区漓江路 36 号"),
          ("北海市", "海城区北部湾中路 2 号"))
PLATES = ("桂A3C512", "桂AD12345", "桂B88K21", "桂C6J790", "桂E1M236", "桂AF30211")
# the state each demo order is walked to, in order: (state, with the 代驾 coupon, fee)
ORDERS: tuple[tuple[str, bool, int], ...] = (
    ("paid", True, 0), ("paid", False, 0), ("paid", True, 0), ("accepted", True, 0), ("arrived", False, 0),
    ("in_service", True, 0), ("completed", True, 2_500), ("awaiting_payment", True, 8_800), ("handed_off", False, 0),
    ("cancelled", True, 0),
)


def _body(rng: random.Random, user: MpUser, coupon_id: int | None, now: dt.datetime) -> dict[str, Any]:
    (c1, a1), (c2, a2) = rng.sample(PLACES[:3], 2) if rng.random() < 0.7 else rng.sample(PLACES, 2)
    at = (now + dt.timedelta(hours=rng.randrange(1, 30), minutes=rng.choice((0, 15, 30, 45)))).astimezone(SHANGHAI)
    body: dict[str, Any] = {"type": "driver", "details": {
        "pickup": {"city": c1, "address": a1}, "destination": {"city": c2, "address": a2},
        "at": at.isoformat(timespec="minutes"), "contact_phone": user.phone, "plate_no": rng.choice(PLATES)}}
    if coupon_id:
        body["coupon_id"] = coupon_id
    return body


def _walk(session: Session, *, order_id: int, state: str, fee: int, dispatcher: Actor, driver_id: int | None) -> None:
    steps: list[tuple[str, dict[str, Any]]] = []
    if state in ("accepted", "arrived", "in_service", "completed", "awaiting_payment"):
        steps.append(("assign_driver", {"driver_id": driver_id}))
    if state in ("arrived", "in_service", "completed", "awaiting_payment"):
        steps.append(("arrive", {}))
    if state in ("in_service", "completed", "awaiting_payment"):
        steps.append(("start", {}))
    if state in ("completed", "awaiting_payment"):
        steps.append(("set_fee", {"fee_fen": fee}))
    if state == "handed_off":
        steps.append(("hand_off", {"platform": _platform_code()}))
    for action, fields in steps:
        try:
            with session.begin_nested():
                flows.staff_action(session, order_id=order_id, action=action, actor=dispatcher, fields=fields)
        except DomainError as exc:  # a simulator the demo cannot reach: stop one step earlier
            log.info("demo driver order %s stops before %s: %s", order_id, action, exc.message)
            return


def _platform_code() -> str:
    from gc_admin.integrations.driver.setup import platform_code

    return platform_code()


def load(session: Session, rng: random.Random) -> None:
    now = utcnow()
    system = Actor("system", None, "演示数据")
    drivers = [roster.create_driver(session, name=n, phone=p, actor=system, now=now) for n, p in DRIVERS]
    roster.update_driver(session, driver_id=drivers[-1].id or 0, actor=system, status="off")
    roster.update_driver(session, driver_id=drivers[-2].id or 0, actor=system, active=False)
    coupons.create_product(session, actor=system, code="daijia_30", name="代驾立减 30 元", kind="service_discount",
                           face_fen=3000, cost_fen=3000, supplier="滚财代驾", programme_code="picc_gx",
                           funded_by="insurer", validity_days=180)
    users = list(session.exec(select(MpUser).where(col(MpUser.openid).is_not(None), col(MpUser.phone).is_not(None))
                              .order_by(col(MpUser.id)).limit(len(ORDERS))).all())
    if len(users) < len(ORDERS):
        return
    coupon_of = give_coupons(session, actor=system, users=users, product_code="daijia_30",
                             batch_id=f"B{now:%Y%m%d}-DJ", now=now)
    dispatcher = staff_actor(session, role="dispatcher", fallback="调度")
    free = [d.id for d in drivers[:-2]]
    for user, (state, with_coupon, fee) in zip(users, ORDERS):
        order = flows.create_order(session, user=user, body=_body(rng, user, coupon_of.get(user.phone or "")
                                                                  if with_coupon else None, now), now=now)
        assert order.id is not None
        if state == "cancelled":
            flows.cancel_order(session, order_id=order.id, user=user, actor=user_actor(user), reason="行程取消")
            continue
        needs_driver = state in ("accepted", "arrived", "in_service", "completed", "awaiting_payment")
        _walk(session, order_id=order.id, state=state, fee=fee, dispatcher=dispatcher,
              driver_id=free.pop(0) if needs_driver and free else None)
