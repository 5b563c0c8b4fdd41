"""Background work: one task queue — procrastinate on PostgreSQL, the same task code in-process on SQLite.

A **task** is a named function of keyword arguments (JSON values) that opens its own units of work
and returns something JSON-able (counts, ids). :func:`register` adds it to :data:`REGISTRY`;
``gc_admin/tasks.py`` (wiring) is the one place every feature's task is registered. A feature asks
for work with :func:`defer` — by name, so it imports nothing above ``core``::

    from gc_admin.core import tasks
    tasks.defer("payments.refund_send", key=f"refund:{out_refund_no}", refund_id=refund.id)

``key`` is the work's natural idempotency key (``refund:<out_refund_no>``, ``import:<id>``,
``batch:<batch_id>``); it becomes procrastinate's ``queueing_lock`` *and* ``lock``: at most one job
per key waits in the queue (deferring the same key again while one waits defers nothing and returns
``None``), and two jobs of one key never run at the same time. A task body must still be safe to run
again after it has succeeded or died half-way (a worker killed mid-task: its job is retried): every
body here is a set-based conditional update (``UPDATE ... WHERE status = ... RETURNING``) or goes
through an outbox row claimed that way, so a second run changes nothing the first did.

**PostgreSQL** (production): jobs are rows in procrastinate's tables (its schema is applied by the
Alembic migration ``i9_tasks``), run by ``python -m gc_admin worker`` — a process of its own, as many
as you like on as many hosts. Periodic tasks (a ``cron``) are deferred by every worker's periodic
deferrer but recorded once per period (procrastinate's ``procrastinate_periodic_defers`` unique key)
and carry their name as queueing lock, so however many workers run, each period runs once. Failures
are retried with exponential backoff (:class:`TaskDef` ``retries``/``backoff_seconds``). Each worker
beats a heartbeat every ``GC_TASKS_HEARTBEAT_SECONDS``; the built-in periodic task
``tasks.retry_stalled`` puts a job whose worker stopped beating for 3 heartbeats (killed, host lost)
back in the queue (a job of the same key queued meanwhile, such as the next period, is cancelled: the stalled
one runs in its place), and another worker runs it again. SIGTERM / SIGINT stop a worker gracefully: it
takes no new job and lets the running ones finish. With ``session=`` a job is deferred *in the
caller's transaction* (committed or rolled back with the business change: the outbox pattern).

**SQLite** (the zero-setup default, one process): the same tasks run in the app's process on
procrastinate's in-memory connector (:func:`run_in_process`, the app's lifespan task), with the same
periodic schedule, locks and retries. Jobs deferred there live in memory: what a restart loses is
found again by the periodic sweeps (pending refunds, pending notices), which is why every deferred task
has a periodic twin that finds its work in the business tables. With ``session=`` the job is deferred
when that unit of work commits.

Task arguments are stored in the queue and appear in its logs: pass ids, never phones, codes or tokens.
Every attempt is written to ``task_run`` (:class:`~gc_admin.core.models.TaskRun`): ``GET /admin/jobs``
shows each periodic task's last run and result from there.
Bytes a task needs (an uploaded file) go in ``task_file`` under the task's key (:func:`store_file`, in the
deferring unit of work; the task's last unit of work drops them): every host's worker reads them there.

**A request that answers with the task's result** (an import's report) defers the task, commits, then
:func:`wait_for` its outcome in the business tables, up to ``GC_TASKS_WAIT_SECONDS``; when the wait runs out it
answers "queued / running" and the GET of that work gives the result later. When no worker runs this
process's queue — SQLite without the app's lifespan task (tests, scripts), or PostgreSQL with no live
``gc_admin worker`` — the jobs waiting in the :data:`WAITED` queue (where such tasks are deferred: ``TaskDef(queue=
WAITED)``) are run by the waiting thread itself, through the same queue and the same task code (:func:`run_waiting`),
so the answer never depends on a worker being up; every other job (refund retries, OCR, payouts) waits for a worker.
``gc_admin worker`` and the in-process runner run every queue.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import croniter
import procrastinate
from procrastinate import exceptions as pexc
from procrastinate.testing import InMemoryConnector
from sqlalchemy import delete as sa_delete
from sqlalchemy import event, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from gc_admin.config import get_settings
from gc_admin.core import logs
from gc_admin.core.clock import as_utc, utcnow
from gc_admin.core.models import TaskFile, TaskRun
from gc_admin.db import session_scope

log = logging.getLogger("gc_admin.tasks")

STALLED_TASK = "tasks.retry_stalled"
STALLED_BEATS = 3  # a worker silent for this many heartbeats is dead
WAITED = "waited"  # the queue of the tasks a request waits for (coupons.import, coupons.issue_batch)


@dataclasses.dataclass(frozen=True)
class TaskDef:
    """One kind of background work. ``run(**kwargs)`` opens its own units of work and returns a
    JSON-able result (kept in ``task_run``); raising retries it (``retries`` more times, waiting
    ``backoff_seconds`` ** attempt: 2, 4, 8 … s). ``cron`` makes it periodic (5 fields, or 6 with
    seconds last); ``title`` / ``every`` say in Chinese what it does and how often."""

    name: str
    run: Callable[..., Any]
    title: str = ""
    cron: str | None = None
    every: str = ""
    retries: int = 5
    backoff_seconds: int = 2
    queue: str = "default"  # procrastinate's queue; WAITED for work a request waits for (see wait_for)


REGISTRY: dict[str, TaskDef] = {}
_apps: dict[tuple[Any, ...], procrastinate.App] = {}  # (url, role[, thread: PostgreSQL's drain apps])
_apps_lock = threading.Lock()


def register(defn: TaskDef) -> TaskDef:
    """Add a task to the registry (and to any queue app already built)."""
    known = REGISTRY.get(defn.name)
    if known is not None and known is not defn:
        raise ValueError(f"task {defn.name} is registered twice")
    REGISTRY[defn.name] = defn
    with _apps_lock:
        for (_url, role, *_thread), app in _apps.items():
            _attach(app, defn, scheduled=role != "drain")
    return defn


def periodic() -> list[TaskDef]:
    return [d for d in REGISTRY.values() if d.cron]


def cron_of(defn: TaskDef) -> str:
    """The schedule in force: the task's own, or every ``GC_TASKS_EVERY_SECONDS`` (dev/test only)."""
    every = get_settings().tasks_every_seconds
    assert defn.cron is not None
    return f"* * * * * */{every}" if every else defn.cron


