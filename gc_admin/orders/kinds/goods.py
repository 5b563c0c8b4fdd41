"""实物: a physical item from a supplier's catalogue (:mod:`gc_admin.orders.suppliers`), shipped to an address.

Body: ``details = {"goods_code", "quantity", "address": {name, phone, province, city, district, detail}}``
(the API's ``goods`` object). Paid with a ``goods_exchange`` voucher (``exchange_coupon_id``: one of the
item's ``exchange_products`` redeems one unit), a ``goods_discount`` coupon, or plainly. Creating the order
takes the stock (a conditional UPDATE: never below zero) and records the item's supplier on the order,
so the supplier's account sees it (row scope: ``service_order.supplier_code``); cancelling it unpaid
gives the stock back, and so does a full refund before it ships (:func:`give_back_for_refund`: paid then
refunded, or cancelled and refunded by after-sales). After shipping a refund gives no stock back: the item
has left the supplier; if the parcel comes back, the supplier adds it to the stock on 商品管理. Staff / the supplier ``ship`` it with ``{carrier, tracking_no}`` (shown to the user
in ``fulfilment``); the user confirms receipt, or :func:`auto_confirm_shipped` completes it N days later.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.core.clock import iso, utcnow
from gc_admin.core.errors import Conflict, InvalidInput
from gc_admin.core.phone import mask_phone, normalize_phone
from gc_admin.core.principal import SYSTEM
from gc_admin.coupons.models import Coupon, Product
from gc_admin.orders import service as orders
from gc_admin.orders.kinds.base import ActionOutcome, Kind, Line, Lines, OrderDraft, int_field, text_field
from gc_admin.orders.models import ServiceOrder
from gc_admin.orders.suppliers import service as suppliers
from gc_admin.users.models import MpUser

MAX_QUANTITY = 10
ADDRESS_FIELDS = {"name": ("收货人", 32), "phone": ("收货人手机号", 11), "province": ("省份", 16),
                  "city": ("城市", 16), "district": ("区县", 16), "detail": ("详细地址", 120)}
AUTO_CONFIRM_DAYS = 10  # a shipped order is completed this many days after shipping unless the user confirms


def _address(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InvalidInput("请填写收货地址", code="ADDRESS_REQUIRED")
    extra = set(value) - set(ADDRESS_FIELDS)
    if extra:
        raise InvalidInput(f"未知的地址字段：{', '.join(sorted(extra))}", code="INVALID_ADDRESS")
    out: dict[str, str] = {}
    for name, (label, max_len) in ADDRESS_FIELDS.items():
        v = value.get(name)
        if not isinstance(v, str) or not v.strip() or len(v.strip()) > max_len:
            raise InvalidInput(f"请正确填写{label}（不超过 {max_len} 个字）", code="INVALID_ADDRESS")
        out[name] = v.strip()
    phone = normalize_phone(out["phone"])
    if phone is None:
        raise InvalidInput("请填写正确的 11 位收货人手机号", code="INVALID_ADDRESS")
    out["phone"] = phone
    return out


def lines(session: Session, user: MpUser, d: OrderDraft) -> Lines:
    extra = set(d.details) - {"goods_code", "quantity", "address"}
    if extra:
        raise InvalidInput(f"未知的实物订单字段：{', '.join(sorted(extra))}", code="INVALID_ORDER")
    code = d.details.get("goods_code")
    if not isinstance(code, str) or not code:
        raise InvalidInput("请选择商品", code="INVALID_ORDER")
    goods = suppliers.get_goods(session, code=code)
    if not goods.on_sale:
        raise Conflict(f"{goods.name}暂未上架", code="GOODS_NOT_ON_SALE")
    quantity = int_field(d.details.get("quantity", 1), "数量", lo=1, hi=MAX_QUANTITY)
    if d.exchange_coupon_id is not None:
        if quantity != 1:
            raise InvalidInput("一张兑换券兑换一件商品", code="INVALID_ORDER")
        product = session.exec(select(Product.code).join(Coupon, col(Coupon.product_id) == col(Product.id))
                               .where(col(Coupon.id) == d.exchange_coupon_id)).first()
        if product is not None and product not in goods.exchange_products:
            raise Conflict(f"该兑换券不能兑换{goods.name}", code="COUPON_NOT_APPLICABLE")
    if goods.stock < quantity:
        raise Conflict(f"{goods.name}库存不足", code="GOODS_OUT_OF_STOCK")
    line = Line(goods.code, goods.name, quantity, goods.price_fen)
    return Lines((line,), {"goods_code": goods.code, "quantity": quantity, "address": _address(d.details.get("address")),
                           "supplier_code": goods.supplier_code})


def on_created(session: Session, *, order: ServiceOrder, quote: Any, now: dt.datetime) -> None:
    """Take the stock and record who ships it (the supplier's row scope)."""
    assert order.id is not None
    details = order.details or {}
    suppliers.take_stock(session, code=details["goods_code"], quantity=int(details["quantity"]))
    session.execute(update(ServiceOrder).where(col(ServiceOrder.id) == order.id)
                    .values(supplier_code=details["supplier_code"]).execution_options(synchronize_session=False))


def give_back_for_orders(session: Session, *, details: list[Any]) -> None:
    """Unpaid orders were cancelled (their conditional UPDATE won): the goods among them (the details this
    kind wrote: goods_code + supplier_code) give their stock back, once."""
    for d in details:
        if (d or {}).get("goods_code") and d.get("supplier_code"):
            suppliers.give_back_stock(session, code=d["goods_code"], quantity=int(d.get("quantity", 1)))


def give_back_for_refund(session: Session, *, order: ServiceOrder) -> bool:
    """A goods order was fully refunded — called in the one transaction whose conditional UPDATE settled
    the refund (a replayed notify or a second sync settles nothing and never gets here), so the stock goes
    back once. Nothing goes back for an order that was shipped (the item is with the carrier or the user)
    nor for one cancelled unpaid before its money arrived (that cancellation gave the stock back already)."""
    d = order.details or {}
    if not d.get("goods_code") or not d.get("supplier_code"):
        return False
    if order.cancelled_at is not None or (order.fulfilment or {}).get("tracking_no"):
        return False
    quantity = int(d.get("quantity", 1))
    suppliers.give_back_stock(session, code=d["goods_code"], quantity=quantity)
    record(session, actor=SYSTEM, action="goods.stock_returned", target_type="service_order", target_id=order.id,
           summary=f"订单 {order.order_no} 未发货即全额退款，{d['goods_code']} 退回库存 {quantity} 件",
           after={"goods_code": d["goods_code"], "quantity": quantity})
    return True


def on_action(session: Session, *, order: Any, action: str, fields: Mapping[str, Any], actor: Any,
              now: Any) -> ActionOutcome | None:
    """ship: carrier and tracking no. are required (the user sees them)."""
    if action == "ship":
        carrier = text_field(fields, "carrier", "快递公司", max_len=32)
        tracking = text_field(fields, "tracking_no", "快递单号", max_len=40)
        return ActionOutcome(fulfilment={"carrier": carrier, "tracking_no": tracking, "shipped_at": iso(now)},
                             note=f"{carrier} {tracking}")
    return None


def details_text(details: Mapping[str, Any]) -> str:
    a = details.get("address")
    if not isinstance(a, Mapping) or not a:  # an imported channel order has no address: its lines say what it is
        return ""
    return f"收货人 {a.get('name', '')} {mask_phone(str(a.get('phone', '')))} · {a.get('province', '')}{a.get('city', '')}" \
           f"{a.get('district', '')}"


def auto_confirm_shipped(session: Session, *, now: dt.datetime | None = None, days: int = AUTO_CONFIRM_DAYS,
                         limit: int = 200) -> int:
    """Complete goods orders shipped more than ``days`` ago that the user did not confirm (the periodic job)."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=days)
    # shipping set updated_at: anything older than the cutoff was shipped before it
    ids = session.exec(select(ServiceOrder.id).where(col(ServiceOrder.type) == "goods",
                                                     col(ServiceOrder.status) == "shipped",
                                                     col(ServiceOrder.updated_at) <= cutoff)
                       .order_by(col(ServiceOrder.id)).limit(limit)).all()
    done = 0
    for oid in ids:
        try:
            orders.transition(session, order_id=oid, action="complete", actor=SYSTEM,
                              reason=f"发货 {days} 天未确认，自动确认收货", now=now)
            done += 1
        except Conflict:
            continue  # the user confirmed (or staff moved it) meanwhile
    return done


KIND = Kind("goods", lines=lines, coupon_fits=("goods_discount",), exchange_fits=("goods_exchange",),
            on_created=on_created, on_refunded=give_back_for_refund, on_action=on_action, details_text=details_text,
            actions=("ship", "complete", "cancel", "after_sales", "resolve"), action_fields={"ship": ("carrier", "tracking_no")})
