"""``GET /api/v1/admin/jobs`` and ``POST /api/v1/admin/jobs/{name}/run`` (API.md "Settlement and KPIs"):
the periodic jobs with their last run, result and next run; running one now queues it once, however
many times it is clicked. Roles: tests/unit/core/test_admin_scope.py (admin, manager)."""

from __future__ import annotations

import asyncio
import datetime as dt

from gc_admin import tasks as _registry  # noqa: F401
from gc_admin.core import tasks
from gc_admin.jobs import JOBS
from tests.support import rows, staff_headers


def test_the_jobs_page_lists_runs_and_runs_a_job_once_whatever_the_clicks(api, make_staff):
    make_staff("mgr", "manager")
    mgr = staff_headers(api, "mgr")
    listed = api.get("/api/v1/admin/jobs", headers=mgr)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [j["name"] for j in items] == [j.name for j in JOBS]
    assert {j["name"]: j["every"] for j in items}["payments.refunds"] == "每 5 分钟"
    assert all(j["last_run"] is None and j["waiting"] == 0 for j in items)
    now = dt.datetime.now(dt.timezone.utc)
    nxt = {j["name"]: dt.datetime.fromisoformat(j["next_run_at"]) for j in items}
    assert now < nxt["orders.notices"] <= now + dt.timedelta(minutes=1)
    assert nxt["coupons.expiry"].minute == 0 and nxt["coupons.expiry"] <= now + dt.timedelta(hours=1)

    clicks = [api.post("/api/v1/admin/jobs/orders.expire_unpaid/run", headers=mgr) for _ in range(3)]
    assert [c.status_code for c in clicks] == [202] * 3
    assert [c.json()["queued"] for c in clicks] == [True, False, False]  # one run queued, not three
    assert {j["name"]: j["waiting"] for j in api.get("/api/v1/admin/jobs", headers=mgr).json()["items"]}[
        "orders.expire_unpaid"] == 1
    assert rows("SELECT action, target_id, actor_name FROM audit_log WHERE action = 'job.run_requested'") == [
        ("job.run_requested", "orders.expire_unpaid", "mgr")] * 3

    asyncio.run(tasks.run_in_process(wait=False))  # the app's in-process queue (SQLite) runs it
    after = {j["name"]: j for j in api.get("/api/v1/admin/jobs", headers=mgr).json()["items"]}
    last = after["orders.expire_unpaid"]["last_run"]
    assert last["status"] == "succeeded" and last["result"] == {"cancelled": [], "paid_late": [], "close_errors": 0}
    assert after["orders.expire_unpaid"]["waiting"] == 0


def test_run_now_queues_one_job_on_every_database(any_db, api, make_staff):
    make_staff("boss", "admin")
    boss = staff_headers(api, "boss")
    answers = [api.post("/api/v1/admin/jobs/payments.refunds/run", headers=boss).json() for _ in range(2)]
    assert [a["queued"] for a in answers] == [True, False] and answers[0]["job_id"] and answers[1]["job_id"] is None
    waiting = {j["name"]: j["waiting"] for j in api.get("/api/v1/admin/jobs", headers=boss).json()["items"]}
    from gc_admin.jobs import JOBS

    assert waiting == {**{j.name: 0 for j in JOBS}, "payments.refunds": 1} and len(waiting) == len(JOBS) >= 5
    if any_db.startswith("postgresql"):  # deferred in the same unit of work as its audit row
        assert rows("SELECT task_name, queueing_lock, status FROM procrastinate_jobs") == [
            ("payments.refunds", "payments.refunds", "todo")]
