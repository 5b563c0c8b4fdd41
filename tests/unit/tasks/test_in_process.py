"""The SQLite default: the same tasks run inside the app's process (procrastinate's in-memory connector,
the app's lifespan task), with the same periodic schedule, idempotency keys and retries — ``make run`` on
SQLite still cancels unpaid orders, sends the clerks' notices and re-sends refunds WeChat Pay missed."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from gc_admin import tasks as _registry  # noqa: F401  (every task registered, as in the app)
from gc_admin.config import get_settings
from gc_admin.core import tasks
from gc_admin.db import session_scope
from gc_admin.integrations.wechatpay import setup
from gc_admin.orders import refunds
from tests.support import rows, scalar, wired
from tests.unit.orders.support import CLERK, age, buy, buyer, get, pay, shop, topup_order


class Down(httpx.BaseTransport):
    def handle_request(self, request):
        raise httpx.ConnectError("down", request=request)


def _queue() -> dict[int, dict]:
    connector = tasks._app(get_settings().database_url, "memory").connector
    return connector.jobs


def run_queue_until(done, *, timeout: float = 30, lifespan=None) -> None:
    """Run the in-process queue (``lifespan``: the app's own lifespan task) until ``done()`` holds, then stop
    it the way the app's shutdown does (cancelled: running jobs finish)."""
    async def scenario() -> None:
        runner = asyncio.create_task((lifespan or tasks.run_in_process)())
        deadline = time.monotonic() + timeout
        try:
            while not await asyncio.to_thread(done):
                assert not runner.done(), runner.exception()
                assert time.monotonic() < deadline, "the in-process queue did not get the work done in time"
                await asyncio.sleep(0.1)
        finally:
            runner.cancel()
            with pytest.raises(asyncio.CancelledError):
                await runner

    asyncio.run(scenario())


@pytest.fixture
def fast(db, monkeypatch):
    """Every periodic task every second, on this test's SQLite database."""
    monkeypatch.setenv("GC_TASKS_EVERY_SECONDS", "1")
    get_settings.cache_clear()
    tasks.reset()
    assert tasks.in_process()
    yield
    get_settings.cache_clear()
    tasks.reset()


def test_sqlite_runs_the_periodic_jobs_in_process(fast, monkeypatch):
    """The app's lifespan task (one per process; SQLite runs one process) is the in-process queue."""
    from gc_admin.gc_admin import _tasks_in_process, app

    assert _tasks_in_process in app.get_lifespan_tasks()
    monkeypatch.setenv("GC_ONDUTY_PHONES", "13700000001")
    get_settings.cache_clear()
    shop()
    user = buyer()
    with wired() as w:
        unpaid = buy(user, 1)
        age(unpaid.id, 5)
        topup = topup_order(user, w)  # paid through the simulator: its notify queued the notice task
        run_queue_until(lambda: get(unpaid.id).status == "cancelled" and scalar(
            "SELECT count(*) FROM order_notice WHERE status = 'sent'") == 1, lifespan=_tasks_in_process)
        assert w.state.orders[unpaid.order_no].trade_state == "CLOSED"
    assert rows("SELECT order_id, status, sent FROM order_notice") == [(topup, "sent", 1)]
    assert scalar("SELECT count(*) FROM sms_message WHERE template = 'new_order'") == 1
    assert scalar("SELECT count(*) FROM order_event WHERE order_id = :o AND to_status = 'cancelled'",
                  o=unpaid.id) == 1
    ran = {t for (t,) in rows("SELECT DISTINCT task FROM task_run WHERE status = 'succeeded'")}
    assert {"orders.expire_unpaid", "orders.notices"} <= ran
    assert scalar("SELECT count(*) FROM task_run WHERE status NOT IN ('succeeded')") == 0


def test_sqlite_defer_one_job_per_key_and_only_after_commit(db):
    tasks.reset()
    assert tasks.defer("orders.notices", key="orders.notices") is not None
    assert tasks.defer("orders.notices", key="orders.notices") is None  # one waits already: it does the work
    assert len(_queue()) == 1
    with pytest.raises(RuntimeError):
        with session_scope() as s:
            tasks.defer("payments.refund_send", key="refund:RF9", session=s, refund_id=9)
            raise RuntimeError("rolled back")
    assert len(_queue()) == 1  # nothing queued for a unit of work that rolled back
    with session_scope() as s:
        tasks.defer("payments.refund_send", key="refund:RF9", session=s, refund_id=9)
        assert len(_queue()) == 1  # not before the commit
    assert sorted((j["task_name"], j["queueing_lock"]) for j in _queue().values()) == [
        ("orders.notices", "orders.notices"), ("payments.refund_send", "refund:RF9")]


def test_a_refund_wechat_pay_missed_is_retried_with_backoff_until_it_is_taken(db):
    """WeChat Pay unreachable when the clerk refunds: the refund is on record (pending) and the
    ``payments.refund_send`` task is queued under the refund's number; its first try fails (still down)
    and is retried after a backoff; once WeChat answers, the retry hands over the same out_refund_no,
    once."""
    tasks.reset()
    shop()
    with wired() as w:
        order = buy(buyer(), 3)
        pay(w, order)
        setup.set_transport(Down())
        try:
            refund = refunds.refund(order_id=order.id, amount_fen=4_500, reason="用户申请退款", actor=CLERK)
            assert refund.status == "pending" and w.state.refunds == {}
            assert [(j["task_name"], j["queueing_lock"], j["args"]) for j in _queue().values()
                    if j["task_name"] != "orders.notices"] == [
                ("payments.refund_send", f"refund:{refund.out_refund_no}", {"refund_id": refund.id})]
            run_queue_until(lambda: scalar("SELECT count(*) FROM task_run WHERE task = 'payments.refund_send' "
                                           "AND status = 'failed'") == 1)
        finally:
            setup.set_transport(w.transport)
        assert [j["attempts"] for j in _queue().values() if j["task_name"] == "payments.refund_send"] == [1]
        run_queue_until(lambda: scalar("SELECT status FROM refund") == "processing")
        assert list(w.state.refunds) == [refund.out_refund_no] and w.state.refunded(order.order_no) == 4_500
    assert rows("SELECT attempt, status FROM task_run WHERE task = 'payments.refund_send' ORDER BY id") == [
        (0, "failed"), (1, "succeeded")]
    assert get(order.id).refunded_fen == 4_500


def test_the_worker_command_refuses_sqlite(db, capsys):
    from gc_admin.cli import main

    assert main(["worker"]) == 2
    assert "SQLite" in capsys.readouterr().err


def test_on_one_sqlite_file_one_process_runs_the_schedule(db):
    """Several app processes on one SQLite file (not the default): the first to lock it runs the periodic
    tasks; another runs only what it queues itself, until the first is gone."""
    import subprocess
    import sys

    from sqlalchemy.engine import make_url

    lock = f"{make_url(db).database}.tasks.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+b'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)", lock],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert tasks._schedule_lock(db) is False
    finally:
        holder.kill()
        holder.wait(10)
    assert tasks._schedule_lock(db) is True
    assert tasks._schedule_lock(db) is True  # held by this process from now on
