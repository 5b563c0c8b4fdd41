"""Races on PostgreSQL (threads released together by a barrier, each its own unit of work): buying the
last coupons never over-sells, one user's parallel orders respect the per-user limit, and several
expiry workers cancel (and release) each unpaid order exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from gc_admin.core.errors import Conflict
from gc_admin.db import session_scope
from gc_admin.orders import service as orders
from tests.unit.test_orders_support import age, buy, buyer, get, pay, rows, scalar, shop, wired


def race(n: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racing thread hung"
    return results


def _codes_consistent() -> None:
    """Every code out of stock is held by exactly one live item; no code backs two coupons."""
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'issued'") == scalar(
        "SELECT count(*) FROM coupon_purchase_item WHERE state IN ('held', 'issued', 'revoking')")
    assert scalar("SELECT count(*) - count(DISTINCT stock_code_id) FROM coupon_purchase_item "
                  "WHERE state IN ('held', 'issued', 'revoking')") == 0
    assert scalar("SELECT count(*) - count(DISTINCT stock_code_id) FROM coupon WHERE stock_code_id IS NOT NULL") == 0


def test_buying_the_last_coupons_never_oversells(pg_db) -> None:
    shop(codes=5)
    users = [buyer(f"1390000{i:04d}", openid=f"oRace{i:04d}") for i in range(12)]
    with wired() as w:
        results = race(12, lambda i: buy(users[i], 1))
        made = [r for r in results if not isinstance(r, Exception)]
        assert len(made) == 5, results
        assert Counter(r.code for r in results if isinstance(r, Conflict)) == {"NO_STOCK": 7}
        assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 0
        _codes_consistent()
        race(5, lambda i: pay(w, made[i]))
    assert {get(o.id).status for o in made} == {"completed"}
    assert scalar("SELECT count(*) FROM coupon") == 5
    _codes_consistent()


def test_buying_several_each_never_oversells(pg_db) -> None:
    shop(codes=5)
    users = [buyer(f"1370000{i:04d}", openid=f"oMany{i:04d}") for i in range(6)]
    with wired():
        results = race(6, lambda i: buy(users[i], 2))
    made = [r for r in results if not isinstance(r, Exception)]
    assert 1 <= len(made) <= 2, results  # 5 codes: at most two orders of two
    assert all(isinstance(r, Conflict) and r.code == "NO_STOCK" for r in results if isinstance(r, Exception))
    assert scalar("SELECT count(*) FROM coupon_purchase_item WHERE state = 'held'") == 2 * len(made)
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 5 - 2 * len(made)
    _codes_consistent()


def test_one_users_parallel_orders_respect_the_limit(pg_db) -> None:
    shop(codes=20)  # tpp50: at most 5 per user
    user = buyer()
    with wired():
        results = race(4, lambda i: buy(user, 2))
    made = [r for r in results if not isinstance(r, Exception)]
    assert len(made) == 2, results
    assert Counter(r.code for r in results if isinstance(r, Exception)) == {"PURCHASE_LIMIT": 2}
    assert scalar("SELECT count(*) FROM coupon_purchase_item") == 4


def test_several_expiry_workers_cancel_each_order_once(pg_db) -> None:
    shop(codes=20)
    users = [buyer(f"1350000{i:04d}", openid=f"oExp{i:04d}") for i in range(10)]
    with wired() as w:
        made = [buy(users[i], 2) for i in range(10)]
        for o in made:
            age(o.id, 10)

        def work(_: int) -> list[int]:
            out: list[int] = []
            while True:
                with session_scope() as s:
                    got = orders.cancel_expired_unpaid(s, limit=3).cancelled
                if not got:
                    return out
                out.extend(got)

        results = race(4, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    cancelled = [oid for r in results for oid in r]
    assert sorted(cancelled) == sorted(o.id for o in made)  # every order, each exactly once
    assert scalar("SELECT count(*) FROM order_event WHERE action = 'cancel'") == 10
    assert rows("SELECT state, count(*) FROM coupon_purchase_item GROUP BY state") == [("released", 20)]
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 20
    assert {w.state.orders[o.order_no].trade_state for o in made} == {"CLOSED"}
