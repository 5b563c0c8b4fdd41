"""Helpers shared by the order / payment tests (this module has no tests of its own).

``wired(app)`` routes the app's WeChat Pay client into the simulator mounted in the same app and
makes the simulator deliver its notifies into the app's own notify routes, all in-process: the
tests pay, get notified and refund through the real client, routes and protocol.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from gc_admin.audit.service import Actor
from gc_admin.core.clock import utcnow
from gc_admin.coupons import service as coupons
from gc_admin.db import session_scope
from gc_admin.integrations.wechatpay.simulator import (
    SimNotify,
    WxPaySimState,
    make_notify,
    pay_order,
    transaction_resource,
)
from gc_admin.orders import flows
from gc_admin.orders import service as orders
from gc_admin.orders.models import ServiceOrder
from gc_admin.users.models import MpUser
from tests.support import InProcessTransport
from tests.unit.test_coupons_support import STAFF, setup_catalogue, stock

CLERK = Actor("staff", "3", "王内勤")
NOTIFY_PATH = "/api/v1/pay/wechat/notify"
REFUND_NOTIFY_PATH = "/api/v1/pay/wechat/refund-notify"


@dataclasses.dataclass
class Wired:
    app: FastAPI
    state: WxPaySimState
    transport: InProcessTransport
    delivered: list[int]

    def post(self, path: str, headers: Mapping[str, str], body: bytes) -> httpx.Response:
        with httpx.Client(transport=self.transport, base_url="http://testserver") as c:
            return c.post(path, headers=dict(headers), content=body)


@contextlib.contextmanager
def wired(app: FastAPI | None = None) -> Iterator[Wired]:
    """The WeChat Pay client and the simulator's notify delivery, both into ``app`` in-process."""
    from gc_admin.api import build_api
    from gc_admin.integrations import sims
    from gc_admin.integrations.wechat import client as wx
    from gc_admin.integrations.wechatpay import setup

    if app is None:
        sims.simulators.cache_clear()
        app = build_api()
    transport = InProcessTransport(app)
    setup.set_transport(transport)
    wx.set_transport(transport)
    state = sims.simulators().wxpay
    delivered: list[int] = []

    def deliver(url: str, headers: Mapping[str, str], body: bytes) -> int:
        with httpx.Client(transport=transport) as c:
            status = c.post(url, headers=dict(headers), content=body).status_code
        delivered.append(status)
        return status

    state.deliver = deliver
    try:
        yield Wired(app=app, state=state, transport=transport, delivered=delivered)
    finally:
        setup.set_transport(None)
        wx.set_transport(None)


def shop(*, price_fen: int = 4500, per_user_limit: int | None = 5, codes: int = 10, kind_products: bool = True) -> None:
    """The catalogue of the coupon tests, with tpp50 on sale (¥45, limit 5) and ``codes`` in stock."""
    setup_catalogue()
    with session_scope() as s:
        coupons.update_product(s, actor=STAFF, code="tpp50", on_sale=True, price_fen=price_fen,
                               per_user_limit=per_user_limit)
        if kind_products:
            coupons.update_product(s, actor=STAFF, code="fuel50", on_sale=True, price_fen=990, per_user_limit=3)
    if codes:
        stock("tpp50", codes)


def buyer(phone: str | None = "13812345678", *, openid: str | None = "oBuyer0000000000000000001") -> MpUser:
    with session_scope() as s:
        user = MpUser(phone=phone, openid=openid, created_at=utcnow())
        s.add(user)
        s.flush()
        s.refresh(user)
        return user


def buy(user: MpUser, quantity: int = 3, *, product: str = "tpp50", **extra: Any) -> ServiceOrder:
    with session_scope() as s:
        return flows.create_order(s, user=user, body={"type": "coupon_purchase", "product_code": product,
                                                      "quantity": quantity, **extra})


def get(order_id: int) -> ServiceOrder:
    with session_scope() as s:
        return orders.get_order(s, order_id=order_id)


def pay(w: Wired, order: ServiceOrder, *, deliver: bool = True) -> SimNotify | None:
    assert order.prepay_id
    return pay_order(w.state, order.prepay_id, deliver=deliver)


def paid_notify(w: Wired, order: ServiceOrder, *, timestamp: int | None = None,
                **changes: Any) -> tuple[dict[str, str], bytes]:
    """Pay ``order`` at the simulator without delivering; return a signed notify for it
    (``changes`` alter the resource before it is signed and encrypted)."""
    pay(w, order, deliver=False)
    sim_order = w.state.orders[order.order_no]
    resource = {**transaction_resource(w.state, sim_order), **changes}
    return make_notify(w.state, "TRANSACTION.SUCCESS", resource, timestamp=timestamp)


def scalar(sql: str, **params: Any) -> Any:
    with session_scope() as s:
        return s.execute(sa.text(sql), params).scalar_one()


def rows(sql: str, **params: Any) -> list[tuple]:
    with session_scope() as s:
        return [tuple(r) for r in s.execute(sa.text(sql), params).all()]


def table_counts() -> dict[str, int]:
    """Rows per table of every money/coupon table (to prove something changed nothing)."""
    names = ("service_order", "order_event", "payment", "refund", "ledger_entry", "coupon", "coupon_purchase_item",
             "points_entry", "stored_value_entry", "user_balance", "audit_log", "order_notice")
    out = {n: scalar(f"SELECT count(*) FROM {n}") for n in names}
    out["in_stock"] = scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'")
    return out


def age(order_id: int, minutes: int) -> None:
    """Move an order's payment deadline ``minutes`` into the past (the clock is not injectable everywhere)."""
    with session_scope() as s:
        s.execute(sa.update(ServiceOrder).where(ServiceOrder.id == order_id)
                  .values(pay_expires_at=utcnow() - dt.timedelta(minutes=minutes)))
