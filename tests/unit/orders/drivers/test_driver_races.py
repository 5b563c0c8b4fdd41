"""Dispatch races on SQLite and PostgreSQL (threads released together by a barrier, over HTTP): two
dispatchers assigning one order at once — one wins, the other is told; two orders given one driver at
once — one wins; a platform event delivered several times at once — applied once."""

from __future__ import annotations

from gc_admin.integrations.driver.simulator import advance, make_callback
from tests.support import race, rows, scalar, statuses
from tests.unit.orders.drivers.support import act, book, ok


def test_two_dispatchers_assigning_one_order_at_once_one_wins(any_db, api, world) -> None:
    oid = book(api, world["me"])["id"]
    who = [world["diao"], world["diao2"]]
    answers = race(2, lambda i: act(api, who[i], oid, "assign_driver", driver_id=world["drivers"][i]))
    got = statuses(answers)
    assert got[200] == 1 and sum(got.values()) == 2, got
    loser = next(a for a in answers if a.status_code != 200).json()["error"]
    assert loser["code"] in ("ORDER_CLAIMED_BY_OTHER", "ORDER_STATE_CHANGED"), loser
    winner = next(i for i, a in enumerate(answers) if a.status_code == 200)
    # exactly the winner's driver is busy, with this order; the other's take was rolled back
    assert rows("SELECT id, status, order_id FROM driver ORDER BY id") == sorted(
        [(world["drivers"][winner], "busy", oid), (world["drivers"][1 - winner], "available", None)])
    assert scalar("SELECT count(*) FROM order_event WHERE order_id = :o AND action = 'assign_driver'", o=oid) == 1


def test_two_orders_given_one_driver_at_once_one_wins(any_db, api, world) -> None:
    orders = [book(api, world["me"])["id"] for _ in range(2)]
    who = [world["diao"], world["diao2"]]
    li = world["drivers"][0]
    answers = race(2, lambda i: act(api, who[i], orders[i], "assign_driver", driver_id=li))
    assert statuses(answers) == {200: 1, (409, "DRIVER_NOT_AVAILABLE"): 1}
    assert sorted(scalar("SELECT status FROM service_order WHERE id = :i", i=o) for o in orders) == [
        "accepted", "paid"]


def test_one_platform_event_delivered_at_once_is_applied_once(any_db, api, world, sim) -> None:
    oid = book(api, world["me"])["id"]
    pid = ok(act(api, world["diao"], oid, "hand_off", platform="edaijia"))["fulfilment"]["platform_order_id"]
    advance(sim, pid, "accepted")
    event = advance(sim, pid, "arrived", deliver=False).payload
    signed = [make_callback(sim, event) for _ in range(4)]  # four deliveries, each freshly signed
    answers = race(4, lambda i: api.post("/api/v1/driver/edaijia/callback", headers=signed[i][0],
                                         content=signed[i][1]))
    assert statuses(answers) == {200: 4}
    assert sum(1 for a in answers if not a.json().get("duplicate")) == 1
    assert scalar("SELECT count(*) FROM driver_callback WHERE status = 'arrived'") == 1
    assert scalar("SELECT count(*) FROM order_event WHERE order_id = :o AND action = 'arrive'", o=oid) == 1