def in_process(url: str | None = None) -> bool:
    """Whether tasks run inside the app's process (SQLite) rather than in ``gc_admin worker`` (PostgreSQL)."""
    return not (url or get_settings().database_url).startswith("postgresql")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def heartbeat_seconds() -> float:
    return float(get_settings().tasks_heartbeat_seconds)


# --- the procrastinate apps --------------------------------------------------------------------------

def _conninfo(url: str) -> str:
    """libpq's URI for a SQLAlchemy ``postgresql+psycopg://`` URL (query options such as the
    ``search_path`` kept)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _app(url: str, role: str) -> procrastinate.App:
    """The queue app for ``url``: ``defer`` (PostgreSQL, deferring on the caller's connection, never
    opened), ``worker`` (PostgreSQL, its own pool), ``memory`` (SQLite: one per database, both roles) or
    ``drain`` (the tasks without their schedules, on the same queue: :func:`run_waiting`)."""
    if in_process(url) and role != "drain":
        role = "memory"
    memory = _app(url, "memory") if in_process(url) and role == "drain" else None
    # PostgreSQL's drain app is one per thread: each run_waiting opens and closes its pool, and two requests
    # waiting at once (two imports) must not close the pool under each other
    key: tuple[Any, ...] = (url, role, threading.get_ident()) if role == "drain" and memory is None else (url, role)
    with _apps_lock:
        app = _apps.get(key)
        if app is None:
            if memory is not None:
                connector: Any = memory.connector
            elif role == "memory":
                connector = InMemoryConnector()
            elif role in ("worker", "drain"):
                connector = procrastinate.PsycopgConnector(conninfo=_conninfo(url), min_size=1, max_size=6)
            else:
                connector = procrastinate.PsycopgConnector(conninfo=_conninfo(url))
            app = _apps[key] = procrastinate.App(connector=connector)
            for defn in REGISTRY.values():
                _attach(app, defn, scheduled=role != "drain")
            if role == "worker":
                _attach_stalled_recovery(app)
        return app


def reset() -> None:
    """Forget the queue apps (tests: a new database per test)."""
    with _apps_lock:
        _apps.clear()


def _attach(app: procrastinate.App, defn: TaskDef, *, scheduled: bool = True) -> None:
    if defn.name in app.tasks:
        return

    def job(context: procrastinate.JobContext, **kwargs: Any) -> Any:
        return _run_logged(defn, context, kwargs)

    job.__name__ = job.__qualname__ = defn.name.replace(".", "_")
    retry = procrastinate.RetryStrategy(max_attempts=defn.retries, exponential_wait=defn.backoff_seconds)
    task = app.task(name=defn.name, pass_context=True, retry=retry, queue=defn.queue)(job)
    if defn.cron and scheduled:
        app.periodic(cron=cron_of(defn), periodic_id=defn.name, queueing_lock=defn.name, lock=defn.name)(task)


def _attach_stalled_recovery(app: procrastinate.App) -> None:
    """The worker's built-in periodic task: jobs whose worker stopped beating go back in the queue."""
    every = get_settings().tasks_every_seconds

    async def retry_stalled(context: procrastinate.JobContext, timestamp: int) -> int:
        manager = context.app.job_manager
        stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_BEATS * heartbeat_seconds())
        retried = 0
        for job in stalled:
            log.warning("job %s[%s] stalled (its worker stopped beating): queuing it again", job.task_name, job.id)
            retried += await _retry_stalled_job(manager, job)
        return retried

    task = app.task(name=STALLED_TASK, pass_context=True)(retry_stalled)
    app.periodic(cron=f"* * * * * */{every}" if every else "* * * * *", periodic_id=STALLED_TASK,
                 queueing_lock=STALLED_TASK)(task)


