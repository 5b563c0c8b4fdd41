"""购券: the user buys k coupons of a product on sale (券种); they are issued to the user's phone once paid.

Body: ``product_code`` and ``quantity`` (1 .. the product's per-user limit, else :data:`MAX_QUANTITY`,
counting what the user bought before). Creating the order holds k coupons of stock; the payment
issues them and completes the order. Refunds go per coupon: ``amount_fen`` must be the value of k
unused coupons (the paid amount split evenly, remainders spread so the parts sum to the paid amount).
Nothing fits a coupon purchase (coupons do not buy coupons).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session

from gc_admin.audit.service import record
from gc_admin.core.errors import Conflict, InvalidInput
from gc_admin.core.phone import mask_phone
from gc_admin.core.principal import SYSTEM, Actor
from gc_admin.coupons.catalog import service as coupons
from gc_admin.coupons.purchase import service as purchase
from gc_admin.coupons.models import Product
from gc_admin.orders import service as orders
from gc_admin.orders.kinds.base import Kind, Line, Lines, OrderDraft, int_field
from gc_admin.orders.models import ServiceOrder
from gc_admin.users.models import MpUser

MAX_QUANTITY = 20  # coupons per purchase when the product sets no per-user limit


def purchase_limit(session: Session, *, user: MpUser, product: Product) -> tuple[int, int]:
    """``(limit, still allowed)`` for the user and a product on sale."""
    assert user.id is not None and product.id is not None
    limit = product.per_user_limit or MAX_QUANTITY
    if product.per_user_limit is None:
        return limit, limit
    return limit, max(limit - purchase.purchased_count(session, user_id=user.id, product_id=product.id), 0)


def lines(session: Session, user: MpUser, d: OrderDraft) -> Lines:
    if not d.product_code or not isinstance(d.product_code, str):
        raise InvalidInput("请选择要购买的券", code="INVALID_ORDER")
    product = coupons.get_product_by_code(session, d.product_code)
    if not product.on_sale or product.price_fen is None:
        raise Conflict(f"{product.name}暂未在售", code="PRODUCT_NOT_ON_SALE")
    limit, left = purchase_limit(session, user=user, product=product)
    quantity = int_field(d.quantity, "购买数量", lo=1, hi=limit)
    if quantity > left:
        raise Conflict(f"{product.name}每人限购 {limit} 张，您还可购买 {left} 张", code="PURCHASE_LIMIT")
    line = Line(product.code, product.name, quantity, product.price_fen)
    return Lines((line,), {"product_code": product.code, "quantity": quantity}, product)


def on_created(session: Session, *, order: ServiceOrder, quote: Any, now: dt.datetime) -> None:
    """Hold the coupons' stock for the order."""
    assert order.id is not None
    product = session.get(Product, quote.product_id)
    assert product is not None
    purchase.reserve_for_order(session, order_id=order.id, user_id=order.user_id, product=product,
                               quantity=quote.lines[0].quantity, now=now)


def on_paid(session: Session, *, order: ServiceOrder, actor: Actor, now: dt.datetime) -> None:
    """Issue the bought coupons to the user's phone and complete the order."""
    assert order.id is not None
    user = session.get(MpUser, order.user_id)
    assert user is not None and user.phone
    issued = purchase.issue_for_order(session, order_id=order.id, user_id=order.user_id, phone=user.phone, now=now)
    record(session, actor=actor, action="coupon.issued", target_type="service_order", target_id=order.id,
           summary=f"购券订单 {order.order_no} 支付成功，向 {mask_phone(user.phone)} 发放 {len(issued)} 张券",
           after={"coupon_ids": issued, "source": "purchase"})
    orders.transition(session, order_id=order.id, action="complete", actor=SYSTEM, reason=f"已发放 {len(issued)} 张券",
                      now=now)


def view(session: Session, *, order: ServiceOrder) -> dict[str, Any]:
    assert order.id is not None
    return {"coupon_ids": purchase.order_coupon_ids(session, order_id=order.id)}


def refund_values(session: Session, *, order: ServiceOrder, now: dt.datetime | None = None) -> list[int] | None:
    """With delivered coupons: the refundable amounts for 1, 2, … of its unused coupons (``None`` before
    any coupon was delivered: refunds are not per coupon then)."""
    if order.id is None:
        return None
    counts = purchase.item_counts(session, order_id=order.id)
    n = counts.get("issued", 0) + counts.get("revoking", 0) + counts.get("revoked", 0)
    if n == 0:
        return None
    taken = counts.get("revoking", 0) + counts.get("revoked", 0)
    paid = order.paid_fen
    base = paid * taken // n
    revocable = purchase.revocable_count(session, order_id=order.id, now=now)
    return [paid * (taken + k) // n - base for k in range(1, revocable + 1)]


KIND = Kind("coupon_purchase", lines=lines, on_created=on_created, on_paid=on_paid, view=view,
            refund_values=refund_values)
