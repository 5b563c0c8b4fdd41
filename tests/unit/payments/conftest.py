"""Fixtures of the payment tests (ledger, reconciliation)."""

from __future__ import annotations

import pytest

from gc_admin.db import session_scope
from gc_admin.integrations.wechatpay.simulator import finish_refund
from gc_admin.orders import refunds
from tests.support import wired
from tests.unit.orders.support import CLERK, buy, buyer, pay, shop


@pytest.fixture
def day_of_money(any_db):
    """Two paid orders and one refunded coupon, all through the simulator, today."""
    shop()
    a, b = buyer(), buyer("13900000002", openid="oB2")
    with wired() as w:
        o1, o2 = buy(a, 3), buy(b, 1)
        pay(w, o1)
        pay(w, o2)
        with session_scope() as s:
            r = refunds.refund_order(s, order_id=o1.id, amount_fen=4_500, reason="退一张", actor=CLERK)
        with session_scope() as s:
            refunds.send_refund(s, refund_id=r.id)
        finish_refund(w.state, r.out_refund_no)
        yield w, o1, o2
