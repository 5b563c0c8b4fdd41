"""Server-side sorting of every staff list: each whitelisted key orders the rows in SQL (ascending and
descending, ties broken by id, empty values last) on SQLite and PostgreSQL; an unknown key — or an
attempt to smuggle SQL through the sort parameter — is refused; the order queue's default puts paid
orders nobody has accepted first, the longest-waiting first.

Each list gets a handful of rows whose values differ (and tie) on every sortable column; the expected
order is computed in Python from the very rows the list returns unsorted, so the test checks the
SQL, not a copy of it. Text values are lower-case ASCII so that SQLite's and PostgreSQL's collations
agree on them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import pytest
import sqlalchemy as sa

from gc_admin.accounts import service as accounts
from gc_admin.accounts.models import StaffUser
from gc_admin.audit import service as audit
from gc_admin.audit.service import Actor
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import InvalidInput
from gc_admin.core.sorting import order_by, parse_sort
from gc_admin.coupons import service as coupons
from gc_admin.db import Page, session_scope
from gc_admin.integrations.sms import service as sms
from gc_admin.integrations.sms.models import SmsMessage
from gc_admin.orders import service as orders
from gc_admin.payments import ledger
from gc_admin.users import service as users
from gc_admin.users.models import MpUser
from tests.support import SETUP
from tests.unit.orders.support import insert_order

T0 = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.timezone.utc)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def expected_ids(rows: list[Any], rid: Callable[[Any], int], value: Callable[[Any], Any], desc: bool) -> list[int]:
    """What ``ORDER BY value [DESC] NULLS LAST, id [DESC]`` must give."""
    present = sorted((r for r in rows if value(r) is not None), key=lambda r: (value(r), rid(r)), reverse=desc)
    empty = sorted((r for r in rows if value(r) is None), key=rid, reverse=desc)
    return [rid(r) for r in present + empty]


def check_every_key(keys, listing: Callable[[Any, str | None], list[Any]], *, rid: str = "id", **renamed: str) -> None:
    """Every key of a list's sort whitelist, both ways, orders ``listing(session, sort)`` as Python sorts the
    unsorted rows by that attribute (the key's name, or ``renamed[key]``), ties by ``rid``, empty values last."""

    def fetch(sort: str | None) -> list[Any]:
        with session_scope() as s:
            return listing(s, sort)

    row_id = attrgetter(rid)
    assert set(renamed) <= set(keys), "a renamed key is a whitelisted one"
    everything = fetch(None)
    assert len(everything) >= 4
    for key in keys:
        value = attrgetter(renamed.get(key, key))
        distinct = {value(r) for r in everything}
        assert len(distinct) >= 2, f"{key}: the data must differ on this column"
        for desc in (False, True):
            got = [row_id(r) for r in fetch(("-" if desc else "") + key)]
            assert got == expected_ids(everything, row_id, value, desc), (key, desc)


# --- the helper ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["nope", "-nope", "-", "--created_at", "created_at desc", "id; DROP TABLE mp_user",
                                 "created_at,(select 1)", "x" * 41])
def test_unknown_or_hostile_sort_keys_are_refused(bad):
    keys = {"created_at": sa.column("created_at")}
    with pytest.raises(InvalidInput) as err:
        parse_sort(bad, keys)
    assert err.value.code == "INVALID_SORT" and "排序" in err.value.message


def test_empty_sort_is_the_default_and_known_keys_carry_a_tie_break():
    keys = {"created_at": sa.column("created_at")}
    default = [sa.column("id").desc()]
    assert order_by(None, keys, tie=sa.column("id"), default=default) == default
    assert order_by("", keys, tie=sa.column("id"), default=default) == default
    asc = order_by("created_at", keys, tie=sa.column("id"), default=default)
    desc = order_by("-created_at", keys, tie=sa.column("id"), default=default)
    assert [str(c) for c in asc] == ["created_at ASC NULLS LAST", "id ASC"]
    assert [str(c) for c in desc] == ["created_at DESC NULLS LAST", "id DESC"]


