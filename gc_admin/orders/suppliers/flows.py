"""Applying a shipment sheet (批量发货), as the admin API and the 订单导入与批量发货 page both do: the
``orders.ship_import`` task. The preview (a dry run: it writes nothing) stays in the request
(:func:`shipments.plan`).

The sequence of the order import (:class:`gc_admin.core.task_rows.FileTask`): the request (:func:`ship_file`) puts
the shipments import on record ``queued`` — with the uploader and the scope they ship in (role + supplier: a
supplier ships only its own orders, and the task keeps to exactly that) — keeps the sheet's bytes in ``task_file``
(key ``shipments-import:<id>``) and defers the task with the id only, in one unit of work; then it waits for the
import to be final (up to ``GC_TASKS_WAIT_SECONDS``) and returns it, or the row as it stands (``queued`` /
``running``: the API answers 202, ``GET /admin/shipments/imports/{id}`` gives the report later).

The task (:func:`run_ship_import`) claims the row with a conditional update in the very unit of work that ships the
orders, marks it done and drops the bytes: a run killed half-way shipped nothing, a run after a finished one
finds it final and changes nothing — and each row is the conditional ``ship`` move anyway (paid / accepted ->
shipped), so a sheet uploaded twice, or by two clerks at once, ships each order once. A sheet refused as a whole
(a missing column, unreadable) goes on record ``failed`` with its code; anything else is our fault: ``failed``
with ``SHIPMENT_IMPORT_ERROR`` (500).
"""

from __future__ import annotations

import logging
from typing import Any

from gc_admin.core import task_rows, tasks
from gc_admin.core.errors import DomainError, Forbidden, InvalidInput
from gc_admin.core.principal import Actor
from gc_admin.orders.service import Scope
from gc_admin.orders.suppliers import shipments
from gc_admin.orders.suppliers.models import ShipmentImport

log = logging.getLogger("gc_admin.orders.shipments")

SHIP_TASK = "orders.ship_import"
CRASHED = "批量发货出错，未发货任何订单，请稍后重试或联系管理员"


class ShipmentImportCrashed(DomainError):
    """The shipments import broke on something that is not the sheet's fault (our bug): nothing of it shipped."""

    status = 500
    code = "SHIPMENT_IMPORT_ERROR"


FILES = task_rows.FileTask(SHIP_TASK, "shipments-import", ShipmentImport, ShipmentImportCrashed, CRASHED,
                           "shipments import", log)


def ship_key(import_id: int) -> str:
    return FILES.key(import_id)


def ship_file(*, actor: Actor, role: str, supplier_code: str | None, data: bytes, filename: str = "",
              wait_seconds: float | None = None) -> ShipmentImport:
    """Ship by ``data`` (a sheet of order no., carrier, tracking no.) through the ``orders.ship_import`` task, as
    ``actor`` in the scope of ``role`` / ``supplier_code`` (the member's: :func:`shipments.ship_scope`; one that may
    not ship is refused here, ``FORBIDDEN``); returns the import (``queued`` / ``running`` if not final within
    ``wait_seconds``), or raises its failure (``details.import_id``) once it is on record."""
    scope = _scope(role, supplier_code)
    return FILES.submit(queue=lambda s: shipments.queue_shipments(s, actor=actor, role=role, scope=scope,
                                                                  filename=filename),
                        data=data, wait_seconds=wait_seconds)


def _scope(role: str, supplier_code: str | None) -> Scope:
    scope = shipments.ship_scope(role, supplier_code=supplier_code)
    if scope is None:
        raise Forbidden("没有发货的权限", code="FORBIDDEN")
    return scope


def run_ship_import(*, import_id: int) -> dict[str, Any]:
    """``orders.ship_import``: ship by the sheet kept for ``shipments-import:<import_id>``, as its uploader in
    their scope; safe to run again (see the module)."""

    def apply(s: Any, claimed: tuple[ShipmentImport, Actor, Scope], data: bytes) -> None:
        rec, actor, scope = claimed
        shipments.apply(s, data=data, filename=rec.filename, scope=scope, actor=actor, into=rec)

    # refused: the sheet as a whole (a missing column, unreadable, too many rows), or a role that may not ship
    rec = FILES.run(import_id, claim=lambda s, i: shipments.claim_shipments(s, import_id=i), apply=apply,
                    fail=lambda s, i, reason, code: shipments.fail_shipments(s, import_id=i, reason=reason, code=code),
                    refused=(InvalidInput, Forbidden))
    return {"import_id": import_id, "status": rec.status, "shipped": rec.shipped}


def resume_shipments(session: Any, *, minutes: int = 2) -> int:
    """The sweep (periodic ``orders.unfinished``): defer again the shipments imports still unfinished after
    ``minutes``; how many."""
    return FILES.resume(session, minutes=minutes)


SHIP = tasks.register(tasks.TaskDef(SHIP_TASK, run_ship_import, title="批量发货", retries=3, queue=tasks.WAITED))
