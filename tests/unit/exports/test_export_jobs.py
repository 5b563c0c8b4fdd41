"""Issue 9: Excel exports are the ``exports.build`` task (``gc_admin.core.export_jobs``): each registered kind builds
through the task what the request used to build itself, the role's scope comes from the export row (never the
filters), a crash goes on record ``EXPORT_ERROR``, a second run stores no second file, past the wait the API answers
202 and the export is followed and downloaded once, only by its asker, and the sweep re-defers lost exports and
drops old files. On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io

import polars as pl
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from gc_admin import tasks as _registry  # noqa: F401  (every task and export kind registered, as in a worker)
from gc_admin.accounts import service as accounts
from gc_admin.audit.service import audit_frame
from gc_admin.config import get_settings
from gc_admin.core import export_jobs, tasks
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import DomainError, InvalidInput
from gc_admin.core.exports import xlsx_bytes
from gc_admin.core.models import ExportJob, TaskFile
from gc_admin.coupons import service as coupons
from gc_admin.coupons.issuance.service import issuances_frame
from gc_admin.coupons.stock.service import stock_codes_frame
from gc_admin.db import session_scope
from gc_admin.orders.models import ServiceOrder
from gc_admin.orders.service import orders_frame
from gc_admin.payments.ledger import ledger_frame
from gc_admin.payments.state import LedgerState
from gc_admin.users.service import users_frame
from tests.support import PASSWORD, SETUP, api_error, drain, run, sign_in, state_of, toasts
from tests.unit.orders.goods_support import goods_world, paid_goods_order

pytestmark = pytest.mark.usefixtures("any_db")

A = "/api/v1/admin"


def _principal(username: str):
    with session_scope() as s:
        return accounts.authenticate(s, username=username, password=PASSWORD)


def _token(username: str) -> dict[str, str]:
    with session_scope() as s:
        token, _ = accounts.start_session(s, principal=accounts.authenticate(s, username=username, password=PASSWORD),
                                          kind="api")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def shop(api, make_staff):
    """Two suppliers' goods orders paid (orders, users, ledger rows, audit rows), codes in stock, a batch issued."""
    goods_world(make_staff)
    make_staff("boss", "admin")
    make_staff("mgr", "manager")
    for phone, code in (("13812340301", "mug"), ("13812340302", "mug"), ("13812340303", "aroma1")):
        paid_goods_order(api, phone, code, openid_prefix="oExport")
    with session_scope() as s:
        coupons.create_product(s, actor=SETUP, code="exp_tpp", name="淘票票 10 元", kind="redemption_code",
                               face_fen=1000, cost_fen=860)
        coupons.import_codes(s, actor=SETUP, product_code="exp_tpp", filename="seed.csv",
                             data=b"code,expires_at\nEXPCODE00001,2099-12-31\nEXPCODE00002,2099-12-31\n")
        coupons.issue_batch(s, actor=SETUP, source="staff", batch_id="B-EXPORT", product_code="exp_tpp",
                            phones=["13900000071"])
    return api


def _sheet(data: bytes) -> pl.DataFrame:
    return pl.read_excel(io.BytesIO(data))


def _files() -> list[str]:
    with session_scope() as s:
        return sorted(s.exec(select(TaskFile.key)).all())


def _rows(export_id: int) -> ExportJob:
    with session_scope() as s:
        return export_jobs.get_export(s, export_id=export_id)


# --- every kind, through the task, as the old path built it --------------------------------------------------

