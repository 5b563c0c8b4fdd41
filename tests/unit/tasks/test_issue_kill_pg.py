"""Issue 9: a batch issuance is the ``coupons.issue_batch`` task, run by ``python -m gc_admin worker`` (real processes
on the test's PostgreSQL schema); the request waits for it. A worker SIGKILLed while the issuance's transaction is
creating the coupons (seen in ``pg_stat_activity``) issued nothing; stalled-job recovery runs it again on another
worker and the waiting request gets the per-row result: each phone exactly one coupon, each code claimed once.
The same batch id again replays the first result and issues nothing more."""

from __future__ import annotations

import concurrent.futures
import os
import signal

import pytest

from gc_admin import tasks as _registry  # noqa: F401  (every task registered, as in a worker)
from gc_admin.coupons.issuance import flows
from gc_admin.coupons.stock import service as stock
from gc_admin.db import session_scope
from tests.support import rows, scalar
from tests.unit.coupons.support import STAFF, codes_csv, setup_catalogue
from tests.unit.tasks.support import ISSUING, busy_session, process_with_local_port, session_gone, workers


@pytest.fixture
def db(pg_db):
    return pg_db


def _effects() -> dict:
    return {
        "batches": rows("SELECT batch_id, status FROM issuance_batch"),
        "coupons": scalar("SELECT count(*) FROM coupon"),
        "phones_twice": scalar("SELECT count(*) FROM (SELECT phone FROM coupon GROUP BY phone HAVING count(*) > 1) x"),
        "codes_issued": scalar("SELECT count(*) FROM stock_code WHERE state = 'issued'"),
        "codes_twice": scalar("SELECT count(*) FROM (SELECT stock_code_id FROM coupon GROUP BY stock_code_id "
                              "HAVING count(*) > 1) x"),
        "audit": scalar("SELECT count(*) FROM audit_log WHERE action = 'coupon.issued'"),
        "files": scalar("SELECT count(*) FROM task_file"),
    }


def test_a_worker_killed_while_issuing_issues_each_phone_once_after_the_retry(pg_db, tmp_path):
    setup_catalogue()
    n = 60_000
    with session_scope() as s:
        stock.import_codes(s, actor=STAFF, product_code="tpp50", data=codes_csv([(f"KB{i:08d}", 90) for i in range(n)]))
    phones = [f"138{i:08d}" for i in range(n)]
    with workers(pg_db, tmp_path) as w:
        first = w.start()
        w.wait_for("the worker to register", lambda: w.registered() == 1)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            request = pool.submit(flows.issue, actor=STAFF, source="staff", batch_id="KILL-1", product_code="tpp50",
                                  phones=phones, wait_seconds=240)
            backend, client_port = busy_session(request, ISSUING, what="creating coupons")
            assert process_with_local_port(client_port) == first.pid  # the worker issues, not the request
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
            session_gone(backend)
            # nothing issued; the batch on record (claimed, rolled back to running), its phones kept for the retry
            assert _effects() == {"batches": [("KILL-1", "running")], "coupons": 0, "phones_twice": 0,
                                  "codes_issued": 0, "codes_twice": 0, "audit": 0, "files": 1}
            assert not request.done()
            second = w.start()
            result = request.result(timeout=240)
    assert (result.status, result.issued, result.failed, result.coupons, result.replayed) == ("done", n, 0, n, False)
    assert {r["status"] for r in result.rows()} == {"issued"}
    assert _effects() == {"batches": [("KILL-1", "done")], "coupons": n, "phones_twice": 0, "codes_issued": n,
                          "codes_twice": 0, "audit": 1, "files": 0}
    runs = [(a, st, int(wk.rsplit(":", 1)[1])) for a, st, wk in
            rows("SELECT attempt, status, worker FROM task_run WHERE task = 'coupons.issue_batch' ORDER BY id")]
    assert runs == [(0, "interrupted", first.pid), (1, "succeeded", second.pid)], w.log()
    # the same batch again (no worker needed: nothing is deferred): the first result, nothing more issued
    again = flows.issue(actor=STAFF, source="staff", batch_id="KILL-1", product_code="tpp50", phones=phones,
                        wait_seconds=5)
    assert (again.replayed, again.issued, again.coupons) == (True, n, n)
    assert _effects()["coupons"] == n
    assert scalar("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'coupons.issue_batch'") == 1
    # the phones never travelled in the job's arguments
    assert rows("SELECT args::text FROM procrastinate_jobs WHERE task_name = 'coupons.issue_batch'") == [
        (f'{{"issuance_id": {result.issuance_id}}}',)]