async def _retry_stalled_job(manager: Any, job: Any, *, tries: int = 3) -> int:
    """Put a stalled job back in the queue (1), or leave it for the next sweep (0).

    A job waiting with the stalled job's queueing lock (the next period of a periodic task, the same key
    deferred again) would make the retry break the queue's "one waiting job per key" index — and that
    waiting job can never start while the stalled one holds the lock: the task would be stuck for good.
    The waiting duplicate is cancelled (it was the same work) and the stalled job retried instead."""
    for _ in range(tries):
        try:
            await manager.retry_job(job)
            return 1
        except pexc.UniqueViolation:
            for waiting in await manager.list_jobs_async(queueing_lock=job.queueing_lock, status="todo"):
                if waiting.id != job.id and await manager.cancel_job_by_id_async(waiting.id):
                    log.info("job %s[%s] cancelled: the stalled job %s of the same key runs instead",
                             waiting.task_name, waiting.id, job.id)
    log.warning("job %s[%s] stalled: not queued again yet (jobs of its key keep arriving)", job.task_name, job.id)
    return 0


# --- running one attempt ---------------------------------------------------------------------------

def _jsonable(value: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if not isinstance(value, dict):
        value = {"value": value}
    return json.loads(json.dumps(value, default=str))


def _run_logged(defn: TaskDef, context: procrastinate.JobContext, kwargs: dict[str, Any]) -> Any:
    period = kwargs.pop("timestamp", None)  # a periodic job's scheduled time (procrastinate passes it)
    job = context.job
    with session_scope() as s:
        now = utcnow()
        if job.id is not None:  # an earlier attempt of this job that never finished: its worker died
            s.execute(update(TaskRun).where(col(TaskRun.job_id) == job.id, col(TaskRun.task) == defn.name,
                                            col(TaskRun.status) == "running")
                      .values(status="interrupted", finished_at=now).execution_options(synchronize_session=False))
        run = TaskRun(task=defn.name, job_id=job.id, attempt=job.attempts, status="running", worker=worker_name(),
                      started_at=now, result={"period": period} if period is not None else None)
        s.add(run)
        s.flush()
        run_id = run.id
    _attempt.left = max(0, defn.retries - (job.attempts or 0))  # procrastinate: attempts < max_attempts retries
    try:
        result = defn.run(**kwargs)
    except Exception as exc:
        _finish(run_id, "failed", error=logs.redact(f"{type(exc).__name__}: {exc}")[:500], period=period)
        log.warning("task %s (job %s, attempt %s) failed: %s", defn.name, job.id, job.attempts, type(exc).__name__)
        raise
    finally:
        _attempt.left = 0
    _finish(run_id, "succeeded", result=_jsonable(result), period=period)
    return result


def _finish(run_id: int | None, status: str, *, result: dict[str, Any] | None = None, error: str = "",
            period: int | None = None) -> None:
    out = dict(result or {})
    if period is not None:
        out["period"] = period
    with session_scope() as s:
        s.execute(update(TaskRun).where(col(TaskRun.id) == run_id)
                  .values(status=status, finished_at=utcnow(), result=out or None, error=error)
                  .execution_options(synchronize_session=False))


# --- deferring ----------------------------------------------------------------------------------------

def defer(name: str, *, key: str, session: Session | None = None, delay_seconds: float = 0,
          **kwargs: Any) -> int | None:
    """Queue one run of task ``name`` with ``kwargs`` (JSON values) under the idempotency ``key``;
    returns the job's id, or ``None`` when a job of that key is already waiting (it will do the work).

    ``session``: PostgreSQL — the job is inserted in that unit of work (it exists only if the caller
    commits); SQLite — it is queued when that unit of work commits (and dropped if it rolls back).
    Without ``session`` it is queued now, in a unit of work of its own. ``delay_seconds``: not before.
    Call it from synchronous code (a thread); async code uses :func:`defer_async`.
    """
    url = get_settings().database_url
    if session is None and not in_process(url):
        with session_scope() as own:
            return defer(name, key=key, session=own, delay_seconds=delay_seconds, **kwargs)
    if session is not None and in_process(url):
        event.listen(session, "after_commit",
                     lambda _s: _defer_quietly(name, key=key, delay_seconds=delay_seconds, **kwargs), once=True)
        return None
    options: dict[str, Any] = {"queueing_lock": key, "lock": key, "task_kwargs": kwargs}
    if delay_seconds:
        options["schedule_in"] = {"seconds": delay_seconds}
    try:
        if session is None:  # the in-memory queue (SQLite)
            deferrer = _app(url, "memory").configure_task(name, **options)
            return _run_in_this_thread(deferrer.defer_async())
        with session.begin_nested():  # a refused queueing lock must not abort the caller's transaction
            raw = session.connection().connection.dbapi_connection  # (this emits the SAVEPOINT)
            return _app(url, "defer").configure_task(name, connection=raw, **options).defer()
    except pexc.AlreadyEnqueued:
        log.info("task %s: a job with key %s is already waiting; not deferred again", name, key)
        return None


_defer_local = threading.local()


def _run_in_this_thread(coro: Any) -> Any:
    """Await ``coro`` on this thread's own event loop (made once per thread, kept: web workers are a
    pool of long-lived threads). Procrastinate's sync ``defer()`` goes through asgiref, which makes a
    new loop in a new thread on every call (~0.5 ms, on every claim submission), and handing it to a
    shared loop thread costs a thread switch under load; the in-memory connector hands its "job
    inserted" notice to the worker's own loop from whichever thread defers. Like asgiref, not for a
    thread that is running an event loop (async code awaits :func:`defer_async`)."""
    loop = getattr(_defer_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _defer_local.loop = asyncio.new_event_loop()
    return loop.run_until_complete(coro)


# a database error that may pass (a lost connection, SQLite's "database is locked", a PostgreSQL deadlock or
# serialization failure: SQLAlchemy raises them as OperationalError / InterfaceError): worth another attempt
PASSING = (sa_exc.OperationalError, sa_exc.InterfaceError)
_attempt = threading.local()  # the running job's retries left (set by _run_logged on the job's thread)


def retries_left() -> int:
    """How many more attempts the queue gives the job running on this thread (0 outside a job)."""
    return getattr(_attempt, "left", 0)


def run_recorded(work: Callable[[], None], *, fail: Callable[[str, str], None], what: str,
                 crashed: tuple[str, str], refused: type[Exception] | tuple[type[Exception], ...] = (),
                 logger: logging.Logger = log) -> bool:
    """The body of a task whose failure is put on record instead of retried for ever (an import, a batch):
    ``work()``; a ``refused`` error (the input's fault: its ``message`` and ``code``) or any other error
    (ours: logged, ``crashed`` = (message, code)) is handed to ``fail(message, code)`` after ``work``'s unit of
    work rolled back. A :data:`PASSING` database error is raised instead while the job has attempts left
    (:func:`retries_left`): the queue runs it again after its backoff, and only the last attempt's error goes on
    record. A killed worker raises nothing here: its job is retried. Whether ``work`` ran through."""
    try:
        work()
        return True
    except refused as exc:
        fail(exc.message, exc.code)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - our fault, not the input's: on record as failed, not retried for ever
        if isinstance(exc, PASSING) and retries_left() > 0:
            logger.warning("%s: %s (a passing database error), the queue tries it again", what, type(exc).__name__)
            raise
        logger.exception("%s failed", what)
        fail(*crashed)
    return False


def defer_again(name: str, ids: list[int], *, key: Callable[[int], str], arg: str, session: Session) -> int:
    """A sweep's work: defer ``name`` again for each of ``ids`` (rows a task left unfinished: its job lost, or still
    running — then the new job waits for the key's lock and finds the row final), with ``key(id)`` and the id as
    its one argument ``arg``; how many."""
    for id_ in ids:
        defer(name, key=key(id_), session=session, **{arg: id_})
    return len(ids)


async def defer_async(name: str, *, key: str, delay_seconds: float = 0, **kwargs: Any) -> int | None:
    """:func:`defer` from async code (runs it in a thread)."""
    return await asyncio.to_thread(defer, name, key=key, delay_seconds=delay_seconds, **kwargs)


def _defer_quietly(name: str, **kw: Any) -> None:
    try:
        defer(name, **kw)
    except Exception:  # noqa: BLE001 - after a commit: the periodic sweep finds the work instead
        log.exception("task %s: deferring after commit failed", name)


# --- running the queue ---------------------------------------------------------------------------------

def _worker_options(*, concurrency: int, wait: bool, signals: bool) -> dict[str, Any]:
    beat = heartbeat_seconds()
    return {"concurrency": concurrency, "wait": wait, "name": worker_name(), "install_signal_handlers": signals,
            "update_heartbeat_interval": beat, "stalled_worker_timeout": STALLED_BEATS * beat,
            "fetch_job_polling_interval": min(5.0, beat), "shutdown_graceful_timeout": None}


async def run_worker(*, concurrency: int = 2, wait: bool = True) -> None:
    """``python -m gc_admin worker``: run the queue on PostgreSQL until SIGTERM / SIGINT (then finish the
    running jobs and unregister)."""
    url = get_settings().database_url
    if in_process(url):
        raise RuntimeError("the task worker needs PostgreSQL; on SQLite tasks run inside the app process")
    app = _app(url, "worker")
    log.info("task worker %s: %s", worker_name(), ", ".join(sorted(app.tasks)))
    async with app.open_async():
        await app.run_worker_async(**_worker_options(concurrency=concurrency, wait=wait, signals=True))


async def run_in_process(*, wait: bool = True) -> None:
    """SQLite: run the queue inside this process (the app's lifespan task; cancelled at shutdown, when
    running jobs are let finish). On PostgreSQL it returns at once: ``gc_admin worker`` runs the tasks."""
    url = get_settings().database_url
    if not in_process(url):
        return
    # Several app processes on one SQLite file (not the default): one of them runs the schedule, each runs
    # what it queued itself.
    app = _app(url, "memory" if _schedule_lock(url) else "drain")
    global _runners
    _runners += 1
    try:
        async with app.open_async():
            await app.run_worker_async(**_worker_options(concurrency=2, wait=wait, signals=False))
    finally:
        _runners -= 1


_runners = 0  # in-process queue runners alive in this process (SQLite: the app's lifespan task)


def prune(session: Session, *, keep_days: int = 30) -> dict[str, int]:
    """Housekeeping: forget ``task_run`` rows and (PostgreSQL) finished queue jobs older than ``keep_days``."""
    cutoff = utcnow() - dt.timedelta(days=keep_days)
    runs = session.execute(sa_delete(TaskRun).where(col(TaskRun.started_at) < cutoff)
                           .execution_options(synchronize_session=False)).rowcount
    jobs = 0
    if not in_process():
        from procrastinate import sql as psql

        with session.connection().connection.dbapi_connection.cursor() as cur:
            cur.execute(psql.queries["delete_old_jobs"], {"nb_hours": keep_days * 24, "queue": None,
                                                          "statuses": ["succeeded", "failed", "cancelled", "aborted"]})
            jobs = cur.rowcount
    return {"task_runs": int(runs or 0), "jobs": int(jobs or 0)}


async def run_waiting_async(queues: list[str] | None = None) -> None:
    """Run the jobs waiting in the queue now, in this process, and return when none is left (no periodic
    deferring: only what was queued). ``queues``: only the jobs of these queues (default: every queue — tests,
    and a manual catch-up; :func:`wait_for` drains :data:`WAITED` only)."""
    app = _app(get_settings().database_url, "drain")
    async with app.open_async():
        await app.run_worker_async(**{**_worker_options(concurrency=1, wait=False, signals=False),
                                      "listen_notify": False, "queues": queues})


def run_waiting(queues: list[str] | None = None) -> None:
    asyncio.run(run_waiting_async(queues))


def worker_alive() -> bool:
    """Whether a worker runs this process's queue now: SQLite — the in-process runner (:func:`run_in_process`)
    is up in this process; PostgreSQL — some ``gc_admin worker`` beat its heartbeat in the last
    :data:`ALIVE_SECONDS` (longer than a killed worker takes to be found stalled, so a worker's death does not
    turn the waiting requests into workers before another worker has taken its job back)."""
    url = get_settings().database_url
    if in_process(url):
        return _runners > 0
    with session_scope() as s:
        return s.execute(text("SELECT 1 FROM procrastinate_workers WHERE last_heartbeat > now() - make_interval("
                              "secs => :secs) LIMIT 1"),
                         {"secs": max(ALIVE_SECONDS, 2 * STALLED_BEATS * heartbeat_seconds())}).first() is not None


ALIVE_SECONDS = 60


def wait_for(done: Callable[[], Any], *, timeout: float | None = None, poll_seconds: float = 0.2) -> Any:
    """Wait for deferred work to be done: ``done()`` (reading the business tables, in units of work of its own)
    returns something truthy once it is; that is returned, or ``None`` after ``timeout`` seconds (default
    ``GC_TASKS_WAIT_SECONDS``). While no worker runs the queue (:func:`worker_alive`), the jobs waiting in the
    :data:`WAITED` queue are run here, in this thread (:func:`run_waiting`: the same queue, task code, locks and
    retries) — only those: a refund retry, an OCR or a payout query never runs inside a request. Call it from
    synchronous code (a thread), after the unit of work that deferred the work has committed."""
    wait = get_settings().tasks_wait_seconds if timeout is None else timeout
    deadline = time.monotonic() + wait
    while True:
        value = done()
        if value:
            return value
        pause = poll_seconds
        if not worker_alive():
            run_waiting([WAITED])
            value = done()
            if value:
                return value
            pause = max(pause, 1.0)  # the work is under way elsewhere (a stalled job): no drain every 0.2 s
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))


