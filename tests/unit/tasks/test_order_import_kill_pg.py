"""Issue 9: applying a third-party order sheet is the ``orders.import`` task, run by ``python -m gc_admin worker``
(real processes on the test's PostgreSQL schema); the request waits for it and answers with the import. A worker
SIGKILLed while the import's transaction is inserting the orders (seen in ``pg_stat_activity``, not guessed with a
sleep) leaves nothing of the import; stalled-job recovery runs it again on another worker, and the waiting request
still gets the report: every order imported once, one import row, done."""

from __future__ import annotations

import concurrent.futures

import pytest

from gc_admin import tasks as _registry  # noqa: F401  (every task registered, as in a worker)
from gc_admin.core.principal import Actor
from gc_admin.db import session_scope
from gc_admin.orders.imports import flows, service
from tests.support import rows, scalar
from tests.unit.tasks.support import busy_session, kill_mid_task, process_with_local_port, workers

CLERK = Actor("staff", "3", "王内勤")
MAPPING = {"external_id": "订单编号", "phone": "买家手机", "item": "商品", "amount": "实付金额"}

#: A database session in the middle of an order import: its transaction has written (the import row claimed) and
#: it is inserting the orders, their history lines or change notices (or has just sent one: idle in transaction).
INSERTING_ORDERS = ("SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction') "
                    "AND backend_xid IS NOT NULL AND (query LIKE 'INSERT INTO service_order%' "
                    "OR query LIKE 'INSERT INTO order_event%' OR query LIKE 'INSERT INTO order_change%')")


@pytest.fixture
def db(pg_db):
    return pg_db


def _sheet(n: int) -> bytes:
    return ("订单编号,买家手机,商品,实付金额\n" + "".join(f"K{i:05d},138{i:08d},车载香薰,12.80\n" for i in range(n))).encode()


def _stored() -> tuple[list, int, int]:
    return (rows("SELECT status FROM order_import ORDER BY id"),
            scalar("SELECT count(*) FROM service_order WHERE source = 'meituan'"),
            scalar("SELECT count(*) FROM order_event"))


def test_a_worker_killed_while_inserting_the_orders_imports_each_once_after_the_retry(pg_db, tmp_path):
    with session_scope() as s:
        service.save_mapping(s, actor=CLERK, source="meituan", mapping=MAPPING)
    n = 5_000  # the most one sheet may hold
    with workers(pg_db, tmp_path) as w:
        first = w.start()
        w.wait_for("the worker to register", lambda: w.registered() == 1)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            request = pool.submit(flows.import_file, actor=CLERK, source="meituan", data=_sheet(n),
                                  filename="kill.csv", wait_seconds=240)
            backend, client_port = busy_session(request, INSERTING_ORDERS, what="inserting the orders")
            assert process_with_local_port(client_port) == first.pid  # the worker runs the import, not the request
            # nothing of the import stored; the import still on record, its bytes kept for the retry
            second = kill_mid_task(w, first, request, backend, stored=_stored, expected=([("running",)], 0, 0))
            rec = request.result(timeout=240)
    assert (rec.status, rec.rows, rec.imported, rec.duplicates, rec.failed) == ("done", n, n, 0, 0), w.log()
    assert _stored() == ([("done",)], n, n)
    assert scalar("SELECT count(DISTINCT external_id) FROM service_order") == n
    assert scalar("SELECT count(*) FROM mp_user") == n
    assert scalar("SELECT count(*) FROM task_file") == 0
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'orders.imported'") == 1
    assert rows("SELECT args::text FROM procrastinate_jobs WHERE task_name = 'orders.import'") == [
        (f'{{"import_id": {rec.id}}}',)]  # the import's id, never the sheet
    runs = [(a, s, int(wk.rsplit(":", 1)[1])) for a, s, wk in
            rows("SELECT attempt, status, worker FROM task_run WHERE task = 'orders.import' ORDER BY id")]
    assert runs == [(0, "interrupted", first.pid), (1, "succeeded", second.pid)], w.log()
    # a third run (a late duplicate) finds the import done and changes nothing
    assert flows.run_import(import_id=rec.id) == {"import_id": rec.id, "status": "done", "imported": n}
    assert _stored() == ([("done",)], n, n)
