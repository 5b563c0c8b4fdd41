"""Helpers shared by the order / payment tests: a shop with coupons on sale, buyers, orders paid through
the WeChat Pay simulator (``tests.support.wired`` routes the client and the notifies in-process).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from gc_admin.audit.service import Actor
from gc_admin.core.clock import utcnow
from gc_admin.coupons import service as coupons
from gc_admin.db import session_scope
from gc_admin.integrations.wechatpay.simulator import SimNotify, make_notify, pay_order, transaction_resource
from gc_admin.orders import flows
from gc_admin.orders import service as orders
from gc_admin.orders.models import ServiceOrder
from gc_admin.payments import balances
from gc_admin.users.models import MpUser
from tests.support import Wired, make_user, scalar, wired
from tests.unit.coupons.support import STAFF, setup_catalogue, stock

CLERK = Actor("staff", "3", "王内勤")
COLLEAGUE = Actor("staff", "99", "同事")
#: A staff account of every role (username, role), as the order and money pages' tests sign in.
EVERY_ROLE = [("boss", "admin"), ("mgr", "manager"), ("chen", "clerk"), ("kefu", "service"), ("picc", "insurer"),
              ("sup", "supplier"), ("daijia", "dispatcher")]
NOTIFY_PATH = "/api/v1/pay/wechat/notify"
REFUND_NOTIFY_PATH = "/api/v1/pay/wechat/refund-notify"


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


def insert_order(s, *, user_id: int, no: str, type: str = "flower", status: str = "created", payable: int = 1000,
                 created: dt.datetime | None = None, paid: dt.datetime | None = None,
                 name: str = "rose") -> ServiceOrder:
    """An order row as the lists show it, written in session ``s`` (no stock, payment or history behind it)."""
    created = created or dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.timezone.utc)
    order = ServiceOrder(order_no=no, type=type, status=status, user_id=user_id, list_fen=payable + 500,
                         payable_fen=payable, paid_fen=payable if paid else 0,
                         details={"lines": [{"name": name, "quantity": 1}]}, pay_expires_at=created,
                         created_at=created, updated_at=created, paid_at=paid)
    s.add(order)
    s.flush()
    return order


def buyer(phone: str | None = "13812345678", *, openid: str | None = "oBuyer0000000000000000001") -> MpUser:
    """A user who can pay: signed in with WeChat (an openid) and, by default, a phone."""
    return make_user(phone, openid=openid)


def purse(user: MpUser, *, points: int, stored_value_fen: int) -> int:
    """Give ``user`` a flower30 coupon (a staff batch), ``points`` points and ``stored_value_fen`` on the
    stored-value card, each in the ledgers; the coupon's id."""
    with session_scope() as s:
        issued = coupons.issue_batch(s, actor=STAFF, source="staff", batch_id="purse", product_code="flower30",
                                     phones=[user.phone])
        balances.move_points(s, user_id=user.id, delta=points, reason="赠送", ref="gift:purse")
        balances.move_stored_value(s, user_id=user.id, delta_fen=stored_value_fen, reason="充值", ref="load:purse")
    return issued.rows()[0]["coupon_ids"][0]


def buy(user: MpUser, quantity: int = 3, *, product: str = "tpp50", **extra: Any) -> ServiceOrder:
    with session_scope() as s:
        return flows.create_order(s, user=user, body={"type": "coupon_purchase", "product_code": product,
                                                      "quantity": quantity, **extra})


@contextlib.contextmanager
def paid_order(quantity: int = 3) -> Iterator[tuple[Wired, ServiceOrder, MpUser]]:
    """The shop, a buyer who bought ``quantity`` × ¥45 movie coupons and paid through the simulator (wired
    while the block runs): ``(wired, the paid order, the buyer)``."""
    shop()
    user = buyer()
    with wired() as w:
        order = buy(user, quantity)
        pay(w, order)
        yield w, get(order.id), user


def topup_order(user, w) -> int:
    """A paid ¥50 phone top-up: it waits in ``paid`` for a clerk (unlike a coupon purchase)."""
    with session_scope() as s:
        order = flows.create_order(s, user=user, body={"type": "topup",
                                                        "details": {"mobile": "13812345678", "face_fen": 5_000}})
    pay(w, order)
    assert get(order.id).status == "paid"
    return order.id or 0


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
