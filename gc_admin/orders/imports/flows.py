"""Applying a channel's order sheet, as the admin API and the 订单导入 page both do: the ``orders.import`` task.
The preview (a dry run: it writes nothing) stays in the request (:func:`service.plan`).

The sequence of :class:`gc_admin.core.task_rows.FileTask` (the shipments import's too): the request (:func:`import_file`) puts the
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

import logging
from typing import Any

from gc_admin.core import task_rows, tasks
from gc_admin.core.errors import DomainError
from gc_admin.core.principal import Actor
from gc_admin.orders.imports import service
from gc_admin.orders.imports.models import OrderImport

log = logging.getLogger("gc_admin.orders.import")

IMPORT_TASK = "orders.import"
CRASHED = "订单导入出错，未导入任何订单，请稍后重试或联系管理员"


class OrderImportCrashed(DomainError):
    """The import broke on something that is not the sheet's fault (our bug): nothing of it was imported."""

    status = 500
    code = "ORDER_IMPORT_ERROR"


FILES = task_rows.FileTask(IMPORT_TASK, "orders-import", OrderImport, OrderImportCrashed, CRASHED, "order import", log)


def import_key(import_id: int) -> str:
    return FILES.key(import_id)


def import_file(*, actor: Actor, source: str, data: bytes, filename: str = "",
                wait_seconds: float | None = None) -> OrderImport:
    """Import ``data`` (a channel's CSV / XLSX) through the ``orders.import`` task; returns the import (``queued``
    / ``running`` if it was not final within ``wait_seconds``), or raises its failure (with ``details.import_id``)
    once it is on record."""
    return FILES.submit(queue=lambda s: service.queue_import(s, actor=actor, source=source, filename=filename),
                        data=data, wait_seconds=wait_seconds)


def run_import(*, import_id: int) -> dict[str, Any]:
    """``orders.import``: apply the sheet kept for ``orders-import:<import_id>``; safe to run again (see the module)."""

    def apply(s: Any, claimed: tuple[OrderImport, Actor], data: bytes) -> None:
        rec, actor = claimed
        service.apply(s, actor=actor, source=rec.source, data=data, filename=rec.filename, into=rec)

    # refused: the sheet as a whole (a missing column, unreadable, too many rows)
    rec = FILES.run(import_id, claim=lambda s, i: service.claim_import(s, import_id=i), apply=apply,
                    fail=lambda s, i, reason, code: service.fail_import(s, import_id=i, reason=reason, code=code))
    return {"import_id": import_id, "status": rec.status, "imported": rec.imported}


def resume_imports(session: Any, *, minutes: int = 2) -> dict[str, int]:
    """The sweep (periodic ``orders.unfinished``): defer again the order imports still unfinished after
    ``minutes`` (:meth:`~gc_admin.core.task_rows.FileTask.resume`)."""
    return {"deferred": FILES.resume(session, minutes=minutes)}


IMPORT = tasks.register(tasks.TaskDef(IMPORT_TASK, run_import, title="导入第三方订单", retries=3, queue=tasks.WAITED))