def test_a_hostile_sort_reaches_no_query(any_db):
    with session_scope() as s:
        s.add(MpUser(phone="13800000001", created_at=T0))
    for fn in (lambda s: users.list_users(s, sort="id; DROP TABLE mp_user"),
               lambda s: orders.list_orders(s, sort="(SELECT 1)"),
               lambda s: audit.list_audit(s, sort="at desc, (select password_hash from staff_user)"),
               lambda s: coupons.list_stock_codes(s, sort="code"),  # the whole code is not a sort key either
               lambda s: ledger.list_ledger(s, sort="-note"),
               lambda s: sms.list_outbox(s, sort="content"),
               lambda s: accounts.list_staff(s, sort="password_hash"),
               lambda s: coupons.list_issuances(s, sort="fingerprint")):
        with session_scope() as s, pytest.raises(InvalidInput) as err:
            fn(s)
        assert err.value.code == "INVALID_SORT"
    with session_scope() as s:
        assert users.list_users(s).total == 1  # the table is still there


def test_staff_user_audit_and_outbox_lists_are_one_kind_of_page(any_db):
    """They page through db.paginate(): a db.Page of one page of the filtered rows and the filtered
    total, the limit kept within 1..MAX_PAGE and a negative offset read as 0."""
    with session_scope() as s:
        for i in range(3):
            accounts.create_staff(s, actor=SETUP, username=f"clerk{i}", display_name=f"c{i}", password="secret2026",
                                  role="clerk")  # each also writes an audit row
            s.add(MpUser(phone=f"1380000000{i}", created_at=T0))
            s.add(SmsMessage(phone=f"1380000000{i}", template="login_code", content="x", provider="outbox",
                             status="recorded", created_at=T0))
    lists = {"staff": lambda s, **kw: accounts.list_staff(s, q="clerk", **kw),
             "users": lambda s, **kw: users.list_users(s, phone="138", **kw),
             "audit": lambda s, **kw: audit.list_audit(s, action="staff.created", **kw),
             "outbox": lambda s, **kw: sms.list_outbox(s, phone="138", **kw)}
    with session_scope() as s:
        for name, fn in lists.items():
            page = fn(s, offset=-5, limit=2)
            assert isinstance(page, Page) and page.total == 3 and len(page.rows) == 2, name
            assert page.rows == fn(s, offset=0, limit=2).rows, name
            assert len(fn(s, limit=0).rows) == 1 and len(fn(s, offset=2, limit=10_000).rows) == 1, name


# --- each list ----------------------------------------------------------------------------------------------

def test_orders_sort_by_every_key(any_db):
    with session_scope() as s:
        u1, u2 = MpUser(phone="13800000001", created_at=T0), MpUser(phone="13800000002", created_at=T0)
        s.add_all([u1, u2])
        s.flush()
        insert_order(s, user_id=u1.id, no="GC0003", type="flower", status="paid", payable=3000, created=at(1), paid=at(5))
        insert_order(s, user_id=u2.id, no="GC0001", type="topup", status="created", payable=1000, created=at(3))
        insert_order(s, user_id=u1.id, no="GC0004", type="flower", status="completed", payable=3000, created=at(2),
                     paid=at(2))
        insert_order(s, user_id=u2.id, no="GC0002", type="driver", status="paid", payable=500, created=at(3), paid=at(4))
        insert_order(s, user_id=u2.id, no="GC0005", type="goods", status="cancelled", payable=0, created=at(0))

    check_every_key(orders.ORDER_SORT_KEYS, lambda s, sort: orders.list_orders(s, sort=sort, limit=200).rows)


