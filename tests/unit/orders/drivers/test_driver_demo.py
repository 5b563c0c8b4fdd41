"""The demo data (SPEC.md §10) has a driver roster and driver orders in several states, loaded before any
server runs (the steps that need the simulators reach this process's own, in-process: gc_admin.demo)."""

from __future__ import annotations

from gc_admin import demo
from gc_admin.db import session_scope
from tests.support import rows, scalar


def test_the_demo_has_a_roster_and_driver_orders_in_several_states(db) -> None:
    with session_scope() as s:
        demo.load(s)
    assert rows("SELECT status, count(*) FROM driver GROUP BY status ORDER BY status") == [
        ("available", 3), ("busy", 3), ("off", 1)]  # the fee-due order's drive is over: its driver is free
    assert scalar("SELECT count(*) FROM driver WHERE NOT active") == 1
    states = dict(rows("SELECT status, count(*) FROM service_order WHERE type = 'driver' GROUP BY status"))
    assert {"paid", "accepted", "arrived", "in_fulfilment", "completed", "awaiting_payment", "cancelled"} <= set(
        states), states
    # every busy driver serves one of those orders, and the completed one was settled against its coupon
    assert scalar("SELECT count(*) FROM driver d JOIN service_order o ON o.id = d.order_id "
                  "WHERE d.status = 'busy' AND o.status IN ('accepted', 'arrived', 'in_fulfilment')") == 3
    assert rows("SELECT list_fen, payable_fen FROM service_order WHERE type = 'driver' AND status = 'completed'") == [
        (2_500, 0)]