def test_each_kind_builds_through_the_task_what_the_request_used_to_build(shop):
    boss = _principal("boss")
    since = (utcnow() - dt.timedelta(days=1)).isoformat()
    cases = {  # kind: (the page's filters, the old in-request frame of the same list)
        "orders": ({"status": "paid", "sort": "-order_no"},
                   lambda s: orders_frame(s, status="paid", sort="-order_no")),
        "audit": ({"since": since, "sort": "at"}, lambda s: audit_frame(s, since=dt.datetime.fromisoformat(since),
                                                                         sort="at")),
        "users": ({"phone": "138"}, lambda s: users_frame(s, phone="138")),
        "issuances": ({"sort": None}, lambda s: issuances_frame(s)),
        "stock_codes": ({"product_code": "exp_tpp"}, lambda s: stock_codes_frame(s, product_code="exp_tpp")),
        "ledger": ({"kind": "payment", "date_from": "", "sort": "amount_fen"},
                   lambda s: ledger_frame(s, filters=_ledger_payments(), sort="amount_fen")),
    }
    assert set(cases) == set(export_jobs.KINDS)  # every registered kind is checked here
    for kind, (filters, old) in cases.items():
        rec, data = export_jobs.export_file(kind, principal=boss, filters=filters)
        with session_scope() as s:
            expected = _sheet(xlsx_bytes(old(s), sheet=export_jobs.kind_of(kind).title))
        got = _sheet(data or b"")
        assert rec.status == "done" and rec.rows == got.height == expected.height > 0, kind
        assert got.columns == expected.columns, kind
        assert got.equals(expected), kind
        assert rec.filename.endswith(".xlsx") and rec.filename.startswith(export_jobs.kind_of(kind).title), kind
    # masking as before: phones in the orders, users and codes exports, the codes themselves
    orders = _sheet(export_jobs.export_file("orders", principal=boss, filters={})[1] or b"")
    assert orders.height == 3 and all("****" in p for p in orders["用户手机号"].to_list())
    codes = _sheet(export_jobs.export_file("stock_codes", principal=boss, filters={})[1] or b"")
    assert "EXPCODE00001" not in codes["券码（部分隐藏）"].to_list() and codes.height == 2
    assert _files() == []  # each file went with its one download


def _ledger_payments():
    from gc_admin.payments.ledger import ledger_filter

    return ledger_filter(kind="payment")


# --- scope from the row ------------------------------------------------------------------------------------

def test_a_suppliers_orders_export_holds_only_its_orders_whatever_the_filters_say(shop):
    taoci = _principal("sup2")  # linked to the supplier taoci: 2 of the 3 orders
    asked = {"supplier": "xiangfen", "types": ["goods", "flower"], "type": None, "q": None}
    rec, data = export_jobs.export_file("orders", principal=taoci, filters=asked)
    frame = _sheet(data or b"")
    assert (rec.status, rec.rows, frame.height) == ("done", 2, 2)
    with session_scope() as s:
        mine = set(s.exec(select(ServiceOrder.order_no).where(col(ServiceOrder.supplier_code) == "taoci")).all())
    assert set(frame["订单号"].to_list()) == mine and len(mine) == 2
    with session_scope() as s:
        row = export_jobs.get_export(s, export_id=rec.id)
    assert (row.actor_role, row.supplier_code, row.actor_id) == ("supplier", "taoci", taoci.id)
    # the task reads the scope from the row: a row recorded for the other supplier exports that supplier's only,
    # and a dispatcher's row no goods order at all
    for role, supplier, expected in (("supplier", "xiangfen", 1), ("dispatcher", None, 0)):
        with session_scope() as s:
            export_id = export_jobs.queue_export(s, kind="orders", principal=taoci, filters=asked)
            s.execute(update(ExportJob).where(col(ExportJob.id) == export_id)
                      .values(actor_role=role, supplier_code=supplier))
        export_jobs.run_export(export_id=export_id)
        assert _rows(export_id).rows == expected, role
    # an unlinked supplier sees no orders: refused, on record with its code
    with pytest.raises(DomainError) as refused:
        export_jobs.export_file("orders", principal=dataclasses.replace(taoci, supplier_code=None), filters={})
    assert (refused.value.code, refused.value.status) == ("NO_ORDERS", 403)


def test_an_insurer_without_a_programme_is_refused_on_record(shop, make_staff):
    make_staff("picc_none", "insurer")
    with pytest.raises(DomainError) as refused:
        export_jobs.export_file("issuances", principal=_principal("picc_none"), filters={})
    assert (refused.value.code, refused.value.status) == ("NO_PROGRAMME", 403)
    with session_scope() as s:
        rec = s.exec(select(ExportJob)).one()
    assert (rec.status, rec.error_code, rec.error_status) == ("failed", "NO_PROGRAMME", 403)
    assert _files() == []