# --- bytes for tasks ---------------------------------------------------------------------------------

def store_file(session: Session, *, key: str, data: bytes) -> int:
    """Keep ``data`` for the task of ``key`` (in the caller's unit of work, the one that defers the task)."""
    row = TaskFile(key=key, data=data, created_at=utcnow())
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


def load_file(session: Session, *, key: str) -> bytes | None:
    """The bytes kept for the task of ``key``; ``None`` once dropped (the work is final)."""
    data = session.exec(select(TaskFile.data).where(col(TaskFile.key) == key)).first()
    return None if data is None else bytes(data)


def drop_file(session: Session, *, key: str) -> int:
    """Forget the bytes of ``key`` (in the task's final unit of work); returns how many rows went."""
    return int(session.execute(sa_delete(TaskFile).where(col(TaskFile.key) == key)
                               .execution_options(synchronize_session=False)).rowcount or 0)


_lock_files: dict[str, Any] = {}


def _schedule_lock(url: str) -> bool:
    """Whether this process runs the periodic schedule of the SQLite database at ``url``: the first process
    to lock ``<database>.tasks.lock`` does, until it exits (the lock goes with it)."""
    path = make_url(url).database or ""
    if not path or path == ":memory:":
        return True
    if url in _lock_files:
        return True
    import fcntl

    handle = open(f"{path}.tasks.lock", "a+b")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        log.info("another process runs the periodic tasks of %s; this one runs only what it queues", path)
        return False
    _lock_files[url] = handle
    return True


