"""The task queue on PostgreSQL with real worker processes (``python -m gc_admin worker``): periodic tasks
once per period however many workers run, a worker killed mid-task loses nothing and does nothing
twice, SIGTERM lets the running task finish, one job per idempotency key. Periods are 2 s here
(``GC_TASKS_EVERY_SECONDS``), heartbeats 1 s (a silent worker is dead after 3 s)."""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from gc_admin import tasks as _registry  # noqa: F401  (every task registered, as in a worker)
from gc_admin.core import tasks
from gc_admin.db import session_scope
from gc_admin.jobs import JOBS
from tests.support import rows, scalar, wired
from tests.unit.orders.support import buy, buyer, get, shop
from tests.unit.tasks import blocking
from tests.unit.tasks.support import workers

PERIODS = 3


def test_three_workers_run_each_periodic_task_once_per_period(pg_db, tmp_path):
    with workers(pg_db, tmp_path) as w:
        procs = [w.start() for _ in range(3)]
        w.wait_for("3 workers registered", lambda: w.registered() == 3)
        since = int(time.time())

        def periods_seen() -> bool:
            got = rows("SELECT task, count(DISTINCT result->>'period') FROM task_run WHERE status = 'succeeded' "
                       "AND (result->>'period')::bigint >= :t GROUP BY task", t=since)
            return len(got) == len(JOBS) and all(n >= PERIODS for _, n in got)

        w.wait_for(f"{PERIODS} periods of every periodic task", periods_seen, timeout=120)
        assert w.registered() == 3  # all three were up the whole time
        codes = [w.stop(p) for p in procs]
    assert codes == [0, 0, 0], w.log()  # SIGTERM: a graceful stop
    assert scalar("SELECT count(*) FROM procrastinate_workers") == 0  # each unregistered itself

    runs = rows("SELECT task, result->>'period', status FROM task_run WHERE result->>'period' IS NOT NULL")
    per_period = Counter((task, period) for task, period, _ in runs)
    assert per_period and max(per_period.values()) == 1, [k for k, n in per_period.items() if n > 1]
    assert {status for *_, status in runs} == {"succeeded"}
    jobs = rows("SELECT task_name, args->>'timestamp' FROM procrastinate_jobs WHERE args ? 'timestamp' "
                "AND task_name <> :s", s=tasks.STALLED_TASK)
    assert max(Counter(jobs).values()) == 1  # one job deferred per period, not one per worker
    assert {t for t, _ in jobs} == {j.name for j in JOBS}
    assert scalar("SELECT count(DISTINCT worker) FROM task_run") >= 2  # the work was shared out


@pytest.fixture
def unpaid(pg_db):
    """An unpaid order for one ¥45 coupon (its code held), never handed to WeChat Pay (nothing to close
    there), its payment deadline 30 minutes away."""
    shop()
    with wired():
        order = buy(buyer(), 1)
    with session_scope() as s:
        s.execute(sa.text("UPDATE service_order SET prepay_id = NULL WHERE id = :o"), {"o": order.id})
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 9
    return order


