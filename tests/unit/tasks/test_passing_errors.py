"""A task whose failure goes on record (an import, a batch: :func:`gc_admin.core.tasks.run_recorded`) does not
fail for a passing database error — a lost connection, SQLite's "database is locked", a PostgreSQL deadlock:
the queue runs it again after its backoff, and only an error on the last attempt goes on record. A database
error's message names no value it was writing (codes, phones): ``hide_parameters`` on every engine."""

from __future__ import annotations

import dataclasses
import io
import logging

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from gc_admin import tasks as _registry  # noqa: F401  (every task registered, as in the app)
from gc_admin.core import logs, tasks
from gc_admin.coupons.issuance import flows as issuance
from gc_admin.coupons.stock import flows, service
from gc_admin.db import session_scope
from tests.support import rows, scalar
from tests.unit.coupons.support import STAFF, codes_csv, setup_catalogue

pytestmark = pytest.mark.usefixtures("any_db")

SECRET = [f"PASSING{i:04d}CODE" for i in range(12)]


def _no_backoff(monkeypatch, name: str) -> tasks.TaskDef:
    """The task's retries without their waits (2, 4, 8 s), so a test sees every attempt at once."""
    defn = tasks.REGISTRY[name]
    monkeypatch.setitem(tasks.REGISTRY, name, dataclasses.replace(defn, backoff_seconds=0))
    tasks.reset()  # the queue apps are built again from the registry
    return defn


def _lost_connection() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("INSERT INTO stock_code ...", {}, Exception("server closed the connection"))


def _breaking(monkeypatch, target, attr: str, *, times: int) -> list[int]:
    """``target.attr`` raising a lost connection on its first ``times`` calls, then itself; the calls made."""
    real, calls = getattr(target, attr), []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) <= times:
            raise _lost_connection()
        return real(*args, **kwargs)

    monkeypatch.setattr(target, attr, flaky)
    return calls


def test_an_import_hit_by_a_passing_database_error_is_tried_again_and_imports_once(db, monkeypatch):
    _no_backoff(monkeypatch, "coupons.import")
    setup_catalogue()
    calls = _breaking(monkeypatch, service, "import_codes", times=1)
    report = flows.import_file(actor=STAFF, product_code="tpp50", data=codes_csv([(c, 90) for c in SECRET]))
    assert (report.status, report.imported, len(calls)) == ("done", 12, 2)
    assert scalar("SELECT count(*) FROM stock_code") == 12
    assert rows("SELECT status FROM task_run WHERE task = 'coupons.import' ORDER BY id") == [("failed",), ("succeeded",)]
    assert "OperationalError" in scalar("SELECT error FROM task_run WHERE status = 'failed'")
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'stock.import_failed'") == 0
    assert scalar("SELECT count(*) FROM task_file") == 0


def test_an_import_whose_every_attempt_hits_it_ends_failed_on_the_last_one_with_nothing_imported(db, monkeypatch):
    defn = _no_backoff(monkeypatch, "coupons.import")
    setup_catalogue()
    calls = _breaking(monkeypatch, service, "import_codes", times=99)
    with pytest.raises(service.ImportCrashed) as err:
        flows.import_file(actor=STAFF, product_code="tpp50", data=codes_csv([(c, 90) for c in SECRET]))
    assert len(calls) == defn.retries + 1  # the first attempt and every retry
    assert err.value.code == "IMPORT_ERROR"
    assert rows("SELECT status, error_code FROM stock_import") == [("failed", "IMPORT_ERROR")]
    assert scalar("SELECT count(*) FROM stock_code") == 0 and scalar("SELECT count(*) FROM task_file") == 0
    runs = rows("SELECT status FROM task_run WHERE task = 'coupons.import' ORDER BY id")
    assert runs == [("failed",)] * defn.retries + [("succeeded",)]  # the last attempt put it on record
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'stock.import_failed'") == 1


