"""A code import is the ``coupons.import`` task: the request records it (queued, its bytes in ``task_file``),
defers ``import:<id>`` in the same unit of work and waits for the report. On SQLite the same task code runs in
the app's process — by the app's in-process runner when it is up, else by the waiting thread through the
queue. When the wait runs out the API answers 202 and the import's GET gives the report once it is done."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gc_admin import tasks as _registry  # noqa: F401  (every task registered, as in the app)
from gc_admin.config import get_settings
from gc_admin.core import tasks
from gc_admin.coupons.stock import flows, service
from gc_admin.db import session_scope
from tests.support import rows, scalar, staff_headers
from tests.unit.coupons.support import STAFF, codes_csv, setup_catalogue

pytestmark = pytest.mark.usefixtures("any_db")

SECRET = [f"SECRET{i:04d}CODE" for i in range(20)]


def _jobs() -> list[tuple[str, str, dict]]:
    """What the queue holds for imports: (task, key, args) — the same on both databases."""
    if tasks.in_process():
        jobs = tasks._app(get_settings().database_url, "memory").connector.jobs.values()
        return [(j["task_name"], j["queueing_lock"], j["args"]) for j in jobs if j["task_name"] == "coupons.import"]
    import json

    return [(t, k, a if isinstance(a, dict) else json.loads(a)) for t, k, a in
            rows("SELECT task_name, queueing_lock, args FROM procrastinate_jobs WHERE task_name = 'coupons.import'")]


def test_the_request_defers_the_task_with_the_import_id_only_and_waits_for_its_report(db):
    setup_catalogue()
    report = flows.import_file(actor=STAFF, product_code="tpp50", data=codes_csv([(c, 90) for c in SECRET]),
                               filename="s.csv")
    assert (report.status, report.imported) == ("done", 20)
    assert _jobs() == [("coupons.import", f"import:{report.import_id}", {"import_id": report.import_id})]
    assert rows("SELECT task, status FROM task_run WHERE task = 'coupons.import'") == [("coupons.import", "succeeded")]
    assert scalar("SELECT count(*) FROM task_file") == 0  # the bytes went with the import's last unit of work
    results = repr(rows("SELECT result, error FROM task_run"))
    assert not any(c in results for c in SECRET)


def test_a_refused_file_is_recorded_once_and_its_bytes_dropped(db):
    setup_catalogue()
    with pytest.raises(service.CodesFileRefused) as err:
        flows.import_file(actor=STAFF, product_code="tpp50", data=b"hello,world\n1,2\n", filename="x.csv")
    import_id = err.value.details["import_id"]
    assert rows("SELECT status, error_code FROM stock_import") == [("failed", "IMPORT_FILE_INVALID")]
    assert scalar("SELECT count(*) FROM task_file") == 0
    # the task run again (a late retry) finds it final: no second audit row, nothing changes
    assert flows.run_import(import_id=import_id)["status"] == "failed"
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'stock.import_failed'") == 1


def test_a_second_run_of_the_task_finds_the_import_done_and_imports_nothing_more(db):
    setup_catalogue()
    report = flows.import_file(actor=STAFF, product_code="tpp50", data=codes_csv([(c, 90) for c in SECRET]))
    assert flows.run_import(import_id=report.import_id) == {"import_id": report.import_id, "status": "done",
                                                            "imported": 20}
    assert scalar("SELECT count(*) FROM stock_code") == 20
    assert rows("SELECT status, imported FROM stock_import") == [("done", 20)]
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'stock.imported'") == 1


def test_when_the_wait_runs_out_the_api_answers_202_and_the_get_gives_the_report_later(api, make_staff, monkeypatch):
    setup_catalogue()
    make_staff("chen", "clerk")
    clerk = staff_headers(api, "chen")
    monkeypatch.setenv("GC_TASKS_WAIT_SECONDS", "0")
    get_settings.cache_clear()
    monkeypatch.setattr(tasks, "worker_alive", lambda: True)  # a worker is up (and busy): the request only waits
    body = codes_csv([(c, 90) for c in SECRET], header="code,expires_at")
    sent = api.post("/api/v1/admin/stock/imports", headers=clerk, data={"product_code": "tpp50"},
                    files={"file": ("later.csv", body, "text/csv")})
    assert sent.status_code == 202, sent.text
    import_id = sent.json()["import_id"]
    assert sent.json() == {"import_id": import_id, "status": "queued"}
    queued = api.get(f"/api/v1/admin/stock/imports/{import_id}", headers=clerk).json()
    assert (queued["status"], queued["imported"]) == ("queued", 0)
    assert scalar("SELECT count(*) FROM stock_code") == 0
    tasks.run_waiting()  # the worker gets to it
    done = api.get(f"/api/v1/admin/stock/imports/{import_id}", headers=clerk).json()
    assert (done["status"], done["imported"], done["filename"]) == ("done", 20, "later.csv")
    get_settings.cache_clear()


def test_the_sweep_defers_again_an_import_whose_job_was_lost(db):
    """SQLite's queue lives in memory: an import queued just before a restart has no job any more. The
    periodic ``coupons.imports`` finds it in the business table and defers it again."""
    import datetime as dt

    from gc_admin.core.clock import utcnow

    setup_catalogue()
    with session_scope() as s:  # what the request committed; its job then lost
        import_id = service.queue_import(s, actor=STAFF, product_code="tpp50", filename="lost.csv",
                                         now=utcnow() - dt.timedelta(minutes=5))
        tasks.store_file(s, key=flows.import_key(import_id), data=codes_csv([(c, 90) for c in SECRET]))
    with session_scope() as s:
        assert flows.resume_imports(s) == {"deferred": 1}
    tasks.run_waiting()
    assert rows("SELECT status, imported FROM stock_import") == [("done", 20)]
    with session_scope() as s:
        assert flows.resume_imports(s) == {"deferred": 0}  # nothing unfinished any more


def test_with_the_in_process_runner_up_the_request_waits_and_the_runner_imports(db, monkeypatch):
    """The app's lifespan task (SQLite) runs the queue: the request does not run the job itself."""
    if not tasks.in_process():
        pytest.skip("the in-process runner is SQLite's")
    tasks.reset()
    setup_catalogue()
    got: dict = {}

    def not_here() -> None:
        raise AssertionError("the request ran the queue although the in-process runner was up")

    monkeypatch.setattr(tasks, "run_waiting", not_here)

    def request() -> None:
        got["report"] = flows.import_file(actor=STAFF, product_code="tpp50", data=codes_csv([(c, 90) for c in SECRET]),
                                          wait_seconds=60)
        got["thread"] = threading.get_ident()

    async def scenario() -> None:
        runner = asyncio.create_task(tasks.run_in_process())
        while not tasks.worker_alive():
            await asyncio.sleep(0.01)
        await asyncio.to_thread(request)
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner

    asyncio.run(scenario())
    assert (got["report"].status, got["report"].imported) == ("done", 20)
    assert rows("SELECT status FROM task_run WHERE task = 'coupons.import'") == [("succeeded",)]
    assert not tasks.worker_alive()


