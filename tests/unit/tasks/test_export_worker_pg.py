"""Issue 9: an Excel export is built by ``python -m gc_admin worker`` (a real process on the test's PostgreSQL
schema), not by the request: the request defers ``exports.build`` and waits; the worker's run is on record in
``task_run`` with the worker's pid, the job carries the export's id only, and the bytes reach the asker once."""

from __future__ import annotations

import io

import polars as pl
import pytest

from gc_admin import tasks as _registry  # noqa: F401  (every task and export kind registered, as in a worker)
from gc_admin.accounts import service as accounts
from gc_admin.core import export_jobs
from gc_admin.db import session_scope
from gc_admin.users.service import count_users
from tests.support import PASSWORD, make_user, rows, scalar
from tests.unit.tasks.support import workers


@pytest.fixture
def db(pg_db):
    return pg_db


def test_a_worker_process_builds_the_export_the_request_waits_for(pg_db, tmp_path, make_staff):
    make_staff("mgr", "manager")
    for i in range(25):
        make_user(f"1380000{i:04d}")
    with session_scope() as s:
        mgr = accounts.authenticate(s, username="mgr", password=PASSWORD)
        assert count_users(s) == 25
    with workers(pg_db, tmp_path) as w:
        worker = w.start()
        w.wait_for("the worker to register", lambda: w.registered() == 1)
        rec, data = export_jobs.export_file("users", principal=mgr, filters={"phone": "1380000"}, wait_seconds=120)
    assert (rec.status, rec.rows) == ("done", 25), w.log()
    frame = pl.read_excel(io.BytesIO(data or b""))
    assert frame.height == 25 and all("****" in p for p in frame["手机号"].to_list())
    runs = [(s, int(wk.rsplit(":", 1)[1])) for s, wk in
            rows("SELECT status, worker FROM task_run WHERE task = 'exports.build' ORDER BY id")]
    assert runs == [("succeeded", worker.pid)], w.log()  # the worker built it, not this (the request's) process
    assert rows("SELECT args::text FROM procrastinate_jobs WHERE task_name = 'exports.build'") == [
        (f'{{"export_id": {rec.id}}}',)]  # the export's id, never its filters
    assert scalar("SELECT count(*) FROM task_file") == 0  # handed over once
