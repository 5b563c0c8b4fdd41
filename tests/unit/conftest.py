"""Unit/API test fixtures: every test gets its own migrated database.

``db`` is the test's database: SQLite, or — when the test (or a fixture it uses, or the module's
``pytestmark = pytest.mark.usefixtures("any_db")``) asks for ``any_db`` — each configured database in
turn. ``api`` and ``make_staff`` stand on ``db``, so they follow a test onto PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gc_admin.core.clock import utcnow
from tests.support import PASSWORD, SETUP, fresh_pg, fresh_sqlite, make_user, migrate, use_database, wired

PG_URL = os.environ.get("GC_TEST_PG_URL")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test copies the file (fast and fully isolated)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_db(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    url = fresh_sqlite(sqlite_template, tmp_path)
    use_database(url)
    yield url


@pytest.fixture
def pg_db() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("GC_TEST_PG_URL is not set: PostgreSQL tests need a server")
    for url in fresh_pg(PG_URL):
        use_database(url)
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test on SQLite and (when configured) on PostgreSQL."""
    name = "sqlite_db" if request.param == "sqlite" else "pg_db"
    yield request.getfixturevalue(name)


@pytest.fixture
def db(request: pytest.FixtureRequest) -> str:
    """The test's database: the one ``any_db`` gives when the test runs on every database, else SQLite."""
    return request.getfixturevalue("any_db" if "any_db" in request.fixturenames else "sqlite_db")


@pytest.fixture
def api(db: str) -> Iterator[TestClient]:
    """The HTTP API in-process on the test's database, its WeChat and WeChat Pay clients routed into the
    simulators mounted in the same app (``tests.support.wired``)."""
    from gc_admin.api import build_api
    from gc_admin.integrations import sims

    sims.simulators.cache_clear()
    app = build_api()
    with TestClient(app, raise_server_exceptions=False) as tc, wired(app):
        yield tc


@pytest.fixture
def private_uploads(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Uploads and staging files go to this test's own folder, not the project's data/uploads."""
    from gc_admin.config import get_settings

    monkeypatch.setenv("GC_UPLOAD_DIR", str(tmp_path / "uploads"))
    get_settings.cache_clear()
    yield tmp_path / "uploads"
    get_settings.cache_clear()


@pytest.fixture
def make_staff(db: str):
    """``make_staff(username, role, password=..., name=..., **fields)``: a staff account on the test's database."""
    from gc_admin.accounts.service import create_staff
    from gc_admin.db import session_scope

    def _make(username: str, role: str, password: str = PASSWORD, **kw):
        with session_scope() as s:
            return create_staff(s, actor=SETUP, username=username, display_name=kw.pop("name", username),
                                password=password, role=role, **kw)

    return _make


# --- worlds the page tests of several features stand on ----------------------------------------------

@pytest.fixture
def team(make_staff) -> dict[str, int]:
    """An admin, a manager, a clerk and a target account (their ids by username), plus two mini-program users."""
    ids = {name: make_staff(name, role).id for name, role in
           [("boss", "admin"), ("mgr", "manager"), ("chen", "clerk"), ("target", "service")]}
    make_user("13812345678")
    make_user(None, openid="o-wx")
    return ids


@pytest.fixture
def coupon_shop(make_staff, private_uploads) -> None:
    """Staff of every interesting role (the insurer's account acts for the programme), the programme, a
    code product with 5 codes, a cashback product funded by the platform, and one coupon that expired
    unused (so an expiry run has work to do)."""
    import datetime as dt

    from gc_admin.coupons import service
    from gc_admin.db import session_scope
    from tests.unit.coupons.support import codes_file

    for name, role in [("boss", "admin"), ("mgr", "manager"), ("chen", "clerk"), ("kefu", "service")]:
        make_staff(name, role)
    with session_scope() as s:
        service.create_programme(s, actor=SETUP, code="picc_gx", name="广西人保车主权益")
    make_staff("picc", "insurer", programme_code="picc_gx")
    make_staff("bare", "insurer")  # an insurer account nobody gave a programme yet
    with session_scope() as s:
        service.create_product(s, actor=SETUP, code="tpp50", name="淘票票通兑券 50 元", kind="redemption_code",
                               face_fen=5000, cost_fen=4200, supplier="淘票票", programme_code="picc_gx",
                               jump_app_id="wxabcdef0123456789", jump_path="pages/index")
        service.create_product(s, actor=SETUP, code="wash20", name="洗车返现 20 元", kind="cashback",
                               face_fen=2000, cost_fen=2000, category="car_wash", funded_by="platform")
        service.import_codes(s, actor=SETUP, product_code="tpp50", data=codes_file("SHOP", 5), filename="seed.csv")
    make_user("13800000001", city="南宁")
    with session_scope() as s:
        service.issue_batch(s, actor=SETUP, source="staff", batch_id="OLD", product_code="wash20",
                            phones=["13800000009"], now=utcnow() - dt.timedelta(days=200))


@pytest.fixture
def office(make_staff, private_uploads) -> None:
    """Staff of every role; users, orders, codes, audit rows and SMS enough to fill more than one page."""
    import datetime as dt

    from gc_admin.coupons import service as coupons
    from gc_admin.db import session_scope
    from gc_admin.integrations.sms.models import SmsMessage
    from gc_admin.users.models import MpUser
    from tests.unit.orders.support import insert_order

    for name, role in [("boss", "admin"), ("mgr", "manager"), ("chen", "clerk"), ("kefu", "service"),
                       ("picc", "insurer"), ("gys", "supplier")]:
        make_staff(name, role)
    today = utcnow().date()
    with session_scope() as s:
        coupons.create_programme(s, actor=SETUP, code="picc_gx", name="广西人保车主权益")
        coupons.create_product(s, actor=SETUP, code="tpp50", name="淘票票通兑券 50 元", kind="redemption_code",
                               face_fen=5000, cost_fen=4200, programme_code="picc_gx", jump_app_id="wx1234567890abcdef",
                               jump_path="p")
        coupons.create_product(s, actor=SETUP, code="wash20", name="洗车返现 20 元", kind="cashback", face_fen=2000,
                               category="car_wash", funded_by="platform")
        coupons.import_codes(s, actor=SETUP, product_code="tpp50", filename="seed.csv", data=(
            "券码,有效期\n" + "".join(f"SEED{i:06d}ZZ,{today + dt.timedelta(days=60 + i)}\n" for i in range(30))).encode())
        users = [MpUser(phone=f"138000000{i:02d}", city="南宁", created_at=utcnow()) for i in range(25)]
        s.add_all(users)
        s.flush()
        for i, u in enumerate(users):
            insert_order(s, user_id=u.id, no=f"GC{i:04d}", status="paid" if i % 2 else "completed",
                         created=utcnow() - dt.timedelta(minutes=i), paid=utcnow() - dt.timedelta(minutes=i))
        for i in range(3):
            s.add(SmsMessage(phone="13800000001", template="login_code", content=f"验证码 {i}", provider="outbox",
                             status="recorded", created_at=utcnow()))


@pytest.fixture
def paid(make_staff):
    """Staff of every role (``orders.support.EVERY_ROLE``); a user who bought 3 × ¥45 movie coupons and paid through
    the simulator: ``(wired, the order, the user)``, the simulator wired while the test runs."""
    from tests.unit.orders.support import EVERY_ROLE, paid_order

    for name, role in EVERY_ROLE:
        make_staff(name, role)
    with paid_order() as world:
        yield world
