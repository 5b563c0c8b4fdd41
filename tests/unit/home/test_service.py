"""工作台 figures per role (``gc_admin.home.service``): each role sees only what its sections cover, an
insurer only its programme's figures, a supplier (for now) nothing platform-wide."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from gc_admin.accounts.models import StaffUser
from gc_admin.accounts.service import Principal
from gc_admin.core.clock import utcnow
from gc_admin.coupons import service as coupons
from gc_admin.db import session_scope
from gc_admin.home.service import NO_FIGURES, home_figures
from gc_admin.orders.models import ServiceOrder
from gc_admin.users.models import MpUser
from tests.support import SETUP

PLATFORM_KEYS = {"users", "staff", "audit", "sms", "issued", "orders"}


def _phones(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]


@pytest.fixture
def figures_of(any_db):
    """Staff of every role; today's batches in two programmes and the platform's; orders; two users."""
    with session_scope() as s:
        coupons.create_programme(s, actor=SETUP, code="picc_gx", name="广西人保车主权益")
        coupons.create_programme(s, actor=SETUP, code="other", name="别的项目")
        for code, programme, funded_by in [("picc_flower", "picc_gx", "insurer"), ("picc_promo", "picc_gx", "platform"),
                                           ("other_flower", "other", "insurer"), ("plat_promo", None, "platform")]:
            coupons.create_product(s, actor=SETUP, code=code, name=code, kind="service_discount", face_fen=1000,
                                   programme_code=programme, funded_by=funded_by)
        for username, role, programme in [("boss", "admin", None), ("mgr", "manager", None), ("chen", "clerk", None),
                                          ("kefu", "service", None), ("picc", "insurer", "picc_gx"),
                                          ("bare", "insurer", None), ("sup", "supplier", None),
                                          ("daijia", "dispatcher", None)]:
            now = utcnow()  # rows as create_staff writes them (no password hashing: nobody signs in here)
            s.add(StaffUser(username=username, display_name=username, password_hash="-", role=role,
                            programme_code=programme, created_at=now, updated_at=now, password_changed_at=now))
        s.add(MpUser(phone="13500000001", created_at=utcnow()))
        s.add(MpUser(openid="o-1", created_at=utcnow()))
    week_ago = utcnow() - dt.timedelta(days=6)
    with session_scope() as s:
        issue = coupons.issue_batch
        issue(s, actor=SETUP, source="staff", batch_id="old", product_code="picc_flower", phones=_phones("1390000", 1),
              now=week_ago)
        issue(s, actor=SETUP, source="staff", batch_id="c1", product_code="picc_flower", phones=_phones("1391000", 2))
        issue(s, actor=SETUP, source="staff", batch_id="i1", product_code="picc_flower", phones=_phones("1392000", 1),
              programme_code="picc_gx")
        issue(s, actor=SETUP, source="staff", batch_id="o1", product_code="other_flower", phones=_phones("1393000", 3),
              programme_code="other")
        issue(s, actor=SETUP, source="staff", batch_id="p1", product_code="plat_promo", phones=_phones("1394000", 4))
        issue(s, actor=SETUP, source="staff", batch_id="p2", product_code="picc_promo", phones=_phones("1395000", 5))
        s.execute(sa.text("UPDATE coupon SET status = 'used' WHERE phone = '13910000000'"))
        user_id = s.execute(sa.text("SELECT id FROM mp_user WHERE phone = '13500000001'")).scalar_one()
        now = utcnow()
        for n, (type_, status) in enumerate([("driver", "paid"), ("flower", "paid"), ("topup", "accepted")], 1):
            s.add(ServiceOrder(order_no=f"GC2026{n:014d}", type=type_, status=status, user_id=user_id, list_fen=100,
                               payable_fen=100, paid_fen=100, pay_expires_at=now, created_at=now, updated_at=now,
                               paid_at=now))

    def figures(username: str):
        with session_scope() as s:
            u = s.exec(sa.select(StaffUser).where(StaffUser.username == username)).scalar_one()
            return home_figures(s, principal=Principal(u.id, u.username, u.display_name, u.role, None,
                                                       u.programme_code))

    return figures


def test_admin_sees_the_platform(figures_of):
    f = figures_of("boss")
    assert set(f.values) == PLATFORM_KEYS and f.note == ""
    assert (f.values["users"], f.values["staff"], f.values["issued"], f.values["orders"]) == (2, 8, 15, 2)


@pytest.mark.parametrize("username, keys", [
    ("mgr", {"users", "audit", "sms", "issued", "orders"}),  # no 员工与权限
    ("chen", {"users", "issued", "orders"}),  # no audit log, no SMS log, no staff
    ("kefu", {"users", "orders"}),
])
def test_platform_roles_see_what_their_sections_cover(figures_of, username, keys):
    f = figures_of(username)
    assert set(f.values) == keys
    assert f.values.get("issued", 15) == 15 and f.values["orders"] == 2 and f.values["users"] == 2


def test_insurer_sees_its_programmes_figures_only(figures_of):
    f = figures_of("picc")
    assert f.values == {"issued": 3,  # today, its programme's insurer-funded products (the clerk's batch too)
                        "programme_total": 4, "programme_available": 3, "programme_used": 1}
    assert f.note == "以下为「广西人保车主权益」项目的数据。"


def test_insurer_without_a_programme_sees_no_figures_and_why(figures_of):
    f = figures_of("bare")
    assert f.values == {} and "尚未关联保险项目" in f.note


def test_supplier_sees_nothing_platform_wide(figures_of):
    f = figures_of("sup")
    assert f.values == {} and f.note == NO_FIGURES


def test_dispatcher_counts_driver_orders_only(figures_of):
    f = figures_of("daijia")
    assert f.values == {"orders": 1}


def test_the_demo_insurer_acts_for_the_demo_programme(db):
    from gc_admin import demo

    with session_scope() as s:
        demo.load(s)
    with session_scope() as s:
        u = s.exec(sa.select(StaffUser).where(StaffUser.username == "insurer")).scalar_one()
        assert u.programme_code == demo.DEMO_PROGRAMME == "picc_gx"
        p = Principal(u.id, u.username, u.display_name, u.role, None, u.programme_code)
        f = home_figures(s, principal=p)
        batches, total = coupons.list_issuances(s, programme_code=p.programme())
    assert set(f.values) == {"issued", "programme_total", "programme_available", "programme_used"}
    assert f.values["programme_total"] > 0 and f.note == "以下为「广西人保车主权益」项目的数据。"
    assert total == 1 and batches[0].source == "partner"  # the club's batch; the clerks' are the platform's