def _effects(order_id: int) -> tuple:
    return (get(order_id).status,
            scalar("SELECT count(*) FROM order_event WHERE order_id = :o AND to_status = 'cancelled'", o=order_id),
            scalar("SELECT count(*) FROM audit_log WHERE target_id = :o AND action = 'order.cancel'", o=str(order_id)),
            scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'"))


@pytest.mark.parametrize("phase", ["before_commit", "after_commit"])
def test_a_worker_killed_mid_task_is_retried_and_its_effect_happens_once(unpaid, pg_db, tmp_path, phase):
    """SIGKILL while the task is half-way — its cancellations made but not committed, or committed but the
    job not marked done: another worker finds the job stalled (no heartbeat), runs it again, and the order
    is cancelled once, its coupon code released once."""
    before = _effects(unpaid.id)
    with workers(pg_db, tmp_path, GC_TASKS_EXTRA_MODULES="tests.unit.tasks.blocking") as w:
        first = w.start()
        w.wait_for("the first worker registered", lambda: w.registered() == 1)
        job_id = tasks.defer(blocking.NAME, key=f"test:{phase}", flag_dir=str(tmp_path), phase=phase,
                             ahead_minutes=60)
        w.wait_for("the task to reach its half-way point", lambda: (tmp_path / "started").exists())
        status = rows("SELECT status, worker FROM task_run WHERE job_id = :j", j=job_id)
        assert [s for s, _ in status] == ["running"]
        if phase == "after_commit":
            assert _effects(unpaid.id)[0] == "cancelled"  # done and committed; the job is still "doing"
        else:
            assert _effects(unpaid.id) == before  # nothing committed yet
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        w.start()  # another worker (the dead one's heartbeat stops: its job is stalled after 3 s)
        w.wait_for("the job retried to success",
                   lambda: scalar("SELECT status FROM procrastinate_jobs WHERE id = :j", j=job_id) == "succeeded")
    runs = rows("SELECT attempt, status, result->>'first' FROM task_run WHERE job_id = :j ORDER BY id", j=job_id)
    assert runs == [(0, "interrupted", None), (1, "succeeded", "false")]
    # cancelled once: one history entry, one audit row, its code back in stock once
    assert _effects(unpaid.id) == ("cancelled", 1, 1, 10) and before == ("created", 0, 0, 9)
    expected = [unpaid.id] if phase == "before_commit" else []  # the retry did it / found it done
    assert rows("SELECT result->'cancelled' FROM task_run WHERE job_id = :j AND status = 'succeeded'",
                j=job_id) == [(expected,)]


def test_sigterm_lets_the_running_task_finish(unpaid, pg_db, tmp_path):
    """SIGTERM (a deploy, systemd): the running task finishes and commits, the worker takes no new job, leaves
    the queue (unregistered) and exits 0; what was queued meanwhile waits for the next worker."""
    with workers(pg_db, tmp_path, GC_TASKS_EXTRA_MODULES="tests.unit.tasks.blocking") as w:
        proc = w.start()
        w.wait_for("the worker registered", lambda: w.registered() == 1)
        job_id = tasks.defer(blocking.NAME, key="test:term", flag_dir=str(tmp_path), phase="before_commit",
                             ahead_minutes=60)
        w.wait_for("the task to start", lambda: (tmp_path / "started").exists())
        w.terminate(proc)
        time.sleep(2)
        assert proc.poll() is None  # still finishing its task
        later = tasks.defer("orders.notices", key="test:after-term")  # queued while it stops
        (tmp_path / "release").touch()
        assert proc.wait(60) == 0, w.log()
        assert scalar("SELECT status FROM procrastinate_jobs WHERE id = :j", j=later) == "todo"  # not taken
        assert scalar("SELECT count(*) FROM procrastinate_workers") == 0
        w.start()
        w.wait_for("the next worker to run what waited",
                   lambda: scalar("SELECT status FROM procrastinate_jobs WHERE id = :j", j=later) == "succeeded")
    assert scalar("SELECT status FROM procrastinate_jobs WHERE id = :j", j=job_id) == "succeeded"
    assert rows("SELECT attempt, status FROM task_run WHERE job_id = :j", j=job_id) == [(0, "succeeded")]
    assert _effects(unpaid.id)[:2] == ("cancelled", 1)


def test_the_same_key_defers_one_job(pg_db):
    first = tasks.defer("payments.refund_send", key="refund:RF1", refund_id=1)
    assert first is not None
    assert tasks.defer("payments.refund_send", key="refund:RF1", refund_id=1) is None  # one is waiting already
    assert tasks.defer("payments.refund_send", key="refund:RF2", refund_id=2) not in (None, first)
    assert rows("SELECT queueing_lock, lock, args->>'refund_id' FROM procrastinate_jobs ORDER BY id") == [
        ("refund:RF1", "refund:RF1", "1"), ("refund:RF2", "refund:RF2", "2")]


def test_defer_in_a_unit_of_work_commits_and_rolls_back_with_it(pg_db):
    with pytest.raises(RuntimeError):
        with session_scope() as s:
            assert tasks.defer("orders.notices", key="orders.notices", session=s) is not None
            raise RuntimeError("the business change failed")
    assert scalar("SELECT count(*) FROM procrastinate_jobs") == 0  # the job went with it
    with session_scope() as s:
        assert tasks.defer("orders.notices", key="orders.notices", session=s) is not None
        assert tasks.defer("orders.notices", key="orders.notices", session=s) is None  # and the caller goes on
        s.execute(sa.text("SELECT 1"))
    assert scalar("SELECT count(*) FROM procrastinate_jobs") == 1


def test_concurrent_defers_of_one_key_make_one_job(pg_db):
    from tests.support import race

    got = race(6, lambda i: tasks.defer("orders.notices", key="orders.notices"))
    assert sum(1 for g in got if g is not None) == 1
    assert scalar("SELECT count(*) FROM procrastinate_jobs") == 1


def test_prune_forgets_old_runs_and_finished_jobs(pg_db):
    import datetime as dt

    from gc_admin.core.clock import utcnow

    old = tasks.defer("orders.notices", key="old")
    waiting = tasks.defer("orders.notices", key="new")
    with session_scope() as s:
        s.execute(sa.text("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = :j"), {"j": old})
        s.execute(sa.text("UPDATE procrastinate_events SET at = now() - interval '40 days' WHERE job_id = :j"),
                  {"j": old})
        for days in (40, 1):
            s.execute(sa.text("INSERT INTO task_run (task, attempt, status, worker, started_at, error) "
                              "VALUES ('orders.notices', 0, 'succeeded', 'w', :t, '')"),
                      {"t": utcnow() - dt.timedelta(days=days)})
    with session_scope() as s:
        assert tasks.prune(s) == {"task_runs": 1, "jobs": 1}
    assert rows("SELECT id, status FROM procrastinate_jobs") == [(waiting, "todo")]
    assert scalar("SELECT count(*) FROM task_run") == 1


def test_a_stalled_job_is_retried_even_when_the_next_one_of_its_key_waits(pg_db):
    """A periodic job killed mid-run while the next period's job already waits (the same queueing lock): the
    stalled job goes back in the queue and the waiting duplicate is cancelled — retrying it as is would break
    the queue's one-waiting-job-per-key index, and the waiting job could never start while the stalled one
    holds the lock (that task would be stuck for good)."""
    import asyncio

    from procrastinate import exceptions as pexc

    stalled = tasks.defer("claims.payouts", key="claims.payouts")
    with session_scope() as s:  # a worker took it ... and was killed
        s.execute(sa.text("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = :j"), {"j": stalled})
    waiting = tasks.defer("claims.payouts", key="claims.payouts")  # the next period, deferred meanwhile
    assert waiting not in (None, stalled)

    async def retry() -> int:
        app = tasks._app(pg_db, "worker")
        async with app.open_async():
            [job] = await app.job_manager.list_jobs_async(id=stalled)
            with pytest.raises(pexc.UniqueViolation):  # what a plain retry does
                await app.job_manager.retry_job(job)
            return await tasks._retry_stalled_job(app.job_manager, job)

    assert asyncio.run(retry()) == 1
    assert rows("SELECT id, status, attempts FROM procrastinate_jobs ORDER BY id") == [
        (stalled, "todo", 1), (waiting, "cancelled", 0)]
