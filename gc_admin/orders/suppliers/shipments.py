"""Shipping goods orders by sheet (批量发货): order no. → carrier, tracking no.

:func:`plan` reads the sheet and says, row by row, what applying it would do — ``ship``, ``skip`` (already
shipped with this very tracking no.: a re-upload), or an error (unknown / another supplier's order: the
same "订单不存在"; not a goods order; not in a shippable state; shipped with another tracking no.; a
duplicate row) — without writing anything (the dry run). :func:`apply` ships the ``ship`` rows one by
one, each the same conditional ``ship`` move a clerk makes (so a sheet uploaded twice, or two clerks
uploading it at once, ships each order once), in a savepoint per row so one failure loses no other row,
and records a :class:`ShipmentImport` with the per-row report. Applying is the ``orders.ship_import`` task
(:mod:`.flows`): the row is queued with the uploader and their scope, claimed by the task in the unit of work
that ships (:func:`claim_shipments`), put on record ``failed`` when refused or broken (:func:`fail_shipments`)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.core import task_rows
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import DomainError, Forbidden, InvalidInput, NotFound
from gc_admin.core.principal import Actor
from gc_admin.orders.imports.sheets import read_sheet
from gc_admin.orders.models import ServiceOrder
from gc_admin.orders.service import Scope, scope_for
from gc_admin.orders.suppliers.models import ShipmentImport

IMPORT_ROLES = ("admin", "manager", "clerk")  # platform staff who enter orders of other channels


def ship_scope(role: str | None, *, supplier_code: str | None = None) -> Scope | None:
    """The order scope a member ships goods orders in (a supplier: its own; staff who act on every order: any),
    or ``None`` when the role may not ship."""
    scope = scope_for(role, supplier_code=supplier_code)
    ok = scope.visible and scope.can_act and (scope.types is None or "goods" in scope.types)
    return scope if ok else None


def may_use_imports(role: str | None, *, supplier_code: str | None = None) -> bool:
    """Whether 订单导入与批量发货 has anything for this member (ship by sheet, or import channel orders)."""
    return ship_scope(role, supplier_code=supplier_code) is not None or role in IMPORT_ROLES

HEADERS = {"order_no": ("订单号", "order_no"), "carrier": ("快递公司", "carrier"),
           "tracking_no": ("快递单号", "运单号", "tracking_no")}
SHIPPABLE = ("paid", "accepted")


@dataclasses.dataclass
class ShipRow:
    line: int
    order_no: str
    carrier: str
    tracking_no: str
    outcome: str  # ship | skip | error | shipped (applied) | failed (applied)
    message: str = ""
    order_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ShipmentPlan:
    rows: list[ShipRow]
    digest: str

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.rows)


def _columns(header: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for key, names in HEADERS.items():
        idx = next((i for i, h in enumerate(header) if h in names), None)
        if idx is None:
            raise InvalidInput(f"发货表缺少“{names[0]}”列（需要：订单号、快递公司、快递单号）", code="MISSING_COLUMN")
        found[key] = idx
    return found


def plan(session: Session, *, data: bytes, scope: Scope) -> ShipmentPlan:
    """What applying the sheet would do, row by row (writes nothing)."""
    sheet = read_sheet(data)
    cols = _columns(sheet.header)
    cell = lambda r, k: r[cols[k]] if cols[k] < len(r) else ""  # noqa: E731
    parsed = [(i + 2, cell(r, "order_no").upper(), cell(r, "carrier"), cell(r, "tracking_no"))
              for i, r in enumerate(sheet.rows)]
    nos = {no for _, no, _, _ in parsed if no}
    found = {o.order_no: o for o in session.exec(select(ServiceOrder).where(col(ServiceOrder.order_no).in_(nos))
                                                 .execution_options(populate_existing=True)).all()} if nos else {}
    seen: set[str] = set()
    out: list[ShipRow] = []
    for line, no, carrier, tracking in parsed:
        row = ShipRow(line, no, carrier, tracking, "error")
        out.append(row)
        order = found.get(no)
        if not no or not carrier or not tracking:
            row.message = "订单号、快递公司、快递单号均不能为空"
        elif len(carrier) > 32 or len(tracking) > 40:
            row.message = "快递公司不超过 32 个字，快递单号不超过 40 个字"
        elif no in seen:
            row.message = "同一订单在表中出现多次，只处理第一行"
        elif order is None or (scope.supplier is not None and order.supplier_code != scope.supplier) \
                or not scope.visible:
            row.message = "订单不存在"
        elif order.type != "goods":
            row.message = "不是实物订单"
        elif order.status == "shipped" or (order.fulfilment or {}).get("tracking_no"):
            same = (order.fulfilment or {}).get("tracking_no") == tracking
            row.outcome, row.message = ("skip", "已发货（同一快递单号），不重复发货") if same else (
                "error", f"已用另一快递单号发货：{(order.fulfilment or {}).get('tracking_no', '')}")
        elif order.status not in SHIPPABLE:
            row.message = "订单当前状态不能发货"
        else:
            row.outcome = "ship"
        if no:
            seen.add(no)
        row.order_id = order.id if order is not None and row.message != "订单不存在" else None
    return ShipmentPlan(out, hashlib.sha256(data).hexdigest())


def apply(session: Session, *, data: bytes, filename: str, scope: Scope, actor: Actor,
          into: ShipmentImport | None = None) -> ShipmentImport:
    """Ship the sheet's shippable rows (each its own savepoint) and record the import with its report — on
    ``into`` (the queued row the ``orders.ship_import`` task claimed, :func:`claim_shipments`), made ``done``, or
    on a new row."""
    from gc_admin.orders.flows import staff_action  # the ship move (flows builds on this package's kind)

    p = plan(session, data=data, scope=scope)
    for row in p.rows:
        if row.outcome != "ship" or row.order_id is None:
            continue
        try:
            with session.begin_nested():
                staff_action(session, order_id=row.order_id, action="ship", actor=actor,
                             fields={"carrier": row.carrier, "tracking_no": row.tracking_no})
            row.outcome, row.message = "shipped", "已发货"
        except DomainError as exc:
            row.outcome, row.message = "failed", exc.message
    now = utcnow()
    rec = into if into is not None else ShipmentImport(
        filename=(filename or "shipments")[:255], digest="", supplier_code=scope.supplier, created_by=actor.name[:64],
        actor_type=actor.type, actor_id=None if actor.id is None else str(actor.id), created_at=now)
    rec.digest, rec.rows, rec.shipped, rec.skipped = p.digest, len(p.rows), p.count("shipped"), p.count("skip")
    rec.failed, rec.report = p.count("error") + p.count("failed"), [r.to_dict() for r in p.rows]
    rec.status, rec.finished_at = "done", now
    session.add(rec)
    session.flush()
    return rec


# --- the shipments import as the orders.ship_import task (gc_admin/orders/suppliers/flows.py) ---------

def queue_shipments(session: Session, *, actor: Actor, role: str, scope: Scope, filename: str) -> int:
    """Put a shipment sheet on record, ``queued`` for the ``orders.ship_import`` task; returns its id. The row
    keeps who uploaded it and the scope they ship in (``role`` + ``scope.supplier``): the task ships as them."""
    return task_rows.queue(session, ShipmentImport, actor=actor, filename=(filename or "shipments")[:255], digest="",
                           supplier_code=scope.supplier, role=role[:16])


def claim_shipments(session: Session, *, import_id: int) -> tuple[ShipmentImport, Actor, Scope] | None:
    """Take a queued / running shipments import for the unit of work that ships its orders
    (:func:`gc_admin.core.task_rows.claim`: a second run waits for the first, then finds it final): the row, the
    uploader and the scope the upload had (a supplier: its own orders only); ``None`` when it is final already.
    A role that may no longer ship (the rules changed since) is refused: ``FORBIDDEN``."""
    rec = task_rows.claim(session, ShipmentImport, import_id)
    if rec is None:
        return None
    scope = ship_scope(rec.role, supplier_code=rec.supplier_code)
    if scope is None:
        raise Forbidden("没有发货的权限", code="FORBIDDEN")
    return rec, task_rows.uploader(rec), scope


def fail_shipments(session: Session, *, import_id: int, reason: str, code: str) -> bool:
    """Put a refused (or crashed) shipments import on record: ``failed`` with its reason and code, and an audit
    row — only if it was not final yet; whether it moved. In a unit of work of its own, after the work rolled back."""
    return task_rows.fail(session, ShipmentImport, import_id, reason=reason, code=code, finished_at=utcnow(),
                          then=lambda rec: record(session, actor=task_rows.uploader(rec),
                                                  action="orders.shipments_import_failed", target_type="shipment_import",
                                                  target_id=import_id, summary=f"批量发货失败（{rec.filename}）：{reason}"[:500]))


def get_shipments(session: Session, *, import_id: int, supplier: str | None = None) -> ShipmentImport:
    """A shipments import; ``supplier``: only that supplier's (another's reads as missing)."""
    rec = session.exec(select(ShipmentImport).where(col(ShipmentImport.id) == import_id)
                       .execution_options(populate_existing=True)).first()
    if rec is None or (supplier is not None and rec.supplier_code != supplier):
        raise NotFound("发货记录不存在", code="SHIPMENT_IMPORT_NOT_FOUND")
    return rec
