"""A batch issuance whose ``coupons.issue_batch`` breaks on a real worker (``python -m gc_admin worker`` on the
test's PostgreSQL schema, an exception after the coupons were written): its transaction rolled back, the batch is on
record failed and the waiting request raises IssuanceCrashed at once (it does not wait for ever on a batch the queue
would retry). Once the cause is gone, the same batch id sent again is issued by the worker, once."""

from __future__ import annotations

import pytest

from gc_admin import tasks as _registry  # noqa: F401  (every task registered, as in a worker)
from gc_admin.coupons.issuance import flows, service
from gc_admin.coupons.stock import service as stock
from gc_admin.db import session_scope
from tests.support import rows, scalar
from tests.unit.coupons.support import STAFF, codes_csv, setup_catalogue
from tests.unit.tasks.support import workers


@pytest.fixture
def db(pg_db):
    return pg_db


def test_a_batch_that_breaks_on_a_worker_is_failed_and_the_same_batch_again_is_issued_once(pg_db, tmp_path):
    setup_catalogue()
    with session_scope() as s:
        stock.import_codes(s, actor=STAFF, product_code="tpp50", data=codes_csv([(f"FB{i:05d}", 90) for i in range(50)]))
    phones = [f"139{i:08d}" for i in range(40)]
    (tmp_path / "break").touch()
    with workers(pg_db, tmp_path, GC_TASKS_EXTRA_MODULES="tests.unit.tasks.breaks",
                 GC_TEST_BREAK_DIR=str(tmp_path)) as w:
        worker = w.start()
        w.wait_for("the worker to register", lambda: w.registered() == 1)
        with pytest.raises(service.IssuanceCrashed) as err:
            flows.issue(actor=STAFF, source="staff", batch_id="BREAK-1", product_code="tpp50", phones=phones,
                        wait_seconds=60)
        assert err.value.details == {"batch_id": "BREAK-1"}
        assert rows("SELECT status, error_code FROM issuance_batch") == [("failed", "ISSUANCE_ERROR")]
        assert (scalar("SELECT count(*) FROM coupon"), scalar("SELECT count(*) FROM issuance_row")) == (0, 0)
        assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 50
        assert scalar("SELECT count(*) FROM task_file") == 0
        (tmp_path / "break").unlink()
        result = flows.issue(actor=STAFF, source="staff", batch_id="BREAK-1", product_code="tpp50", phones=phones,
                             wait_seconds=60)
        # the batch is final before the worker puts its run on record: wait for the record, then read it
        w.wait_for("both runs on record", lambda: scalar("SELECT count(*) FROM task_run WHERE task = "
                                                         "'coupons.issue_batch' AND status <> 'running'") == 2)
        runs = [(st, int(wk.rsplit(":", 1)[1])) for st, wk in
                rows("SELECT status, worker FROM task_run WHERE task = 'coupons.issue_batch' ORDER BY id")]
        assert runs == [("succeeded", worker.pid), ("succeeded", worker.pid)], w.log()  # the worker ran both
        assert "test break after the coupons were written" in w.log()
    assert (result.status, result.issued, result.coupons, result.replayed) == ("done", 40, 40, False)
    assert rows("SELECT status, error_code FROM issuance_batch") == [("done", None)]
    assert scalar("SELECT count(*) FROM coupon") == 40
    assert scalar("SELECT count(*) FROM (SELECT phone FROM coupon GROUP BY phone HAVING count(*) > 1) x") == 0
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'coupon.issued'") == 1
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'coupon.issue_failed'") == 1