def _queue_states(*names: str) -> list[tuple[str, str, str]]:
    """(task, queue, status) of the queue's jobs of these tasks — the same on both databases."""
    if tasks.in_process():
        jobs = tasks._app(get_settings().database_url, "memory").connector.jobs.values()
        found = [(j["task_name"], j["queue_name"], j["status"]) for j in jobs if j["task_name"] in names]
    else:
        found = [(t, q, str(s)) for t, q, s in rows("SELECT task_name, queue_name, status FROM procrastinate_jobs")
                 if t in names]
    return sorted(found)


def test_with_no_worker_alive_the_request_runs_only_the_waited_queue(api, make_staff):
    """The import request runs its own job (queue ``waited``) when no worker is up, never the others waiting:
    an OCR pass and a refund retry stay in the queue for a worker, however long the request waits."""
    setup_catalogue()
    make_staff("chen", "clerk")
    clerk = staff_headers(api, "chen")
    assert not tasks.worker_alive()
    tasks.defer("claims.ocr", key="claims.ocr")
    tasks.defer("payments.refund_send", key="refund:R-NOT-IN-A-REQUEST", refund_id=987654)
    others = [("claims.ocr", "default", "todo"), ("payments.refund_send", "default", "todo")]
    assert _queue_states("claims.ocr", "payments.refund_send") == others
    sent = api.post("/api/v1/admin/stock/imports", headers=clerk, data={"product_code": "tpp50"},
                    files={"file": ("s.csv", codes_csv([(c, 90) for c in SECRET], header="code,expires_at"),
                                    "text/csv")})
    assert sent.status_code == 200, sent.text
    assert (sent.json()["status"], sent.json()["imported"]) == ("done", 20)
    assert _queue_states("coupons.import") == [("coupons.import", "waited", "succeeded")]
    assert _queue_states("claims.ocr", "payments.refund_send") == others  # still waiting for a worker
    assert rows("SELECT task FROM task_run ORDER BY id") == [("coupons.import",)]
    tasks.run_waiting(["default"])  # a worker (every queue) does get to them
    assert ("claims.ocr", "succeeded") in rows("SELECT task, status FROM task_run")
