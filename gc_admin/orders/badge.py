"""The "新订单" badge on the sidebar's 订单看板 item: how many paid orders wait for a clerk to accept them.

Refreshed every :data:`INTERVAL_MS` by a hidden ``rx.moment`` whose ``interval`` re-renders it and
whose ``on_change`` fires on mount and on each tick (Reflex's own recipe for periodic events: the
timer lives in the browser, so it stops when the tab closes — no server loop to leak). Each tick
is one session check (``@guarded("orders", quiet=True)``) and one ``COUNT``
(:func:`orders.unseen_paid_orders_count`, or the queue's own count for a dispatcher, who sees driver
orders only). Roles without the orders section, and signed-out browsers, get 0 and no toast. When
the count goes up, a toast says so.
"""

from __future__ import annotations

import datetime as dt

import reflex as rx

from gc_admin.core.clock import UTC
from gc_admin.orders import service as orders
from gc_admin.ui.auth import current_principal, guarded, run_db
from gc_admin.ui.layout import register_badge

INTERVAL_MS = 15_000
SECTION = "orders"
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=UTC)


def waiting_count(session, *, role: str, supplier_code: str | None = None) -> int:
    """Paid orders not yet accepted, within what ``role`` may see (a supplier account: its goods orders waiting
    to be shipped)."""
    scope = orders.scope_for(role, supplier_code=supplier_code)
    if not scope.visible:
        return 0
    if scope.types is None:
        return orders.unseen_paid_orders_count(session, since=_EPOCH)
    return orders.unseen_paid_orders_count(session, since=_EPOCH, types=scope.types, supplier=scope.supplier)


class OrdersBadgeState(rx.State):
    count: int = 0
    seen: bool = False  # a first reading exists (no toast for what was already waiting)

    def _on_denied(self) -> None:
        self.count = 0

    @rx.event
    @guarded(SECTION, quiet=True)  # no toast for a refusal: the timer ticks every 15 s
    async def tick(self, _now: str = ""):
        p = current_principal()
        n = await run_db(waiting_count, role=p.role, supplier_code=p.supplier_code)
        grew = self.seen and n > self.count
        self.count, self.seen = n, True
        if grew:
            return rx.toast.info(f"有新的已支付订单待接单（共 {n} 单）")
        return None


def orders_badge(*, timer: bool = True, testid: str = "orders-badge") -> rx.Component:
    """The count (hidden at 0) and the invisible timer that keeps it fresh. A page shows the count
    in several places (sidebar, narrow screens' menu button and drawer) but runs one timer."""
    return rx.fragment(
        *([rx.moment(interval=INTERVAL_MS, format="HH:mm:ss", on_change=OrdersBadgeState.tick, display="none")]
          if timer else []),
        rx.cond(OrdersBadgeState.count > 0,
                rx.badge(OrdersBadgeState.count, color_scheme="red", variant="solid", radius="full", size="1",
                         title="已支付、待接单的订单", data_testid=testid)),
    )


register_badge(SECTION, orders_badge)
