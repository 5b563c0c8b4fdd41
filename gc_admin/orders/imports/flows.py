"""Applying a channel's order sheet, as the admin API and the 订单导入 page both do: the ``orders.import`` task.
The preview (a dry run: it writes nothing) stays in the request (:func:`service.plan`).

The pattern of :mod:`gc_admin.coupons.stock.flows`, the same helpers: the request (:func:`import_file`) puts the
import on record ``queued``, keeps the sheet's bytes in ``task_file`` (key ``orders-import:<id>``) and defers the
task with the import's id only, in one unit of work; then it waits for the import to be final
(:func:`gc_admin.core.tasks.wait_for`, up to ``GC_TASKS_WAIT_SECONDS``) and returns it — or, when the wait runs
out, the row as it stands (``queued`` / ``running``: the API answers 202, ``GET /admin/orders/imports/{id}`` gives
the report later).

The task (:func:`run_import`) is safe to run twice (a retry after its worker was killed): it claims the row with a
conditional update in the very unit of work that inserts the orders, marks it done and drops the bytes — a run
killed half-way left nothing, a run after a finished one finds it final and changes nothing (and the orders'
unique ``(source, external_id)`` would keep each order once anyway). A sheet refused as a whole (no such column,
unreadable) rolls that unit back and goes on record ``failed`` with its code in a second one
(:func:`service.fail_import`); anything else is our fault: ``failed`` with ``ORDER_IMPORT_ERROR`` (500).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from gc_admin.core import tasks
from gc_admin.core.errors import DomainError, InvalidInput
from gc_admin.core.principal import Actor
from gc_admin.db import session_scope
from gc_admin.orders.imports import service
from gc_admin.orders.imports.models import OrderImport

log = logging.getLogger("gc_admin.orders.import")

IMPORT_TASK = "orders.import"
CRASHED = "订单导入出错，未导入任何订单，请稍后重试或联系管理员"


class OrderImportCrashed(DomainError):
    """The import broke on something that is not the sheet's fault (our bug): nothing of it was imported."""

    status = 500
    code = "ORDER_IMPORT_ERROR"


def import_key(import_id: int) -> str:
    return f"orders-import:{import_id}"


def import_file(*, actor: Actor, source: str, data: bytes, filename: str = "",
                wait_seconds: float | None = None) -> OrderImport:
    """Import ``data`` (a channel's CSV / XLSX) through the ``orders.import`` task; returns the import (``queued``
    / ``running`` if it was not final within ``wait_seconds``), or raises its failure (with ``details.import_id``)
    once it is on record."""
    with session_scope() as s:
        import_id = service.queue_import(s, actor=actor, source=source, filename=filename)
        tasks.store_file(s, key=import_key(import_id), data=data)
        tasks.defer(IMPORT_TASK, key=import_key(import_id), session=s, import_id=import_id)
    rec = tasks.wait_for(lambda: _final(import_id), timeout=wait_seconds)
    if rec is None:
        with session_scope() as s:
            return service.get_import(s, import_id=import_id)
    if rec.status == "failed":
        if rec.error_code == OrderImportCrashed.code:
            raise OrderImportCrashed(rec.error or CRASHED, details={"import_id": import_id})
        raise InvalidInput(rec.error or "", code=rec.error_code or "FILE_REJECTED", details={"import_id": import_id})
    return rec


def _final(import_id: int) -> OrderImport | None:
    with session_scope() as s:
        rec = service.get_import(s, import_id=import_id)
    return rec if rec.status in ("done", "failed") else None


def run_import(*, import_id: int) -> dict[str, Any]:
    """``orders.import``: apply the sheet kept for ``orders-import:<import_id>``; safe to run again (see the module)."""
    key = import_key(import_id)
    with session_scope() as s:
        service.mark_import_running(s, import_id=import_id)

    def work() -> None:
        with session_scope() as s:
            claimed = service.claim_import(s, import_id=import_id)
            if claimed is not None:
                rec, actor = claimed
                data = tasks.load_file(s, key=key)
                if data is None:  # cannot happen while the row is not final (the bytes go with that change)
                    raise RuntimeError(f"order import {import_id}: its file is gone")
                service.apply(s, actor=actor, source=rec.source, data=data, filename=rec.filename, into=rec)
                tasks.drop_file(s, key=key)

    # refused: the sheet as a whole (a missing column, unreadable, too many rows)
    tasks.run_recorded(work, fail=lambda reason, code: _fail(import_id, reason, code), what=f"order import {import_id}",
                       crashed=(CRASHED, OrderImportCrashed.code), refused=InvalidInput, logger=log)
    with session_scope() as s:
        rec = service.get_import(s, import_id=import_id)
        return {"import_id": import_id, "status": rec.status, "imported": rec.imported}


def _fail(import_id: int, reason: str, code: str) -> None:
    with session_scope() as s:
        service.fail_import(s, import_id=import_id, reason=reason, code=code)
        tasks.drop_file(s, key=import_key(import_id))


def resume_imports(session: Any, *, minutes: int = 2) -> dict[str, int]:
    """The sweep (periodic ``orders.unfinished``): defer again the order imports still unfinished after
    ``minutes`` — their job was lost (SQLite's in-memory queue across a restart) or is still running (then the
    new job waits for the key's lock and finds the import final)."""
    from gc_admin.core.clock import utcnow

    ids = service.unfinished_imports(session, older_than=utcnow() - dt.timedelta(minutes=minutes))
    return {"deferred": tasks.defer_again(IMPORT_TASK, ids, key=import_key, arg="import_id", session=session)}


IMPORT = tasks.register(tasks.TaskDef(IMPORT_TASK, run_import, title="导入第三方订单", retries=3, queue=tasks.WAITED))
