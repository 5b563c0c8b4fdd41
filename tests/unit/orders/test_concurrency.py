"""Races on SQLite and PostgreSQL (threads released together by a barrier, each its own unit of work):
buying the last coupons never over-sells, one user's parallel orders (service and HTTP) respect the
per-user limit, and several expiry workers cancel (and release) each unpaid order exactly once."""

from __future__ import annotations

from collections import Counter

from gc_admin.core.errors import Conflict
from gc_admin.db import session_scope
from gc_admin.orders import flows
from tests.support import race, rows, scalar, wired
from tests.unit.orders.support import age, buy, buyer, get, pay, shop


def _codes_consistent() -> None:
    """Every code out of stock is held by exactly one live item; no code backs two coupons."""
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'issued'") == scalar(
        "SELECT count(*) FROM coupon_purchase_item WHERE state IN ('held', 'issued', 'revoking')")
    assert scalar("SELECT count(*) - count(DISTINCT stock_code_id) FROM coupon_purchase_item "
                  "WHERE state IN ('held', 'issued', 'revoking')") == 0
    assert scalar("SELECT count(*) - count(DISTINCT stock_code_id) FROM coupon WHERE stock_code_id IS NOT NULL") == 0


def test_buying_the_last_coupons_never_oversells(any_db) -> None:
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


def test_buying_several_each_never_oversells(any_db) -> None:
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


def test_one_users_parallel_orders_respect_the_limit(any_db) -> None:
    shop(codes=20)  # tpp50: at most 5 per user
    user = buyer()
    with wired():
        results = race(4, lambda i: buy(user, 2))
    made = [r for r in results if not isinstance(r, Exception)]
    assert len(made) == 2, results
    assert Counter(r.code for r in results if isinstance(r, Exception)) == {"PURCHASE_LIMIT": 2}
    assert scalar("SELECT count(*) FROM coupon_purchase_item") == 4


def test_several_expiry_workers_cancel_each_order_once(any_db) -> None:
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
                    got = flows.cancel_expired_unpaid(s, limit=3).cancelled
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


def test_ten_parallel_http_orders_of_one_user_stop_at_the_limit(any_db) -> None:
    """Issue 7: 10 concurrent ``POST /api/v1/mp/orders`` for a product limited to 5 per user, each for
    one coupon: exactly 5 orders are created and can be paid, the other 5 are refused PURCHASE_LIMIT."""
    import httpx

    shop(codes=20)  # tpp50: at most 5 per user
    with wired() as w, httpx.Client(transport=w.transport, base_url="http://testserver") as c:
        minted = c.post("/sim/wechat/_mint", json={"openid": "oLimit00000000000000000001",
                                                   "phone": "13812345678"}).json()
        me = {"Authorization": "Bearer " + c.post("/api/v1/mp/auth/wechat", json={"code": minted["code"]}).json()["token"]}
        assert c.post("/api/v1/mp/auth/wechat/phone", json={"phone_code": minted["phone_code"]},
                      headers=me).status_code == 200
        body = {"type": "coupon_purchase", "product_code": "tpp50", "quantity": 1}
        answers = race(10, lambda i: c.post("/api/v1/mp/orders", json=body, headers=me))
        assert not [a for a in answers if isinstance(a, Exception)], answers
        assert sorted(a.status_code for a in answers) == [201] * 5 + [409] * 5, [a.text for a in answers]
        assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"PURCHASE_LIMIT"}
        made = [a.json() for a in answers if a.status_code == 201]
        for order in made:
            prepay_id = order["payment"]["package"].removeprefix("prepay_id=")
            paid = c.post("/sim/wechatpay/_pay", json={"prepay_id": prepay_id})
            assert paid.json()["notify_status"] == 204, paid.text
        wallet = c.get("/api/v1/mp/coupons", headers=me).json()["items"]
        movie = next(p for p in c.get("/api/v1/mp/catalog", headers=me).json()["coupons"] if p["code"] == "tpp50")
    assert len(wallet) == 5 and movie["can_buy"] == 0
    assert {get(o["id"]).status for o in made} == {"completed"}
    assert scalar("SELECT count(*) FROM coupon_purchase_item") == 5
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 15
    _codes_consistent()