def test_the_order_queue_puts_paid_unaccepted_orders_first_longest_waiting_first(any_db):
    with session_scope() as s:
        u = MpUser(phone="13800000001", created_at=T0)
        s.add(u)
        s.flush()
        ids = {}
        for no, status, created, paid in [
            ("GC01", "completed", at(0), at(1)),    # old and done
            ("GC02", "paid", at(10), at(30)),       # paid later
            ("GC03", "created", at(50), None),      # newest, unpaid
            ("GC04", "paid", at(20), at(25)),       # paid earliest: waiting longest
            ("GC05", "accepted", at(40), at(41)),   # accepted already: not waiting
            ("GC06", "paid", at(5), at(30)),        # paid at the same time as GC02, created earlier
        ]:
            ids[no] = insert_order(s, user_id=u.id, no=no, status=status, created=created, paid=paid).id
    with session_scope() as s:
        page = orders.list_orders(s, limit=200)
        first_two = orders.list_orders(s, limit=2)
        rest = orders.list_orders(s, offset=2, limit=200)
    # waiting: by paid time, the same paid time by id (older row first); then the rest newest first
    assert ids["GC02"] < ids["GC06"]
    assert [r.order_no for r in page.rows] == ["GC04", "GC02", "GC06", "GC05", "GC03", "GC01"]
    assert [r.order_no for r in first_two.rows + rest.rows] == [r.order_no for r in page.rows]  # pages agree
    assert [r.status for r in page.rows[:3]] == ["paid", "paid", "paid"]


def test_users_sort_by_every_key(any_db):
    with session_scope() as s:
        s.add_all([
            MpUser(phone="13800000003", city="nanning", created_at=at(3), last_login_at=at(9)),
            MpUser(phone=None, openid="o-1", city="guilin", created_at=at(1), last_login_at=None),
            MpUser(phone="13800000001", city="nanning", created_at=at(2), last_login_at=at(4)),
            MpUser(phone="13800000002", city="", created_at=at(2), last_login_at=at(4)),
        ])

    check_every_key(users.USER_SORT_KEYS, lambda s, sort: users.list_users(s, sort=sort, limit=200).rows)


def test_stock_codes_sort_by_every_key(any_db):
    with session_scope() as s:
        coupons.create_product(s, actor=SETUP, code="pa", name="alpha", kind="redemption_code", face_fen=5000,
                               cost_fen=4000, jump_app_id="wx1234567890abcdef", jump_path="p")
        coupons.create_product(s, actor=SETUP, code="pb", name="beta", kind="redemption_code", face_fen=1000,
                               cost_fen=800, jump_app_id="wx1234567890abcdef", jump_path="p")
    today = utcnow().date()

    def csv(rows):
        return ("code,expires_at,face,cost\n" + "".join(f"{c},{today + dt.timedelta(days=d)},{f},{k}\n"
                                                        for c, d, f, k in rows)).encode()

    with session_scope() as s:
        coupons.import_codes(s, actor=SETUP, product_code="pa", filename="a.csv",
                             data=csv([("AAAA0001ZZ", 90, 50, 40), ("AAAA0002ZZ", 120, 30, 20),
                                       ("AAAA0003ZZ", 5, 50, 40)]))  # the last one is discarded (too close)
    with session_scope() as s:
        coupons.import_codes(s, actor=SETUP, product_code="pb", filename="b.csv",
                             data=csv([("BBBB0001ZZ", 90, 10, 8), ("BBBB0002ZZ", 200, 10, 9)]))
    with session_scope() as s:
        coupons.issue_batch(s, actor=SETUP, source="staff", batch_id="S1", product_code="pb", phones=["13800000001"])

    check_every_key(coupons.STOCK_CODE_SORT_KEYS, lambda s, sort: coupons.list_stock_codes(s, sort=sort, limit=200).rows,
                    product="product_name")


def test_audit_sort_by_every_key(any_db):
    with session_scope() as s:
        for name, action, target, ip in [("bob", "staff.login", "staff", "10.0.0.2"),
                                         ("amy", "order.accept", "service_order", None),
                                         ("cat", "staff.login", None, "10.0.0.1"),
                                         ("amy", "coupon.issued", "coupon", "10.0.0.3")]:
            audit.record(s, actor=Actor("staff", "1", name, ip), action=action, target_type=target, target_id=1)

    check_every_key(audit.AUDIT_SORT_KEYS, lambda s, sort: audit.list_audit(s, sort=sort, limit=200).rows,
                    actor="actor_name", target="target_type")


