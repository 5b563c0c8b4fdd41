"""A test-only task (imported by a worker started with ``GC_TASKS_EXTRA_MODULES=tests.unit.tasks.blocking``):
the real ``orders.expire_unpaid`` body that, on its first run, stops half-way and waits for a flag file —
so a test can kill the worker (SIGKILL) or stop it (SIGTERM) in the middle of a task.

``phase`` says where the first run stops: ``before_commit`` (the cancellations made, not committed) or
``after_commit`` (committed, the job not yet marked done). ``ahead_minutes`` runs the body as if that much
later (the order's payment deadline has passed then, not now — so the worker's own periodic
``orders.expire_unpaid`` leaves the test's order alone and only this task can cancel it).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from gc_admin.core.clock import utcnow
from gc_admin.core.tasks import TaskDef, register
from gc_admin.db import session_scope

NAME = "test.expire_blocking"


def hold(flags: Path) -> None:
    (flags / "started").touch()
    deadline = time.monotonic() + 120
    while not (flags / "release").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never released the blocking task")
        time.sleep(0.05)


def expire_blocking(*, flag_dir: str, phase: str, ahead_minutes: int) -> dict:
    from gc_admin.orders.flows import cancel_expired_unpaid

    flags = Path(flag_dir)
    first = not (flags / "started").exists()
    with session_scope() as s:
        result = cancel_expired_unpaid(s, now=utcnow() + dt.timedelta(minutes=ahead_minutes))
        if first and phase == "before_commit":
            hold(flags)
    if first and phase == "after_commit":
        hold(flags)
    return {"cancelled": result.cancelled, "first": first}


register(TaskDef(NAME, expire_blocking, title="测试：中途停下的过期取消", retries=0))
