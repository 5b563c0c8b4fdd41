"""Applying a shipment sheet (批量发货) is the ``orders.ship_import`` task (the preview stays in the request): the
request records the import (queued, with the uploader and their scope; its bytes in ``task_file``), defers
``shipments-import:<id>`` with the id only and waits for the report; past ``GC_TASKS_WAIT_SECONDS`` the API answers
202 and ``GET /admin/shipments/imports/{id}`` gives it (a supplier: only its own). The task ships in the scope the
request had; a second run ships nothing again; a refused sheet ends ``failed`` with its code, a failure on our side
``failed`` with 500 SHIPMENT_IMPORT_ERROR, nothing shipped either way; ten identical uploads at once ship each
order once; the ``orders.unfinished`` sweep defers again an import whose job was lost. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update
from sqlmodel import Session

from gc_admin import tasks as _registry  # noqa: F401  (every task registered, as in the app)
from gc_admin.config import get_settings
from gc_admin.core import tasks
from gc_admin.core.clock import utcnow
from gc_admin.core.params import ID_MAX
from gc_admin.core.principal import Actor
from gc_admin.db import get_engine, lock_for_write, session_scope
from gc_admin.orders.suppliers import flows, shipments
from gc_admin.orders.suppliers.models import ShipmentImport
from tests.support import api_error, race, rows, scalar, staff_headers
from tests.unit.tasks.support import queued_jobs
from tests.unit.orders.goods_support import ship_sheet, shipping_world

pytestmark = pytest.mark.usefixtures("any_db")

A = "/api/v1/admin"
SUP = Actor("staff", "901", "香氛发货员")  # (the actor the task acts as: any staff id; the audit rows name it)


@pytest.fixture
def world(api, make_staff):
    return shipping_world(api, make_staff)


def _sheet(made: list[dict], mug: dict) -> bytes:
    """Two of xiangfen's orders to ship, then taoci's (not xiangfen's), an unknown one, a row without a carrier
    and a repeat of the first order."""
    return ship_sheet([(made[0]["order_no"], "顺丰速运", "SF001"), (made[1]["order_no"].lower(), "中通", "ZT002"),
                       (mug["order_no"], "顺丰速运", "SF003"), ("GC000", "顺丰速运", "SF004"),
                       (made[2]["order_no"], "", "SF005"), (made[0]["order_no"], "顺丰速运", "SF006")])


def _post(api, headers, data: bytes):
    return api.post(A + "/shipments/imports", data={"dry_run": "false"},
                    files={"file": ("发货.csv", data, "text/csv")}, headers=headers)


def _jobs() -> list[tuple[str, str, dict]]:
    return queued_jobs(flows.SHIP_TASK)


def _effects() -> tuple:
    return (rows("SELECT status, shipped, skipped, failed FROM shipment_import ORDER BY id"),
            rows("SELECT id, status FROM service_order ORDER BY id"),
            scalar("SELECT count(*) FROM order_event WHERE action = 'ship'"), scalar("SELECT count(*) FROM audit_log"),
            scalar("SELECT count(*) FROM task_file"))


def _shipped() -> int:
    return scalar("SELECT count(*) FROM service_order WHERE status = 'shipped'")


def _inline_report(data: bytes, *, role: str, supplier_code: str | None) -> list[dict]:
    """What applying the sheet inside the request (before the task) reported — computed, then rolled back."""
    scope = shipments.ship_scope(role, supplier_code=supplier_code)
    assert scope is not None
    with Session(get_engine()) as s:
        lock_for_write(s)  # SQLite: a real transaction first (a savepoint alone would commit when released)
        report = list(shipments.apply(s, data=data, filename="x.csv", scope=scope, actor=SUP).report)
        s.rollback()
    assert _shipped() == 0
    return report


def test_applied_through_the_task_with_the_same_report_and_a_second_run_ships_nothing(api, world):
    heads, made, mug = world
    sheet = _sheet(made, mug)
    expected = _inline_report(sheet, role="supplier", supplier_code="xiangfen")
    sent = _post(api, heads["sup"], sheet)
    assert sent.status_code == 200, sent.text
    body = sent.json()
    import_id = body["import_id"]
    assert (body["dry_run"], body["status"], body["rows"], body["to_ship"], body["skipped"], body["failed"]) == (
        False, "done", 6, 2, 0, 4)
    assert body["items"] == expected  # the report the request used to give, row by row
    assert [r["outcome"] for r in body["items"]] == ["shipped", "shipped", "error", "error", "error", "error"]
    assert _jobs() == [("orders.ship_import", f"shipments-import:{import_id}", {"import_id": import_id})]
    assert rows("SELECT task, status FROM task_run WHERE task = 'orders.ship_import'") == [
        ("orders.ship_import", "succeeded")]
    results = repr(rows("SELECT result, error FROM task_run"))
    assert "SF001" not in results and made[0]["order_no"] not in results  # the sheet never goes through the queue
    assert rows("SELECT supplier_code, role, actor_type, created_by FROM shipment_import") == [
        ("xiangfen", "supplier", "staff", "sup")]
    assert scalar("SELECT finished_at FROM shipment_import") is not None
    after = _effects()
    assert (after[0], after[2], after[4]) == ([("done", 2, 0, 4)], 2, 0)
    # a late duplicate of the job: the import is final, nothing is claimed, nothing shipped again
    assert flows.run_ship_import(import_id=import_id) == {"import_id": import_id, "status": "done", "shipped": 2}
    assert _effects() == after
    # the same sheet uploaded again: a new import that skips what is shipped (same tracking no.)
    again = _post(api, heads["sup"], sheet).json()
    assert (again["status"], again["to_ship"], again["skipped"]) == ("done", 0, 2)
    assert scalar("SELECT count(*) FROM order_event WHERE action = 'ship'") == 2


def test_the_task_claims_the_row_in_the_unit_that_ships_the_orders(world, monkeypatch):
    """A run that dies after its claim but before its commit leaves the row unfinished and nothing shipped: the
    retry ships them all, once."""
    _heads, made, mug = world
    with session_scope() as s:
        scope = shipments.ship_scope("supplier", supplier_code="xiangfen")
        import_id = shipments.queue_shipments(s, actor=SUP, role="supplier", scope=scope, filename="k.csv")
        tasks.store_file(s, key=flows.ship_key(import_id), data=_sheet(made, mug))
    real_drop = tasks.drop_file

    def killed(session, *, key):  # the orders are shipped in this unit of work; it never commits
        raise KeyboardInterrupt  # a BaseException, as a kill would end the run: no failure recorded

    monkeypatch.setattr(tasks, "drop_file", killed)
    with pytest.raises(KeyboardInterrupt):
        flows.run_ship_import(import_id=import_id)
    assert rows("SELECT status FROM shipment_import") == [("running",)]
    assert (_shipped(), scalar("SELECT count(*) FROM task_file")) == (0, 1)
    monkeypatch.setattr(tasks, "drop_file", real_drop)
    assert flows.run_ship_import(import_id=import_id)["status"] == "done"
    assert _effects()[0] == [("done", 2, 0, 4)]
    assert (_shipped(), scalar("SELECT count(*) FROM order_event WHERE action = 'ship'")) == (2, 2)
    assert scalar("SELECT count(*) FROM task_file") == 0


def test_the_task_ships_in_the_scope_the_request_had(api, world):
    """taoci's supplier names xiangfen's orders: the task, acting for taoci, ships none of them; the same sheet
    queued by a clerk (platform staff) ships them."""
    heads, made, _mug = world
    sheet = ship_sheet([(o["order_no"], "顺丰速运", f"SF10{i}") for i, o in enumerate(made)])
    other = _post(api, heads["sup2"], sheet).json()
    assert (other["status"], other["to_ship"], other["failed"]) == ("done", 0, 3)
    assert {r["message"] for r in other["items"]} == {"订单不存在"}
    assert rows("SELECT supplier_code, role FROM shipment_import") == [("taoci", "supplier")]
    assert _shipped() == 0
    with session_scope() as s:  # the task body alone, on a row queued in taoci's scope: still nothing
        import_id = shipments.queue_shipments(s, actor=SUP, role="supplier", filename="t.csv",
                                              scope=shipments.ship_scope("supplier", supplier_code="taoci"))
        tasks.store_file(s, key=flows.ship_key(import_id), data=sheet)
    assert flows.run_ship_import(import_id=import_id)["shipped"] == 0
    assert _shipped() == 0
    clerk = _post(api, heads["chen"], sheet).json()
    assert (clerk["status"], clerk["to_ship"]) == ("done", 3)
    assert _shipped() == 3


def test_when_the_wait_runs_out_the_api_answers_202_and_the_get_gives_the_report(api, world, make_staff,
                                                                                  monkeypatch):
    heads, made, mug = world
    monkeypatch.setenv("GC_TASKS_WAIT_SECONDS", "0")
    get_settings.cache_clear()
    monkeypatch.setattr(tasks, "worker_alive", lambda: True)  # a worker is up (and busy): the request only waits
    sent = _post(api, heads["sup"], _sheet(made, mug))
    assert sent.status_code == 202, sent.text
    import_id = sent.json()["import_id"]
    assert sent.json() == {"import_id": import_id, "status": "queued"}
    queued = api.get(f"{A}/shipments/imports/{import_id}", headers=heads["sup"])
    assert queued.status_code == 200, queued.text
    assert (queued.json()["status"], queued.json()["to_ship"], queued.json()["items"]) == ("queued", 0, [])
    assert _shipped() == 0
    tasks.run_waiting()  # the worker gets to it
    done = api.get(f"{A}/shipments/imports/{import_id}", headers=heads["sup"]).json()
    assert (done["status"], done["dry_run"], done["import_id"], done["to_ship"], done["skipped"], done["failed"]) == (
        "done", False, import_id, 2, 0, 4)
    assert [r["outcome"] for r in done["items"]] == ["shipped", "shipped", "error", "error", "error", "error"]
    assert _shipped() == 2
    assert api.get(f"{A}/shipments/imports/{import_id}", headers=heads["chen"]).json() == done  # platform staff
    # another supplier's import reads as missing, like an id that does not exist, however large
    api_error(api.get(f"{A}/shipments/imports/{import_id}", headers=heads["sup2"]), 404, "SHIPMENT_IMPORT_NOT_FOUND")
    api_error(api.get(f"{A}/shipments/imports/{import_id + 1}", headers=heads["sup"]), 404,
              "SHIPMENT_IMPORT_NOT_FOUND")
    api_error(api.get(f"{A}/shipments/imports/{ID_MAX}", headers=heads["chen"]), 404, "SHIPMENT_IMPORT_NOT_FOUND")
    assert api.get(f"{A}/shipments/imports/{10 ** 30}", headers=heads["chen"]).status_code == 422
    make_staff("daijia", "dispatcher")
    api_error(api.get(f"{A}/shipments/imports/{import_id}", headers=staff_headers(api, "daijia")), 403, "FORBIDDEN")
    get_settings.cache_clear()


def test_a_sheet_refused_as_a_whole_is_failed_with_its_code(api, world):
    heads, _made, _mug = world
    sent = _post(api, heads["sup"], "订单号,别的\nGC1,2\n".encode())
    api_error(sent, 422, "MISSING_COLUMN")
    import_id = sent.json()["error"]["details"]["import_id"]
    assert rows("SELECT status, error_code FROM shipment_import") == [("failed", "MISSING_COLUMN")]
    assert (_shipped(), scalar("SELECT count(*) FROM task_file")) == (0, 0)
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'orders.shipments_import_failed'") == 1
    got = api.get(f"{A}/shipments/imports/{import_id}", headers=heads["sup"]).json()
    assert (got["status"], got["error_code"], got["to_ship"]) == ("failed", "MISSING_COLUMN", 0)
    assert "缺少" in got["error"]


def test_a_failure_on_our_side_ends_failed_with_nothing_shipped(api, world, monkeypatch):
    heads, made, mug = world
    real = shipments.apply

    def broken(session, **kw):
        real(session, **kw)  # the orders shipped in the task's unit of work, then our bug
        raise RuntimeError("bug")

    monkeypatch.setattr(shipments, "apply", broken)
    sent = _post(api, heads["sup"], _sheet(made, mug))
    api_error(sent, 500, "SHIPMENT_IMPORT_ERROR")
    import_id = sent.json()["error"]["details"]["import_id"]
    assert rows("SELECT status, error_code FROM shipment_import") == [("failed", "SHIPMENT_IMPORT_ERROR")]
    assert (_shipped(), scalar("SELECT count(*) FROM order_event WHERE action = 'ship'")) == (0, 0)
    assert scalar("SELECT count(*) FROM task_file") == 0
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'orders.shipments_import_failed'") == 1
    got = api.get(f"{A}/shipments/imports/{import_id}", headers=heads["sup"]).json()
    assert (got["status"], got["error_code"], got["to_ship"]) == ("failed", "SHIPMENT_IMPORT_ERROR", 0)
    # not retried: the failure is on record, a later run changes nothing
    monkeypatch.setattr(shipments, "apply", real)
    assert flows.run_ship_import(import_id=import_id)["status"] == "failed"
    assert _shipped() == 0


def test_ten_identical_uploads_at_once_ship_each_order_once(api, world):
    heads, made, _mug = world
    sheet = ship_sheet([(o["order_no"], "顺丰速运", f"SF20{i}") for i, o in enumerate(made)])
    answers = race(10, lambda i: _post(api, heads["sup"], sheet))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert {a.json()["status"] for a in answers} == {"done"}
    assert sum(a.json()["to_ship"] for a in answers) == 3  # each order shipped by one of the ten
    assert _shipped() == 3
    assert scalar("SELECT count(*) FROM order_event WHERE action = 'ship'") == 3
    assert scalar("SELECT count(*) FROM shipment_import WHERE status = 'done'") == 10
    assert scalar("SELECT count(*) FROM task_file") == 0


def test_the_sweep_defers_again_an_import_whose_job_was_lost(world):
    from gc_admin.jobs import JOBS, run_once

    _heads, made, mug = world
    (sweep,) = [j for j in JOBS if j.name == "orders.unfinished"]
    with session_scope() as s:  # what the request committed; its job then lost
        scope = shipments.ship_scope("supplier", supplier_code="xiangfen")
        import_id = shipments.queue_shipments(s, actor=SUP, role="supplier", scope=scope, filename="lost.csv")
        tasks.store_file(s, key=flows.ship_key(import_id), data=_sheet(made, mug))
    assert run_once(sweep) == {"imports": 0, "shipments": 0}  # not yet: its job may still be on its way
    with session_scope() as s:
        s.execute(update(ShipmentImport).values(created_at=utcnow() - dt.timedelta(minutes=5)))
    assert run_once(sweep) == {"imports": 0, "shipments": 1}
    assert _jobs() == [("orders.ship_import", f"shipments-import:{import_id}", {"import_id": import_id})]
    tasks.run_waiting()
    assert _effects()[0] == [("done", 2, 0, 4)]
    assert _shipped() == 2
    assert run_once(sweep) == {"imports": 0, "shipments": 0}  # nothing unfinished any more


def test_the_page_ships_through_the_task_and_says_when_it_is_still_at_work(api, world, monkeypatch, private_uploads):
    """订单导入与批量发货: the page's 确认发货 goes through the same flow (the import on record, its job queued); done
    within the wait it shows today's outcome, past the wait a clear "仍在处理…" — and the task ships later."""
    from gc_admin.orders.imports.state import OrderImportsState
    from tests.support import drain, run, sign_in, state_of, toasts, upload_file

    _heads, made, _mug = world
    first = ship_sheet([(made[0]["order_no"], "顺丰速运", "SF401")])
    second = ship_sheet([(made[1]["order_no"], "中通", "ZT402")])

    async def go():
        sup = await state_of(OrderImportsState, sign_in("sup"))
        await drain(sup.load())
        await drain(sup.preview_shipments([upload_file(first, "发货.csv")]))
        shown = toasts(await drain(sup.apply_shipments()))
        assert shown == [("success", "已发货 1 单")], shown
        assert sup.ship_summary == "已完成：发货 1 单，已发货跳过 0 单，有误 0 行"
        assert rows("SELECT status, role, supplier_code FROM shipment_import") == [("done", "supplier", "xiangfen")]
        (import_id,) = scalar("SELECT id FROM shipment_import"),
        assert _jobs() == [("orders.ship_import", f"shipments-import:{import_id}", {"import_id": import_id})]
        monkeypatch.setenv("GC_TASKS_WAIT_SECONDS", "0")
        get_settings.cache_clear()
        monkeypatch.setattr(tasks, "worker_alive", lambda: True)  # a busy worker: the page only waits
        await drain(sup.preview_shipments([upload_file(second, "发货.csv")]))
        shown = toasts(await drain(sup.apply_shipments()))
        assert shown == [("info", "仍在处理…，稍后查看发货结果")], shown
        assert sup.ship_summary.startswith("仍在处理…") and sup.ship_rows == [] and not sup.ship_ready
        assert scalar("SELECT status FROM service_order WHERE id = :i", i=made[1]["id"]) == "paid"

    run(go())
    get_settings.cache_clear()
    tasks.run_waiting()  # the worker gets to it
    assert scalar("SELECT status FROM service_order WHERE id = :i", i=made[1]["id"]) == "shipped"
    assert rows("SELECT status, shipped FROM shipment_import ORDER BY id") == [("done", 1), ("done", 1)]
