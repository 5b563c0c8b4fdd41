"""Issue 9: applying a shipment sheet (批量发货) is the ``orders.ship_import`` task, run by ``python -m gc_admin
worker`` (real processes on the test's PostgreSQL schema); the request waits for it and answers with the import. A
worker SIGKILLed in the middle of the import — its unit of work has claimed the row and shipped the first order,
the others not yet (``tests.unit.tasks.holds`` ``mid_shipment``; the session seen idle in its transaction in
``pg_stat_activity``) — leaves nothing shipped; stalled-job recovery runs it again on another worker, and the
waiting request still gets the report: every order shipped exactly once, one import row, done."""

from __future__ import annotations

import concurrent.futures

import pytest

from gc_admin import tasks as _registry  # noqa: F401  (every task registered, as in a worker)
from gc_admin.core.principal import Actor
from gc_admin.orders.suppliers import flows
from tests.support import rows, scalar
from tests.unit.orders.goods_support import ship_sheet, shipping_world
from tests.unit.tasks.support import busy_session, kill_mid_task, process_with_local_port, workers

SUP = Actor("staff", "901", "香氛发货员")

#: A database session inside a shipments import's unit of work, stopped after its first ship move: its
#: transaction has written (the row claimed, the first order shipped) and waits, open.
SHIPPING = ("SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'idle in transaction' AND backend_xid IS NOT NULL")


@pytest.fixture
def db(pg_db):
    """Every fixture standing on ``db`` (``api``, ``make_staff``) uses the PostgreSQL schema."""
    return pg_db


def _stored() -> tuple[list, int, int]:
    return (rows("SELECT status FROM shipment_import ORDER BY id"),
            scalar("SELECT count(*) FROM service_order WHERE status = 'shipped'"),
            scalar("SELECT count(*) FROM order_event WHERE action = 'ship'"))


def test_a_worker_killed_mid_shipment_import_ships_each_order_once_after_the_retry(pg_db, api, make_staff, tmp_path):
    _heads, made, _mug = shipping_world(api, make_staff)
    sheet = ship_sheet([(o["order_no"], "顺丰速运", f"SF30{i}") for i, o in enumerate(made)])
    flags = tmp_path / "flags"
    flags.mkdir()
    with workers(pg_db, tmp_path) as w:
        first = w.start(GC_TASKS_EXTRA_MODULES="tests.unit.tasks.holds", GC_TEST_HOLD_AT="mid_shipment",
                        GC_TEST_HOLD_DIR=str(flags))
        w.wait_for("the worker to register", lambda: w.registered() == 1)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            request = pool.submit(flows.ship_file, actor=SUP, role="supplier", supplier_code="xiangfen", data=sheet,
                                  filename="kill.csv", wait_seconds=240)
            w.wait_for("the first order shipped in the task's unit of work", (flags / "started").exists)
            backend, client_port = busy_session(request, SHIPPING, what="shipping the orders")
            assert process_with_local_port(client_port) == first.pid  # the worker ships, not the request
            assert _stored() == ([("running",)], 0, 0)  # the first ship move is not visible outside its unit
            # nothing shipped; the import still on record, its bytes kept for the retry
            second = kill_mid_task(w, first, request, backend, stored=_stored, expected=([("running",)], 0, 0))
            rec = request.result(timeout=240)
    assert (rec.status, rec.rows, rec.shipped, rec.skipped, rec.failed) == ("done", 3, 3, 0, 0), w.log()
    assert _stored() == ([("done",)], 3, 3)
    assert {r["outcome"] for r in rec.report} == {"shipped"}
    assert {f[0]["tracking_no"] for f in rows("SELECT fulfilment FROM service_order WHERE status = 'shipped'")} == {
        "SF300", "SF301", "SF302"}
    assert scalar("SELECT count(*) FROM task_file") == 0
    assert rows("SELECT args::text FROM procrastinate_jobs WHERE task_name = 'orders.ship_import'") == [
        (f'{{"import_id": {rec.id}}}',)]  # the import's id, never the sheet
    runs = [(a, s, int(wk.rsplit(":", 1)[1])) for a, s, wk in
            rows("SELECT attempt, status, worker FROM task_run WHERE task = 'orders.ship_import' ORDER BY id")]
    assert runs == [(0, "interrupted", first.pid), (1, "succeeded", second.pid)], w.log()
    # a third run (a late duplicate) finds the import done and ships nothing again
    assert flows.run_ship_import(import_id=rec.id) == {"import_id": rec.id, "status": "done", "shipped": 3}
    assert _stored() == ([("done",)], 3, 3)