def test_a_bad_filter_is_refused_by_the_builder(shop):
    with pytest.raises(DomainError) as refused:
        export_jobs.export_file("audit", principal=_principal("boss"), filters={"since": "yesterday"})
    assert refused.value.code == "INVALID_EXPORT_FILTER" and refused.value.status == 422
    with pytest.raises(DomainError) as unknown:
        export_jobs.export_file("orders", principal=_principal("boss"), filters={"status": "nope"})
    assert unknown.value.code == "INVALID_STATUS"


def test_a_role_that_may_not_use_the_section_is_refused_before_and_in_the_task(shop):
    with pytest.raises(DomainError) as refused:
        export_jobs.export_file("ledger", principal=_principal("chen"), filters={})  # a clerk: no 流水
    assert refused.value.code == "FORBIDDEN"
    with session_scope() as s:
        assert s.exec(select(ExportJob)).all() == []  # nothing queued
        export_id = export_jobs.queue_export(s, kind="ledger", principal=_principal("chen"), filters={})
    export_jobs.run_export(export_id=export_id)
    assert (_rows(export_id).status, _rows(export_id).error_code) == ("failed", "FORBIDDEN")


# --- crash, twice, the sweep -----------------------------------------------------------------------------

def test_a_crash_is_on_record_as_export_error_and_answers_500(shop, monkeypatch):
    def broken(session, who, filters):
        raise RuntimeError("a bug")

    monkeypatch.setitem(export_jobs.KINDS, "broken", export_jobs.ExportKind("broken", "坏", "home", broken))
    with pytest.raises(export_jobs.ExportCrashed) as crashed:
        export_jobs.export_file("broken", principal=_principal("boss"), filters={})
    assert crashed.value.status == 500 and crashed.value.code == "EXPORT_ERROR"
    rec = _rows(crashed.value.details["export_id"])
    assert (rec.status, rec.error_code, rec.error_status, rec.error) == ("failed", "EXPORT_ERROR", 500,
                                                                          export_jobs.CRASHED)
    assert _files() == []

    def refuses(session, who, filters):
        raise InvalidInput("条件太宽", code="TOO_WIDE")

    monkeypatch.setitem(export_jobs.KINDS, "refuses", export_jobs.ExportKind("refuses", "拒", "home", refuses))
    with pytest.raises(DomainError) as refused:
        export_jobs.export_file("refuses", principal=_principal("boss"), filters={})
    assert (refused.value.code, refused.value.status, refused.value.message) == ("TOO_WIDE", 422, "条件太宽")


def test_the_task_run_twice_stores_one_file(shop):
    boss = _principal("boss")
    with session_scope() as s:
        export_id = export_jobs.queue_export(s, kind="users", principal=boss, filters={})
    first = export_jobs.run_export(export_id=export_id)
    second = export_jobs.run_export(export_id=export_id)
    assert first == second == {"export_id": export_id, "status": "done", "rows": 3}
    assert _files() == [f"export:{export_id}"]
    with session_scope() as s:
        _, data = export_jobs.take_file(s, export_id=export_id, user_id=boss.id)
    assert _sheet(data).height == 3
    export_jobs.run_export(export_id=export_id)  # a late duplicate after the download: still nothing stored
    assert _files() == []


def test_the_sweep_defers_lost_exports_again_and_drops_old_files(shop):
    boss = _principal("boss")
    now = utcnow()
    with session_scope() as s:  # an export whose job was lost (never deferred), 5 minutes old
        lost = export_jobs.queue_export(s, kind="users", principal=boss, filters={})
        fresh = export_jobs.queue_export(s, kind="users", principal=boss, filters={"phone": "1381"})
        s.execute(update(ExportJob).where(col(ExportJob.id) == lost).values(created_at=now - dt.timedelta(minutes=5)))
    with session_scope() as s:
        assert export_jobs.sweep(s, now=now) == {"deferred": 1, "files_dropped": 0}
    tasks.run_waiting()
    assert (_rows(lost).status, _rows(fresh).status) == ("done", "queued")  # the fresh one is not the sweep's yet
    export_jobs.run_export(export_id=fresh)
    # a file an hour old nobody downloaded is dropped; the newer one stays
    with session_scope() as s:
        s.execute(update(TaskFile).where(col(TaskFile.key) == f"export:{lost}")
                  .values(created_at=now - dt.timedelta(minutes=61)))
    with session_scope() as s:
        assert export_jobs.sweep(s, now=now) == {"deferred": 0, "files_dropped": 1}
    assert _files() == [f"export:{fresh}"]
    with session_scope() as s, pytest.raises(export_jobs.ExportGone):
        export_jobs.take_file(s, export_id=lost, user_id=boss.id)


