"""Issue 9: a code import is the ``coupons.import`` task, run by ``python -m gc_admin worker`` (real processes on the
test's PostgreSQL schema); the request waits for it and answers with the import's report. A worker SIGKILLed
while the import's transaction is storing the codes (seen in ``pg_stat_activity``, not guessed with a sleep)
leaves nothing of the import; stalled-job recovery runs it again on another worker, and the waiting request
still gets the report: every code imported once, one import row, done."""

from __future__ import annotations

import concurrent.futures
import os
import signal

import pytest

from gc_admin import tasks as _registry  # noqa: F401  (every task registered, as in a worker)
from gc_admin.coupons.stock import flows
from tests.support import rows, scalar
from tests.unit.coupons.support import STAFF, codes_csv, setup_catalogue
from tests.unit.tasks.support import process_with_local_port, session_gone, storing_codes, workers

@pytest.fixture
def db(pg_db):
    return pg_db


def _stored() -> tuple[list, int]:
    return (rows("SELECT status FROM stock_import ORDER BY id"),
            scalar("SELECT count(*) FROM stock_code WHERE code LIKE 'KILL%'"))


def test_the_import_request_is_answered_by_a_worker_running_the_task(pg_db, tmp_path):
    setup_catalogue()
    data = codes_csv([(f"KILL{i:06d}", 90) for i in range(50)] + [("KILL000001", 90)])
    with workers(pg_db, tmp_path) as w:
        first = w.start()
        w.wait_for("the worker to register", lambda: w.registered() == 1)
        report = flows.import_file(actor=STAFF, product_code="tpp50", data=data, filename="k.csv", wait_seconds=60)
    runs = rows("SELECT task, status, worker, attempt, error FROM task_run ORDER BY id")
    assert (report.status, report.imported, report.duplicate_in_file) == ("done", 50, 1), (runs, w.log())
    assert [(t, s, int(wk.rsplit(":", 1)[1]) == first.pid) for t, s, wk, *_ in runs if t == "coupons.import"] == [
        ("coupons.import", "succeeded", True)], (first.pid, runs, w.log())
    assert _stored() == ([("done",)], 50)
    assert scalar("SELECT count(*) FROM task_file") == 0  # the bytes go with the import's last unit of work
    # what the queue holds: the import's id, never the file
    assert rows("SELECT args::text FROM procrastinate_jobs WHERE task_name = 'coupons.import'") == [
        (f'{{"import_id": {report.import_id}}}',)]
    assert "KILL0000" not in w.log()


def test_a_worker_killed_while_storing_codes_imports_once_after_the_retry(pg_db, tmp_path):
    setup_catalogue()
    n = 150_000
    data = codes_csv([(f"KILL{i:06d}", 90) for i in range(n)])
    with workers(pg_db, tmp_path) as w:
        first = w.start()
        w.wait_for("the worker to register", lambda: w.registered() == 1)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            request = pool.submit(flows.import_file, actor=STAFF, product_code="tpp50", data=data,
                                  filename="kill.csv", wait_seconds=240)
            backend, client_port = storing_codes(request)
            assert process_with_local_port(client_port) == first.pid  # the worker runs the import, not the request
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
            session_gone(backend)  # the database notices its client is gone and rolls back
            # nothing of the import stored; the import still on record, its bytes kept for the retry
            assert _stored() == ([("running",)], 0)
            assert scalar("SELECT count(*) FROM task_file") == 1
            assert not request.done()  # the request still waits
            second = w.start()  # the dead worker stopped beating: its job is found stalled and run again here
            report = request.result(timeout=240)
    assert (report.status, report.rows, report.imported, report.duplicate_existing) == ("done", n, n, 0), w.log()
    assert _stored() == ([("done",)], n)
    assert scalar("SELECT count(DISTINCT code) FROM stock_code") == n
    assert rows("SELECT DISTINCT import_id FROM stock_code") == [(report.import_id,)]
    assert scalar("SELECT count(*) FROM task_file") == 0
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'stock.imported'") == 1
    runs = [(a, s, int(wk.rsplit(":", 1)[1])) for a, s, wk in
            rows("SELECT attempt, status, worker FROM task_run WHERE task = 'coupons.import' ORDER BY id")]
    assert runs == [(0, "interrupted", first.pid), (1, "succeeded", second.pid)], w.log()
    # the job ran again, finished; a third run (a late duplicate) would find the import done and change nothing
    assert flows.run_import(import_id=report.import_id) == {"import_id": report.import_id, "status": "done",
                                                            "imported": n}
    assert _stored() == ([("done",)], n)