def test_a_bug_is_not_retried_a_passing_error_is(db, monkeypatch):
    """Outside a job (no attempts left: a script calling the body) a passing error goes on record at once too."""
    setup_catalogue()
    with session_scope() as s:
        import_id = service.queue_import(s, actor=STAFF, product_code="tpp50", filename="s.csv")
        tasks.store_file(s, key=flows.import_key(import_id), data=codes_csv([(c, 90) for c in SECRET]))
    _breaking(monkeypatch, service, "import_codes", times=1)
    assert tasks.retries_left() == 0
    assert flows.run_import(import_id=import_id)["status"] == "failed"


def test_a_batch_hit_by_a_passing_database_error_is_tried_again_and_issued_once(db, monkeypatch):
    from gc_admin.coupons.issuance import service as batches
    from gc_admin.coupons.stock import service as stock

    _no_backoff(monkeypatch, "coupons.issue_batch")
    setup_catalogue()
    with session_scope() as s:
        stock.import_codes(s, actor=STAFF, product_code="tpp50", data=codes_csv([(f"PB{i:06d}", 90) for i in range(5)]))
    calls = _breaking(monkeypatch, batches, "_issue_rows", times=1)
    result = issuance.issue(actor=STAFF, source="staff", batch_id="B-PASS", product_code="tpp50",
                            phones=["13800000001", "13800000002"])
    assert (result.status, result.issued, len(calls)) == ("done", 2, 2)
    assert scalar("SELECT count(*) FROM coupon") == 2
    assert rows("SELECT status, error_code FROM issuance_batch") == [("done", None)]
    assert rows("SELECT status FROM task_run WHERE task = 'coupons.issue_batch' ORDER BY id") == [
        ("failed",), ("succeeded",)]


def _probe(value: str) -> None:
    with session_scope() as s:
        s.execute(sa.text("CREATE TABLE leak_probe (v VARCHAR(40) PRIMARY KEY)"))
        s.execute(sa.text("INSERT INTO leak_probe VALUES (:v)"), {"v": value})


def _duplicate(value: str, session=None) -> None:
    """A constraint error carrying ``value`` (in ``session``, or a unit of work of its own): PostgreSQL quotes the
    value in its DETAIL line."""
    if session is not None:
        session.execute(sa.text("INSERT INTO leak_probe VALUES (:v)"), {"v": value})
        return
    with session_scope() as s:
        s.execute(sa.text("INSERT INTO leak_probe VALUES (:v)"), {"v": value})


def test_a_database_error_as_logged_or_kept_names_its_statement_but_none_of_the_values_it_was_writing(db):
    _probe(SECRET[0])
    with pytest.raises(sa_exc.IntegrityError) as err:
        _duplicate(SECRET[0])
    assert "leak_probe" in str(err.value)
    assert "hidden due to hide_parameters" in str(err.value)
    assert SECRET[0] not in logs.redact(str(err.value))


def test_a_task_broken_by_a_constraint_error_keeps_and_logs_no_value(db, monkeypatch):
    """The crash is logged (with its traceback) and a raising task's error is kept on its run: neither holds the
    value the failing statement wrote."""
    setup_catalogue()
    _probe(SECRET[1])

    def crash(session, **_kw):
        _duplicate(SECRET[1], session)

    monkeypatch.setattr(service, "import_codes", crash)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # the app's handler: its redaction and JSON lines
    handler.addFilter(logs.Redact())
    handler.setFormatter(logs.JsonFormatter())
    logging.getLogger("gc_admin").addHandler(handler)
    try:
        with pytest.raises(service.ImportCrashed):
            flows.import_file(actor=STAFF, product_code="tpp50", data=codes_csv([(c, 90) for c in SECRET]))
    finally:
        logging.getLogger("gc_admin").removeHandler(handler)
    logged = stream.getvalue()
    assert "IntegrityError" in logged and SECRET[1] not in logged
    monkeypatch.setitem(tasks.REGISTRY, "probe.raises", tasks.TaskDef("probe.raises", lambda: _duplicate(SECRET[1]),
                                                                      retries=0))
    tasks.reset()
    tasks.defer("probe.raises", key="probe")
    tasks.run_waiting()
    (error,) = rows("SELECT error FROM task_run WHERE task = 'probe.raises'")[0]
    assert "IntegrityError" in error and SECRET[1] not in error
