"""Order kinds, one module per order type the mini-program can order (see :mod:`.base`).

Flower delivery and designated driver orders exist in the tables and the state machine
but have no catalogue yet (goods has its own: orders/kinds/goods.py): they are registered as not orderable (``ORDER_TYPE_UNAVAILABLE``),
with the coupons that will fit them.
"""

from __future__ import annotations

from gc_admin.orders.kinds import coupon_purchase, goods, topup
from gc_admin.orders.kinds.base import Kind, not_orderable_yet
from gc_admin.orders.models import ORDER_TYPES

KINDS: dict[str, Kind] = {k.type: k for k in (
    coupon_purchase.KIND,
    not_orderable_yet("flower", coupon_fits=("service_discount",)),
    topup.KIND,
    not_orderable_yet("driver", coupon_fits=("service_discount",),
                      actions=("assign_driver", "hand_off", "arrive", "start", "set_fee", "complete", "cancel",
                               "after_sales", "resolve")),
    goods.KIND,
)}
assert list(KINDS) == list(ORDER_TYPES), "every order type has its kind (orders/kinds/)"
ORDERABLE_TYPES = tuple(t for t, k in KINDS.items() if k.orderable)


def kind_of(order_type: str) -> Kind:
    """The kind of a known order type."""
    return KINDS[order_type]
