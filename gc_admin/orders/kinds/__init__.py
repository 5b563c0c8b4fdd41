"""Order kinds, one module per order type the mini-program can order (see :mod:`.base`).

Every order type has its kind here (coupon purchase, flower delivery, top-up, designated driver, goods).
"""

from __future__ import annotations

from gc_admin.orders.kinds import coupon_purchase, driver, flower, goods, topup
from gc_admin.orders.kinds.base import Kind
from gc_admin.orders.models import ORDER_TYPES

KINDS: dict[str, Kind] = {k.type: k for k in (
    coupon_purchase.KIND,
    flower.KIND,
    topup.KIND,
    driver.KIND,
    goods.KIND,
)}
assert list(KINDS) == list(ORDER_TYPES), "every order type has its kind (orders/kinds/)"
ORDERABLE_TYPES = tuple(t for t, k in KINDS.items() if k.orderable)


def kind_of(order_type: str) -> Kind:
    """The kind of a known order type."""
    return KINDS[order_type]