# --- past the wait: 202, the status, the one download, only the asker's ------------------------------------

@pytest.fixture
def no_wait(monkeypatch):
    """A worker seems alive (so the request does not run the task itself) and the request waits 0 s: the export
    stays queued until :func:`tasks.run_waiting` plays the worker."""
    monkeypatch.setenv("GC_TASKS_WAIT_SECONDS", "0")
    get_settings.cache_clear()
    monkeypatch.setattr(tasks, "worker_alive", lambda: True)
    yield
    get_settings.cache_clear()


def test_past_the_wait_the_ledger_export_answers_202_and_is_downloaded_once_by_its_asker(shop, no_wait):
    api, mgr = shop, _token("mgr")
    queued = api.get(A + "/ledger.xlsx", params={"kind": "payment"}, headers=mgr)
    assert queued.status_code == 202, queued.text
    export_id = queued.json()["export_id"]
    assert queued.json() == {"export_id": export_id, "status": "queued"}
    status = api.get(f"{A}/exports/{export_id}", headers=mgr).json()
    assert (status["status"], status["kind"], status["rows"], status["downloaded"]) == ("queued", "ledger", 0, False)
    api_error(api.get(f"{A}/exports/{export_id}/file", headers=mgr), 409, "EXPORT_NOT_READY")
    tasks.run_waiting()  # the worker
    status = api.get(f"{A}/exports/{export_id}", headers=mgr).json()
    assert (status["status"], status["rows"], status["title"]) == ("done", 3, "流水")
    for other in ("boss", "sup2", "chen"):  # another member's id: not found, as an id that is not one
        api_error(api.get(f"{A}/exports/{export_id}", headers=_token(other)), 404, "EXPORT_NOT_FOUND")
        api_error(api.get(f"{A}/exports/{export_id}/file", headers=_token(other)), 404, "EXPORT_NOT_FOUND")
    api_error(api.get(f"{A}/exports/1999999999", headers=mgr), 404, "EXPORT_NOT_FOUND")
    got = api.get(f"{A}/exports/{export_id}/file", headers=mgr)
    assert got.status_code == 200 and "filename*=UTF-8''" in got.headers["content-disposition"]
    assert _sheet(got.content).height == 3 and _files() == []  # the bytes went with the download
    api_error(api.get(f"{A}/exports/{export_id}/file", headers=mgr), 410, "EXPORT_GONE")
    assert api.get(f"{A}/exports/{export_id}", headers=mgr).json()["downloaded"] is True
    # the same export again after the download: a new one (not the one already handed over)
    again = api.get(A + "/ledger.xlsx", params={"kind": "payment"}, headers=mgr)
    assert again.status_code == 202 and again.json()["export_id"] != export_id


def test_past_the_wait_the_page_says_so_and_the_next_click_gets_the_same_export(shop, no_wait):
    async def click():
        led = await state_of(LedgerState, sign_in("mgr"))
        await led.load()
        return await drain(led.export()), led.exporting

    events, exporting = run(click())
    assert toasts(events) == [("info", export_jobs.PENDING)] and not exporting
    events, _ = run(click())  # still being built: the same export, not a second one
    assert toasts(events) == [("info", export_jobs.PENDING)]
    with session_scope() as s:
        assert len(s.exec(select(ExportJob)).all()) == 1
    tasks.run_waiting()
    events, _ = run(click())
    with session_scope() as s:
        n = ledger_frame(s).height
    assert n >= 3 and toasts(events) == [("success", f"已导出 {n} 条流水记录")]
    with session_scope() as s:
        [rec] = s.exec(select(ExportJob)).all()
    assert rec.downloaded_at is not None and _files() == []
