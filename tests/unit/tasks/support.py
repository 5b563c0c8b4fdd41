"""Real task-worker processes for the queue tests (``python -m gc_admin worker`` on the test's schema)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gc_admin.config import PROJECT_ROOT
from tests.support import rows, scalar


class Workers:
    """Worker processes started by a test (each logs to its own file); all are stopped at the end."""

    def __init__(self, url: str, logs: Path, **env: str) -> None:
        self.url, self.logs, self.env = url, logs, env
        self.procs: list[subprocess.Popen] = []
        self.terminated: set[int] = set()  # pids told to stop (SIGTERM): their exit is no crash

    def start(self, **env: str) -> subprocess.Popen:
        n = len(self.procs)
        out = open(self.logs / f"worker{n}.log", "wb")  # noqa: SIM115 - closed with the process
        full = {**os.environ, "GC_DATABASE_URL": self.url, "GC_ENV": "test", "GC_TASKS_HEARTBEAT_SECONDS": "1",
                "GC_TASKS_EVERY_SECONDS": "2", **self.env, **env}
        proc = subprocess.Popen([sys.executable, "-m", "gc_admin", "worker"], cwd=PROJECT_ROOT, env=full,
                                stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.procs.append(proc)
        return proc

    def log(self) -> str:
        return "\n".join(f"--- worker{i}\n" + (self.logs / f"worker{i}.log").read_text(errors="replace")[-3000:]
                         for i in range(len(self.procs)))

    def wait_for(self, what: str, ready: Callable[[], Any], timeout: float = 90) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = ready()
            if value:
                return value
            dead = [p.args for p in self.procs if p.poll() not in (None, -signal.SIGKILL)
                    and not (p.pid in self.terminated and p.returncode == 0)]
            assert not dead, f"a worker exited while waiting for {what}:\n{self.log()}"
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()}")

    def registered(self) -> int:
        return scalar("SELECT count(*) FROM procrastinate_workers")

    def terminate(self, proc: subprocess.Popen) -> None:
        """SIGTERM: a graceful stop (the worker finishes its running jobs, then exits 0)."""
        self.terminated.add(proc.pid)
        proc.send_signal(signal.SIGTERM)

    def stop(self, proc: subprocess.Popen, timeout: float = 60) -> int:
        """SIGTERM, then wait for a graceful exit."""
        self.terminate(proc)
        return proc.wait(timeout)


@contextlib.contextmanager
def workers(url: str, logs: Path, **env: str) -> Iterator[Workers]:
    """Task worker processes for a test; at the end each live one is stopped gracefully (SIGTERM: it lets its running
    job finish and puts its run on record) — a SIGKILL here could land between a job's last commit and the
    ``task_run`` row saying it succeeded, and the test would read ``running``. Killed if it does not stop in 30 s."""
    w = Workers(url, logs, **env)
    try:
        yield w
    finally:
        live = [p for p in w.procs if p.poll() is None]
        for p in live:
            w.terminate(p)
        for p in live:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


def process_with_local_port(port: int) -> int:
    """The pid of the process on this machine holding the TCP socket whose local port is ``port`` (the
    client end of a database connection: ``pg_stat_activity.client_port``)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                        return int(pid)
    raise AssertionError(f"no process holds local port {port}")


#: A database session in the middle of a stock import: its transaction has written (the import row) and it is
#: streaming the codes in (COPY) or storing them (INSERT).
IMPORTING = ("SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database() "
             "AND pid <> pg_backend_pid() AND state = 'active' AND backend_xid IS NOT NULL "
             "AND (query LIKE 'COPY _gc_codes%' OR query LIKE 'INSERT INTO stock_code%')")


#: A database session in the middle of a batch issuance: its transaction has written (the batch row claimed) and it
#: is streaming the coupons' lines in (COPY), creating the coupons (INSERT) or storing the per-row results.
ISSUING = ("SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database() "
           "AND pid <> pg_backend_pid() AND state = 'active' AND backend_xid IS NOT NULL "
           "AND (query LIKE 'COPY _gc_issue%' OR query LIKE '%INSERT INTO coupon %' OR query LIKE 'COPY issuance_row%')")


def busy_session(request: Any, query: str, *, what: str, timeout: float = 240) -> tuple[int, int]:
    """Wait until the work of the future ``request`` (a request or an upload) shows in ``query`` (one of
    :data:`IMPORTING`, :data:`ISSUING`); that database session's (pid, client port)."""
    deadline = time.monotonic() + timeout
    while not (busy := rows(query)):
        assert not request.done(), f"the work ended before it was seen {what}: {request.result()}"
        assert time.monotonic() < deadline, f"the work was never seen {what}"
        time.sleep(0.02)
    [(backend, client_port)] = busy
    return backend, client_port


def storing_codes(request: Any, *, timeout: float = 240) -> tuple[int, int]:
    """Wait until an import (whose request or upload is the future ``request``) is storing its codes; that
    database session's (pid, client port)."""
    return busy_session(request, IMPORTING, what="storing codes", timeout=timeout)


def session_gone(backend: int, *, timeout: float = 120) -> None:
    """Wait until the database has ended the session ``backend`` (its client was killed: it rolls back)."""
    deadline = time.monotonic() + timeout
    while scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = :p", p=backend):
        assert time.monotonic() < deadline, "the killed process's database session never ended"
        time.sleep(0.1)


def kill_mid_task(w: Workers, proc: subprocess.Popen, request: Any, backend: int, *, stored: Callable[[], Any],
                  expected: Any) -> subprocess.Popen:
    """SIGKILL the worker ``proc`` while its database session ``backend`` is inside the task's unit of work, wait
    until the database has rolled that back, and check that nothing of it stayed (``stored()`` is still
    ``expected``), the task's bytes are kept for the retry (one ``task_file`` row) and the waiting ``request`` has
    no answer yet; then start another worker — the dead one stopped beating, its job is found stalled and run
    again there. Returns that worker."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    session_gone(backend)  # the database notices its client is gone and rolls back
    assert stored() == expected
    assert scalar("SELECT count(*) FROM task_file") == 1
    assert not request.done()  # the request still waits
    return w.start()


def queued_jobs(task: str) -> list[tuple[str, str, dict]]:
    """What the queue holds (waiting or done) for ``task``: (task, key, args) — the same on both databases."""
    from gc_admin.config import get_settings
    from gc_admin.core import tasks

    if tasks.in_process():
        jobs = tasks._app(get_settings().database_url, "memory").connector.jobs.values()
        return [(j["task_name"], j["queueing_lock"], j["args"]) for j in jobs if j["task_name"] == task]
    return [(t, k, a if isinstance(a, dict) else json.loads(a)) for t, k, a in
            rows("SELECT task_name, queueing_lock, args FROM procrastinate_jobs WHERE task_name = :t", t=task)]