# --- what the jobs page shows ----------------------------------------------------------------------

def _waiting(session: Session, names: list[str]) -> dict[str, int]:
    """Jobs of these tasks waiting in the queue (not yet started)."""
    url = get_settings().database_url
    if in_process(url):
        connector = _app(url, "memory").connector
        assert isinstance(connector, InMemoryConnector)
        jobs = [j for j in connector.jobs.values() if j["status"] == "todo"]
        return {n: sum(1 for j in jobs if j["task_name"] == n) for n in names}
    rows = session.execute(text("SELECT task_name, count(*) FROM procrastinate_jobs WHERE status = 'todo' "
                                "GROUP BY task_name")).all()
    found = {str(r[0]): int(r[1]) for r in rows}
    return {n: found.get(n, 0) for n in names}


def periodic_status(session: Session, *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Each periodic task: schedule, last run (when, how it ended, its result), next run, waiting jobs."""
    now = now or utcnow()
    defs = periodic()
    waiting = _waiting(session, [d.name for d in defs])
    out = []
    for d in defs:
        last = session.exec(select(TaskRun).where(col(TaskRun.task) == d.name)
                            .order_by(col(TaskRun.started_at).desc(), col(TaskRun.id).desc()).limit(1)).first()
        nxt = croniter.croniter(cron_of(d), now).get_next(dt.datetime)
        out.append({
            "name": d.name, "title": d.title, "every": d.every, "cron": cron_of(d),
            "last_run": None if last is None else {
                "status": last.status, "started_at": as_utc(last.started_at),
                "finished_at": as_utc(last.finished_at) if last.finished_at else None,
                "result": last.result, "error": last.error, "worker": last.worker, "attempt": last.attempt},
            "next_run_at": as_utc(nxt), "waiting": waiting[d.name],
        })
    return out
