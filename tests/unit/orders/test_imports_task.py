"""Applying a third-party order sheet is the ``orders.import`` task (the preview stays in the request): the request
records the import (queued, its bytes in ``task_file``), defers ``orders-import:<id>`` with the id only and waits for
the report; past ``GC_TASKS_WAIT_SECONDS`` the API answers 202 and ``GET /admin/orders/imports/{id}`` gives it. A
second run changes nothing; a failure on our side ends ``failed`` (500 ORDER_IMPORT_ERROR); the ``orders.unfinished``
sweep defers again an import whose job was lost. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from gc_admin import tasks as _registry  # noqa: F401  (every task registered, as in the app)
from gc_admin.config import get_settings
from gc_admin.core import tasks
from gc_admin.core.clock import utcnow
from gc_admin.core.principal import Actor
from gc_admin.db import session_scope
from gc_admin.orders.imports import flows, service
from gc_admin.orders.imports.models import OrderImport
from tests.support import api_error, rows, scalar, staff_headers
from tests.unit.orders.test_imports import MAPPING, SHEET
from tests.unit.tasks.support import queued_jobs

pytestmark = pytest.mark.usefixtures("any_db")

A = "/api/v1/admin"
CLERK = Actor("staff", "3", "王内勤")


@pytest.fixture
def mapped():
    with session_scope() as s:
        service.save_mapping(s, actor=CLERK, source="meituan", mapping=MAPPING)


def _jobs() -> list[tuple[str, str, dict]]:
    return queued_jobs(flows.IMPORT_TASK)


def _effects() -> tuple:
    return (rows("SELECT status, imported, duplicates, failed FROM order_import ORDER BY id"),
            scalar("SELECT count(*) FROM service_order"), scalar("SELECT count(*) FROM order_event"),
            scalar("SELECT count(*) FROM mp_user"), scalar("SELECT count(*) FROM audit_log"),
            scalar("SELECT count(*) FROM task_file"))


def test_the_request_defers_the_task_with_the_id_only_and_a_second_run_changes_nothing(mapped):
    rec = flows.import_file(actor=CLERK, source="meituan", data=SHEET, filename="美团.csv")
    assert (rec.status, rec.imported, rec.duplicates, rec.failed, rec.rows) == ("done", 3, 0, 3, 6)
    assert rec.filename == "美团.csv" and rec.digest and rec.created_by == CLERK.name
    assert _jobs() == [("orders.import", f"orders-import:{rec.id}", {"import_id": rec.id})]
    assert rows("SELECT task, status FROM task_run WHERE task = 'orders.import'") == [("orders.import", "succeeded")]
    results = repr(rows("SELECT result, error FROM task_run"))
    assert "13812340001" not in results and "MT001" not in results  # the sheet never goes through the queue
    after = _effects()
    assert after == ([("done", 3, 0, 3)], 3, 3, 2, after[4], 0)
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'orders.imported'") == 1
    # a late duplicate of the job: the import is final, nothing is claimed, nothing written
    assert flows.run_import(import_id=rec.id) == {"import_id": rec.id, "status": "done", "imported": 3}
    assert _effects() == after


def test_the_task_claims_the_row_in_the_unit_that_inserts_the_orders(mapped, monkeypatch):
    """A run that dies after its claim but before its commit leaves the row unfinished and no order: the
    retry imports them all, once."""
    with session_scope() as s:
        import_id = service.queue_import(s, actor=CLERK, source="meituan", filename="k.csv")
        tasks.store_file(s, key=flows.import_key(import_id), data=SHEET)
    real_drop = tasks.drop_file

    def killed(session, *, key):  # the orders are inserted in this unit of work; it never commits
        assert scalar("SELECT count(*) FROM service_order") == 0  # (not visible outside it)
        raise KeyboardInterrupt  # a BaseException, as a kill would end the run: no failure recorded

    monkeypatch.setattr(tasks, "drop_file", killed)
    with pytest.raises(KeyboardInterrupt):
        flows.run_import(import_id=import_id)
    assert rows("SELECT status FROM order_import") == [("running",)]
    assert (scalar("SELECT count(*) FROM service_order"), scalar("SELECT count(*) FROM task_file")) == (0, 1)
    monkeypatch.setattr(tasks, "drop_file", real_drop)
    assert flows.run_import(import_id=import_id)["status"] == "done"
    assert _effects()[:4] == ([("done", 3, 0, 3)], 3, 3, 2)
    assert scalar("SELECT count(*) FROM task_file") == 0


def test_when_the_wait_runs_out_the_api_answers_202_and_the_get_gives_the_report(api, make_staff, mapped,
                                                                                  monkeypatch):
    make_staff("chen", "clerk")
    make_staff("kefu", "service")
    clerk = staff_headers(api, "chen")
    monkeypatch.setenv("GC_TASKS_WAIT_SECONDS", "0")
    get_settings.cache_clear()
    monkeypatch.setattr(tasks, "worker_alive", lambda: True)  # a worker is up (and busy): the request only waits
    sent = api.post(A + "/orders/imports", data={"source": "meituan", "dry_run": "false"},
                    files={"file": ("美团订单.csv", SHEET, "text/csv")}, headers=clerk)
    assert sent.status_code == 202, sent.text
    import_id = sent.json()["import_id"]
    assert sent.json() == {"import_id": import_id, "status": "queued"}
    queued = api.get(f"{A}/orders/imports/{import_id}", headers=clerk)
    assert queued.status_code == 200, queued.text
    assert (queued.json()["status"], queued.json()["imported"], queued.json()["items"]) == ("queued", 0, [])
    assert scalar("SELECT count(*) FROM service_order") == 0
    tasks.run_waiting()  # the worker gets to it
    done = api.get(f"{A}/orders/imports/{import_id}", headers=clerk).json()
    assert (done["status"], done["dry_run"], done["source"], done["imported"], done["duplicates"], done["failed"]) == (
        "done", False, "meituan", 3, 0, 3)
    assert [r["outcome"] for r in done["items"]] == ["imported", "imported", "error", "error", "error", "imported"]
    assert scalar("SELECT count(*) FROM service_order") == 3
    api_error(api.get(f"{A}/orders/imports/{import_id}", headers=staff_headers(api, "kefu")), 403, "FORBIDDEN")
    api_error(api.get(f"{A}/orders/imports/{import_id + 1}", headers=clerk), 404, "IMPORT_NOT_FOUND")
    get_settings.cache_clear()


def test_a_failure_on_our_side_ends_failed_with_nothing_imported(api, make_staff, mapped, monkeypatch):
    make_staff("chen", "clerk")
    clerk = staff_headers(api, "chen")
    real = service.apply

    def broken(session, **kw):
        real(session, **kw)  # the orders written in the task's unit of work, then our bug
        raise RuntimeError("bug")

    monkeypatch.setattr(service, "apply", broken)
    sent = api.post(A + "/orders/imports", data={"source": "meituan", "dry_run": "false"},
                    files={"file": ("美团订单.csv", SHEET, "text/csv")}, headers=clerk)
    api_error(sent, 500, "ORDER_IMPORT_ERROR")
    import_id = sent.json()["error"]["details"]["import_id"]
    assert rows("SELECT status, error_code FROM order_import") == [("failed", "ORDER_IMPORT_ERROR")]
    assert (scalar("SELECT count(*) FROM service_order"), scalar("SELECT count(*) FROM task_file")) == (0, 0)
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'orders.import_failed'") == 1
    got = api.get(f"{A}/orders/imports/{import_id}", headers=clerk).json()
    assert (got["status"], got["error_code"], got["imported"]) == ("failed", "ORDER_IMPORT_ERROR", 0)
    # not retried: the queue's job succeeded (the failure is on record), a later run changes nothing
    monkeypatch.setattr(service, "apply", real)
    assert flows.run_import(import_id=import_id)["status"] == "failed"
    assert scalar("SELECT count(*) FROM service_order") == 0
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'orders.import_failed'") == 1


def test_a_sheet_refused_as_a_whole_is_failed_with_its_code(api, make_staff, mapped):
    make_staff("chen", "clerk")
    clerk = staff_headers(api, "chen")
    sent = api.post(A + "/orders/imports", data={"source": "meituan", "dry_run": "false"},
                    files={"file": ("x.csv", "订单编号,别的\nMT1,2\n".encode(), "text/csv")}, headers=clerk)
    api_error(sent, 422, "MISSING_COLUMN")
    assert rows("SELECT status, error_code FROM order_import") == [("failed", "MISSING_COLUMN")]
    assert scalar("SELECT count(*) FROM task_file") == 0
    # no mapping for the source: refused at once, nothing queued
    api_error(api.post(A + "/orders/imports", data={"source": "jd", "dry_run": "false"},
                       files={"file": ("x.csv", SHEET, "text/csv")}, headers=clerk), 404, "MAPPING_NOT_FOUND")
    assert scalar("SELECT count(*) FROM order_import") == 1 and len(_jobs()) == 1


def test_the_sweep_defers_again_an_import_whose_job_was_lost(mapped):
    from gc_admin.jobs import JOBS, run_once

    (sweep,) = [j for j in JOBS if j.name == "orders.unfinished"]
    with session_scope() as s:  # what the request committed; its job then lost
        import_id = service.queue_import(s, actor=CLERK, source="meituan", filename="lost.csv")
        tasks.store_file(s, key=flows.import_key(import_id), data=SHEET)
    assert run_once(sweep) == {"imports": 0, "shipments": 0}  # not yet: its job may still be on its way
    with session_scope() as s:
        s.execute(update(OrderImport).values(created_at=utcnow() - dt.timedelta(minutes=5)))
    assert run_once(sweep) == {"imports": 1, "shipments": 0}
    tasks.run_waiting()
    assert _effects()[:2] == ([("done", 3, 0, 3)], 3)
    assert run_once(sweep) == {"imports": 0, "shipments": 0}  # nothing unfinished any more


def test_a_full_sheet_is_imported(mapped):
    """5,000 rows, the most a sheet may hold: more bind parameters than one INSERT may carry (PostgreSQL 65,535)."""
    n = 5_000
    sheet = ("订单编号,买家手机,商品,实付金额,件数,收货城市\n"
             + "".join(f"F{i:05d},138{i:08d},车载香薰,12.80,1,南宁\n" for i in range(n))).encode()
    rec = flows.import_file(actor=CLERK, source="meituan", data=sheet, filename="full.csv")
    assert (rec.status, rec.rows, rec.imported, rec.failed) == ("done", n, n, 0)
    assert (scalar("SELECT count(DISTINCT external_id) FROM service_order"), scalar("SELECT count(*) FROM order_event")) == (n, n)
