"""Batch issuance, as the admin and partner APIs and the 发券 page do it: the ``coupons.issue_batch`` task.

The request (:func:`issue`) checks the batch and puts it on record ``queued`` (the batch row, whose unique key
``(source, programme, batch_id)`` is the caller's idempotency key), keeps the phone list in the database
(``task_file`` under ``batch:<batch row id>`` — phones never travel in task arguments or logs) and defers the task
under that key, all in one unit of work; then it waits for the batch to be done
(:func:`gc_admin.core.tasks.wait_for`, up to ``GC_TASKS_WAIT_SECONDS``) and returns its per-row result — or, when
the wait runs out, the batch as it stands (``queued`` / ``running``: the APIs answer 202 and the batch's GET gives
the rows later). The same batch id again finds the first batch (``replayed``), defers nothing and waits for it.

The task (:func:`run_issue`) is safe to run twice (a retry after its worker was killed): it claims the batch row
with a conditional update in the very unit of work that issues the coupons, marks it done and drops the phones —
so a run killed half-way issued nothing, and a run after a finished one finds it done and issues nothing more.

A run that breaks (an exception: our bug, a constraint we did not foresee) rolled its unit of work back — nothing
issued — and puts the batch on record ``failed`` (``error_code`` ``ISSUANCE_ERROR``, an audit row) in a second one,
as a code import does (:func:`gc_admin.core.tasks.run_recorded`); it is not retried by the queue nor by the
``coupons.unfinished`` sweep (it would fail the same way) — except a passing database error (a lost connection, a
lock), which the queue tries again while attempts are left. The waiting request raises :class:`service.IssuanceCrashed` (HTTP 500 with ``details.batch_id``); the
GET shows ``failed``, the history 失败. **The same batch_id sent again retries it** as a new attempt of the same
batch (:func:`service.queue_batch`): a partner whose call failed sends the same request again — the ordinary use
of an idempotency key — and gets the batch issued once the cause is fixed, with no new batch id to invent and no
risk of a double issue (nothing of the failed attempt exists).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from typing import Any

from gc_admin.core import tasks
from gc_admin.core.principal import Actor
from gc_admin.coupons.issuance import service
from gc_admin.db import session_scope

log = logging.getLogger("gc_admin.coupons.issuance")

ISSUE_TASK = "coupons.issue_batch"


def batch_key(issuance_id: int) -> str:
    return f"batch:{issuance_id}"


def issue(*, actor: Actor, source: str, batch_id: str, product_code: str, phones: list[str], per_phone: int = 1,
          programme_code: str | None = None, wait_seconds: float | None = None) -> service.IssuanceResult:
    """Issue a batch through the ``coupons.issue_batch`` task and return its result (``replayed`` for a batch id
    issued before; ``status`` queued / running if it was not done within ``wait_seconds``, default
    ``GC_TASKS_WAIT_SECONDS``). Refusals (bad phones list, unknown product, batch id reused for another
    request) are raised at once, nothing recorded. A batch whose task broke raises :class:`service.IssuanceCrashed`
    (on record ``failed``; the same batch id again retries it)."""
    with session_scope() as s:
        issuance_id, new = service.queue_batch(s, actor=actor, source=source, batch_id=batch_id,
                                               product_code=product_code, phones=phones, per_phone=per_phone,
                                               programme_code=programme_code)
        if new:
            key = batch_key(issuance_id)
            tasks.store_file(s, key=key, data=json.dumps(phones, ensure_ascii=False).encode())
            tasks.defer(ISSUE_TASK, key=key, session=s, issuance_id=issuance_id)
    tasks.wait_for(lambda: _final(issuance_id), timeout=wait_seconds)
    with session_scope() as s:
        result = service.issuance_by_id(s, issuance_id=issuance_id)
    if result.status == "failed":
        raise service.IssuanceCrashed(service.CRASHED, details={"batch_id": result.batch_id})
    return dataclasses.replace(result, replayed=not new)


def _final(issuance_id: int) -> bool:
    with session_scope() as s:
        return service.batch_status(s, issuance_id=issuance_id) in ("done", "failed")


def run_issue(*, issuance_id: int) -> dict[str, Any]:
    """``coupons.issue_batch``: issue the batch kept for ``batch:<issuance_id>``; safe to run again (see the module).
    A failure of the issuing unit of work (rolled back: nothing issued) puts the batch on record ``failed``."""
    key = batch_key(issuance_id)
    with session_scope() as s:
        service.mark_batch_running(s, issuance_id=issuance_id)
    issued: list[service.IssuanceResult] = []

    def work() -> None:
        with session_scope() as s:
            data = tasks.load_file(s, key=key)
            if data is not None:  # gone: the batch is final (the phones go with that change)
                result = service.issue_claimed(s, issuance_id=issuance_id, phones=json.loads(data))
                if result is not None:
                    tasks.drop_file(s, key=key)
                    issued.append(result)

    if not tasks.run_recorded(work, fail=lambda _reason, code: _fail(issuance_id, code), what=f"batch issuance {issuance_id}",
                              crashed=(service.CRASHED, service.IssuanceCrashed.code), logger=log):
        return {"issuance_id": issuance_id, "status": "failed", "issued": 0}
    if not issued:  # done before (a retry after the commit, a late duplicate): nothing issued now
        with session_scope() as s:
            return {"issuance_id": issuance_id, "status": service.batch_status(s, issuance_id=issuance_id),
                    "issued": 0}
    return {"issuance_id": issuance_id, "status": "done", "issued": issued[0].issued, "coupons": issued[0].coupons}


def _fail(issuance_id: int, code: str) -> None:
    with session_scope() as s:
        service.fail_batch(s, issuance_id=issuance_id, code=code)
        tasks.drop_file(s, key=batch_key(issuance_id))


def resume_batches(session: Any, *, minutes: int = 2) -> int:
    """The sweep: defer again the batches still unfinished after ``minutes`` (their job lost, or still running:
    the new job then waits for the key's lock and finds the batch done)."""
    from gc_admin.core.clock import utcnow

    ids = service.unfinished_batches(session, older_than=utcnow() - dt.timedelta(minutes=minutes))
    return tasks.defer_again(ISSUE_TASK, ids, key=batch_key, arg="issuance_id", session=session)


ISSUE = tasks.register(tasks.TaskDef(ISSUE_TASK, run_issue, title="批量发券", retries=5, queue=tasks.WAITED))