def test_issuance_batches_sort_by_every_key(any_db):
    with session_scope() as s:
        coupons.create_product(s, actor=SETUP, code="wa", name="wash", kind="cashback", face_fen=2000,
                               category="car_wash")
        coupons.create_product(s, actor=SETUP, code="fa", name="fuel", kind="cashback", face_fen=5000, category="fuel")
    for batch, product, phones, per, who, minutes in [
        ("b3", "wa", ["13800000001", "13800000002", "123"], 1, "zed", 3),
        ("b1", "fa", ["13800000001"], 2, "amy", 1),
        ("b2", "wa", ["13800000003", "13800000003"], 3, "amy", 2),
        ("b4", "fa", ["13800000004", "13800000005"], 1, "bob", 2),
    ]:
        with session_scope() as s:
            coupons.issue_batch(s, actor=Actor("staff", "1", who), source="staff", batch_id=batch, product_code=product,
                                phones=phones, per_phone=per, now=at(minutes))
    with session_scope() as s:
        coupons.issue_batch(s, actor=Actor("partner", "p", "club"), source="partner", batch_id="p1",
                            product_code="fa", phones=["13800000009"], now=at(7))

    check_every_key(coupons.ISSUANCE_SORT_KEYS, lambda s, sort: coupons.list_issuances(s, sort=sort, limit=200)[0],
                    rid="issuance_id", product="product_name", actor="actor_name")


def test_ledger_sort_by_every_key(any_db):
    with session_scope() as s:
        u = MpUser(phone="13800000001", created_at=T0)
        s.add(u)
        s.flush()
        o1 = insert_order(s, user_id=u.id, no="GC0002", status="paid", paid=at(1))
        o2 = insert_order(s, user_id=u.id, no="GC0001", status="paid", paid=at(2))
        for kind, amount, provider, order, minutes in [("payment", 1000, "wechatpay", o1, 1),
                                                       ("refund", -500, "wechatpay", o1, 5),
                                                       ("points", 300, "internal", None, 3),
                                                       ("payment", 2000, "wechatpay", o2, 3)]:
            ledger.add_ledger(s, kind=kind, amount_fen=amount, ref=f"r{kind}{minutes}{amount}", provider=provider,
                                order_id=order.id if order else None, occurred_at=at(minutes))

    check_every_key(ledger.LEDGER_SORT_KEYS, lambda s, sort: ledger.list_ledger(s, sort=sort, limit=200).rows)


def test_sms_outbox_sort_by_every_key(any_db):
    with session_scope() as s:
        for phone, provider, status, minutes in [("13800000002", "outbox", "recorded", 2),
                                                 ("13800000001", "aliyun", "sent", 1),
                                                 ("13800000003", "tencent", "failed", 2),
                                                 ("13800000001", "aliyun", "sent", 4)]:
            s.add(SmsMessage(phone=phone, template="login_code", content="x", provider=provider, status=status,
                             created_at=at(minutes)))

    check_every_key(sms.OUTBOX_SORT_KEYS, lambda s, sort: sms.list_outbox(s, sort=sort, limit=200).rows)


def test_staff_sort_by_every_key(any_db):
    with session_scope() as s:
        for username, name, role in [("carol", "cc", "clerk"), ("alice", "zz", "admin"), ("bob", "cc", "service"),
                                     ("dave", "aa", "clerk")]:
            accounts.create_staff(s, actor=SETUP, username=username, display_name=name, password="secret2026", role=role)
    with session_scope() as s:
        for username, enabled, login in [("bob", False, at(3)), ("carol", True, at(1)), ("alice", True, None),
                                         ("dave", True, at(3))]:
            user = s.exec(sa.select(StaffUser).where(StaffUser.username == username)).scalar_one()
            user.enabled, user.last_login_at = enabled, login
            s.add(user)

    check_every_key(accounts.STAFF_SORT_KEYS, lambda s, sort: accounts.list_staff(s, sort=sort, limit=200).rows)
