"""Importing a codes file, as the admin API and the 券库存 page both do: the ``coupons.import`` task.

The request (:func:`import_file`) puts the import on record ``queued``, keeps the file's bytes in the database
(``task_file``, under the task's key ``import:<id>``: any host's worker reads them there) and defers the task,
all in one unit of work; then it waits for the import to be final (:func:`gc_admin.core.tasks.wait_for`, up to
``GC_TASKS_WAIT_SECONDS``) and returns its report — or, when the wait runs out, the report as it stands
(``queued`` / ``running``: the API answers 202 and ``GET /admin/stock/imports/{id}`` gives the report later).

The task (:func:`run_import`) is safe to run twice (a retry after its worker was killed): it claims the row
with a conditional update in the very unit of work that stores the codes, marks it done and drops the bytes —
so a run killed half-way left nothing, and a run after a finished one finds it final and changes nothing.
When the file as a whole is refused, that unit rolls back like any error — nothing of the file may stay — and
the refusal goes on record in a second one (:func:`service.fail_import`: the failed import in the history,
with its reason, and an audit row). The request then raises the refusal with that import's id
(``details.import_id``), so the caller can show or link the failed report.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from gc_admin.core import tasks
from gc_admin.core.principal import Actor
from gc_admin.coupons.stock import service
from gc_admin.db import session_scope

log = logging.getLogger("gc_admin.coupons.import")

IMPORT_TASK = "coupons.import"
CRASHED = "导入出错，未导入任何券码，请稍后重试或联系管理员"


def import_key(import_id: int) -> str:
    return f"import:{import_id}"


def import_file(*, actor: Actor, product_code: str, data: bytes, filename: str = "",
                expires_at: dt.date | dt.datetime | None = None, batch_ref: str | None = None,
                now: dt.datetime | None = None, wait_seconds: float | None = None) -> service.ImportReport:
    """Import ``data`` (CSV / XLSX of codes) for a code product through the ``coupons.import`` task; returns
    the report (``queued`` / ``running`` if it was not final within ``wait_seconds``, default
    ``GC_TASKS_WAIT_SECONDS``), or raises the refusal (:class:`service.CodesFileRefused` with
    ``details.import_id``) once it is on record."""
    options: dict[str, Any] = {} if now is None else {"now": now.isoformat()}  # (tests: as of then)
    with session_scope() as s:
        import_id = service.queue_import(s, actor=actor, product_code=product_code, filename=filename,
                                         expires_at=expires_at, batch_ref=batch_ref, now=now)
        tasks.store_file(s, key=import_key(import_id), data=data)
        tasks.defer(IMPORT_TASK, key=import_key(import_id), session=s, import_id=import_id, **options)
    report = tasks.wait_for(lambda: _final(import_id), timeout=wait_seconds)
    if report is None:
        with session_scope() as s:
            return service.get_import(s, import_id=import_id)
    if report.status == "failed":
        if report.error_code == service.ImportCrashed.code:
            raise service.ImportCrashed(report.error or CRASHED, details={"import_id": import_id})
        raise service.CodesFileRefused(report.error or "", code=report.error_code or "IMPORT_FILE_INVALID",
                                       details={"import_id": import_id})
    return report


def _final(import_id: int) -> service.ImportReport | None:
    with session_scope() as s:
        report = service.get_import(s, import_id=import_id)
    return report if report.final else None


def run_import(*, import_id: int, now: str | None = None) -> dict[str, Any]:
    """``coupons.import``: import the file kept for ``import:<import_id>``; safe to run again (see the module)."""
    key = import_key(import_id)
    with session_scope() as s:
        service.mark_import_running(s, import_id=import_id)

    def work() -> None:
        # The file is read and parsed before the unit of work that stores it writes anything: SQLite has one
        # write lock, and parsing 200,000 rows while holding it would stall every other clerk's writes.
        with session_scope() as s:
            pending = service.pending_import(s, import_id=import_id)
            data = None if pending is None else tasks.load_file(s, key=key)
        if pending is None:
            return
        if data is None:  # cannot happen while the row is not final (the bytes go with that change)
            raise RuntimeError(f"import {import_id}: its file is gone")
        parsed = service.parse_codes(data, filename=pending.filename, expires_at=pending.expires_default)
        with session_scope() as s:
            claimed = service.claim_import(s, import_id=import_id)
            if claimed is not None:
                imp, actor, product_code = claimed
                service.import_codes(s, actor=actor, product_code=product_code, data=data, into=imp,
                                     parsed=parsed, now=dt.datetime.fromisoformat(now) if now else None)
                tasks.drop_file(s, key=key)

    tasks.run_recorded(work, fail=lambda reason, code: _fail(import_id, reason, code), what=f"code import {import_id}",
                       crashed=(CRASHED, service.ImportCrashed.code), refused=service.CodesFileRefused,
                       logger=log)
    with session_scope() as s:
        report = service.get_import(s, import_id=import_id)
    return {"import_id": import_id, "status": report.status, "imported": report.imported}


def _fail(import_id: int, reason: str, code: str) -> None:
    with session_scope() as s:
        service.fail_import(s, import_id=import_id, reason=reason, code=code)
        tasks.drop_file(s, key=import_key(import_id))


def resume_imports(session: Any, *, minutes: int = 2) -> dict[str, int]:
    """The sweep (periodic ``coupons.imports``): defer again the imports still unfinished after ``minutes`` —
    their job was lost (SQLite's in-memory queue across a restart) or is still running (then the new job waits
    for the key's lock and finds the import final)."""
    from gc_admin.core.clock import utcnow

    ids = service.unfinished_imports(session, older_than=utcnow() - dt.timedelta(minutes=minutes))
    return {"deferred": tasks.defer_again(IMPORT_TASK, ids, key=import_key, arg="import_id", session=session)}


IMPORT = tasks.register(tasks.TaskDef(IMPORT_TASK, run_import, title="导入券码", retries=3, queue=tasks.WAITED))
