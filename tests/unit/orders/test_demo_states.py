"""The demo (``python -m gc_admin demo``, what ``make run`` loads) leaves every column of every order type alive:
each (type, status) the state machine allows for that type has at least one order — including a driver order
whose fee left a remainder the user owes (awaiting payment, with its WeChat Pay order opened) and one handed
off to the third-party driver platform."""

from __future__ import annotations

from gc_admin import demo
from gc_admin.db import session_scope
from gc_admin.orders.demo import allowed_statuses
from gc_admin.orders.models import ORDER_TYPES
from tests.support import rows


def test_every_status_of_every_type_has_a_demo_order(db) -> None:
    with session_scope() as s:
        demo.load(s)
    have = {(t, st): n for t, st, n in rows("SELECT type, status, count(*) FROM service_order GROUP BY type, status")}
    wanted = {(t, st) for t in ORDER_TYPES for st in allowed_statuses(t)}
    assert {x for x in wanted if not have.get(x)} == set()
    assert {x for x in have if x not in wanted} == set()  # and nothing the state machine does not allow
    assert allowed_statuses("driver") >= {"arrived", "awaiting_payment"} and "shipped" in allowed_statuses("goods")
    # the remainder is owed through a real JSAPI order; the hand-off went to the platform with its order id
    assert rows("SELECT prepay_id IS NOT NULL, payable_fen > 0 FROM service_order WHERE type = 'driver' "
                "AND status = 'awaiting_payment'") == [(True, True)]
    handed = rows("SELECT status FROM service_order WHERE type = 'driver' AND fulfilment LIKE '%platform_order_id%' "
                  "AND fulfilment LIKE '%\"dispatch\": \"platform\"%'")
    assert handed == [("accepted",)], handed


def test_no_demo_user_signed_in_after_today(db) -> None:
    """The 用户 page shows 最近登录: the demo's users signed in between their sign-up and now, never in the future."""
    from sqlmodel import select

    from gc_admin.core.clock import as_utc, utcnow
    from gc_admin.users.models import MpUser

    with session_scope() as s:
        demo.load(s)
        times = [(as_utc(c), as_utc(last)) for c, last in s.exec(select(MpUser.created_at, MpUser.last_login_at)).all()
                 if last is not None]
    assert len(times) > 100
    assert all(created <= last <= utcnow() for created, last in times)
