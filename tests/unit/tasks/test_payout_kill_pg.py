"""Issue 9: a task worker killed (SIGKILL) in the middle of a cashback payout leaves no partial effect and no
double effect after the retry. Real processes: ``python -m gc_admin worker`` on the test's PostgreSQL schema runs
the real ``claims.payouts`` task, which transfers through the real Alipay client over HTTP to the Alipay
simulator (database-backed) served by this test process. The first worker stops inside the payout
(``tests.unit.tasks.holds``) and is killed there; a second worker finds its job stalled (no heartbeat) and
runs it again."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from gc_admin import tasks as _registry  # noqa: F401  (every task registered, as in a worker)
from gc_admin.claims import payout, review
from gc_admin.core.principal import Principal
from gc_admin.db import session_scope
from gc_admin.integrations import sims
from tests.support import rows, scalar
from tests.unit.claims.conftest import claims_env  # noqa: F401  (the claims world's fixture)
from tests.unit.claims.support import all_sim_transfers, filed_claim, sim_transfers
from tests.unit.tasks.support import workers


@pytest.fixture
def db(pg_db):
    """Every fixture standing on ``db`` (``api``, ``make_staff``, ``claims_env``) uses the PostgreSQL schema."""
    return pg_db


@pytest.fixture
def alipay_port() -> Iterator[int]:
    """The Alipay simulator (its state in the test's database) served over HTTP, as a worker's
    ``GC_ALIPAY_GATEWAY=local`` client reaches it (``http://127.0.0.1:<GC_PORT>/sim/alipay/gateway.do``)."""
    app = FastAPI()
    app.include_router(sims.simulators().alipay_router, prefix="/sim/alipay")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the Alipay simulator did not start"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def unsent(make_staff, api, request) -> dict:
    """An approved ¥50 Alipay claim whose payout was recorded (committed) by a clerk's request that then died
    before sending it, a few minutes ago: the ``claims.payouts`` sweep's work (it resumes payouts idle for a
    minute)."""
    request.getfixturevalue("claims_env")  # receipts in the test's folder, the cashback products
    clerk = make_staff("chen", "clerk", name="陈内勤")
    principal = Principal(id=clerk.id, username="chen", display_name="陈内勤", role="clerk")
    claim = filed_claim(api)
    with session_scope() as s:
        review.approve(s, claim_id=claim["id"], principal=principal)
    with session_scope() as s:
        p = payout.record_payout(s, claim_id=claim["id"], principal=principal)
        claim["out_biz_no"], claim["payout_id"] = p.out_biz_no, p.id
    _minutes_pass(3)
    return claim


def _minutes_pass(n: int) -> None:
    """``n`` minutes pass for the payout row: its last change and its sender lease (2 min) move back. (The
    sweep's one-minute rule and a dead sender's lease are the only waits on the way; the test does not sleep
    through them.)"""
    with session_scope() as s:
        s.execute(sa.text("UPDATE claim_payout SET updated_at = updated_at - make_interval(mins => :n), "
                          "sending_until = sending_until - make_interval(mins => :n)"), {"n": n})


def _effects(claim: dict) -> dict:
    return {
        "transfers": all_sim_transfers(),
        "claim": scalar("SELECT status FROM claim WHERE id = :i", i=claim["id"]),
        "payouts": rows("SELECT out_biz_no, status FROM claim_payout"),
        "ledger": rows("SELECT kind, amount_fen, ref FROM ledger_entry"),
        "coupon": scalar("SELECT status FROM coupon WHERE id = :i", i=claim["coupon_id"]),
        "consumed": scalar("SELECT count(*) FROM audit_log WHERE action = 'coupon.consumed'"),
        "paid_audit": scalar("SELECT count(*) FROM audit_log WHERE action = 'claim.paid' AND target_id = :i",
                             i=str(claim["id"])),
        "paid_events": scalar("SELECT count(*) FROM claim_event WHERE claim_id = :i AND action = 'paid'",
                              i=claim["id"]),
    }


def _payout_job() -> int | None:
    """The ``claims.payouts`` job whose run is under way (its ``task_run`` says running)."""
    got = rows("SELECT job_id FROM task_run WHERE task = 'claims.payouts' AND status = 'running'")
    return got[0][0] if got else None


@pytest.mark.parametrize("at", ["before_send", "after_transfer"])
def test_a_worker_killed_mid_payout_pays_once_after_the_retry(unsent, pg_db, tmp_path, alipay_port, at):
    no = unsent["out_biz_no"]
    unpaid = {"transfers": 0, "claim": "paying", "payouts": [(no, "recorded")], "ledger": [], "coupon": "reserved",
              "consumed": 0, "paid_audit": 0, "paid_events": 0}
    assert _effects(unsent) == unpaid
    env = {"GC_PORT": str(alipay_port)}
    with workers(pg_db, tmp_path, **env) as w:
        first = w.start(GC_TASKS_EXTRA_MODULES="tests.unit.tasks.holds", GC_TEST_HOLD_AT=at,
                        GC_TEST_HOLD_DIR=str(tmp_path))
        w.wait_for(f"the payout to stop {at}", lambda: (tmp_path / "started").exists())
        job_id = _payout_job()
        assert job_id is not None
        if at == "before_send":  # the lease taken and the row marked sent (committed); Alipay not asked
            assert _effects(unsent) == {**unpaid, "payouts": [(no, "sent")]}
        else:  # Alipay executed it and said SUCCESS; nothing of it committed here yet
            assert _effects(unsent) == {**unpaid, "transfers": 1, "payouts": [(no, "sent")]}
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert _effects(unsent)["payouts"] == [(no, "sent")]  # the dead worker's transaction rolled back
        _minutes_pass(3)  # its sender lease runs out
        w.start(**env)  # another worker: the dead one stopped beating, its job is stalled and run again
        w.wait_for("the killed job retried to success",
                   lambda: scalar("SELECT status FROM procrastinate_jobs WHERE id = :j", j=job_id) == "succeeded")
    runs = rows("SELECT attempt, status, result->>'succeeded' FROM task_run WHERE job_id = :j ORDER BY id",
                j=job_id)
    assert runs == [(0, "interrupted", None), (1, "succeeded", "1")], w.log()
    # paid once: one transfer at Alipay under the payout's out_biz_no, one ledger entry, the coupon used once
    assert sim_transfers(no) == 1
    assert _effects(unsent) == {"transfers": 1, "claim": "paid", "payouts": [(no, "succeeded")],
                                "ledger": [("cashback_payout", -5000, f"cashback:{no}")], "coupon": "used",
                                "consumed": 1, "paid_audit": 1, "paid_events": 1}
