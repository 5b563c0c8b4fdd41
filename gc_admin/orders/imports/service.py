"""Third-party order import (第三方订单导入): a channel's CSV / XLSX export becomes ``service_order`` rows.

- The channel's columns are mapped to ours once per source (:data:`FIELDS`: our field -> its header),
  saved in ``order_source_mapping`` and editable (:func:`save_mapping`).
- :func:`plan` (the preview) checks every row and writes nothing: missing / bad cells, an unknown type,
  a duplicate in the sheet, an order of this source already imported.
- :func:`apply` inserts the good rows set-based, in the caller's one transaction: the users they need
  (by phone, ``ON CONFLICT DO NOTHING``), then the orders with ``ON CONFLICT (source, external_id) DO
  NOTHING`` — the unique key makes a replay (or two clerks importing the same file at once) import each
  order once — then their history lines and board notices; bad rows are reported, never half-written.

Imported orders are ``paid`` (the channel took the money): they join the same queues, boards, exports and
reports with what the user paid — ``paid_fen`` is the sheet's 实付金额 when the mapping has that column (the
order amount, 订单金额, is the list price; a channel discount is the difference), else the order amount;
``details.channel_paid_fen`` says the same. The money was collected by the channel, not by WeChat Pay here, so
the order is refunded in the channel: a refund here is refused (``CHANNEL_ORDER``, :mod:`gc_admin.orders.refunds`).
"""

from __future__ import annotations

import dataclasses
import decimal
import hashlib
import re
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.core import task_rows
from gc_admin.core.bulk import dialect
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import InvalidInput, NotFound
from gc_admin.core.phone import normalize_phone
from gc_admin.core.principal import Actor
from gc_admin.orders.imports.models import OrderImport, OrderSourceMapping
from gc_admin.orders.imports.sheets import read_sheet
from gc_admin.orders.models import ORDER_TYPES, OrderChange, OrderEvent, ServiceOrder
from gc_admin.orders.service import new_order_no
from gc_admin.users.models import MpUser

#: our field -> (label, required)
FIELDS: dict[str, tuple[str, bool]] = {
    "external_id": ("渠道订单号", True), "phone": ("用户手机号", True), "item": ("商品名称", True),
    "amount": ("订单金额（元）", True), "paid": ("实付金额（元）", False), "quantity": ("数量", False),
    "type": ("订单类型", False), "city": ("城市", False),
}
SOURCE_RE = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")
TYPE_BY_LABEL = {**{v: k for k, v in ORDER_TYPES.items()}, **{k: k for k in ORDER_TYPES}}
MAX_AMOUNT_FEN = 100_000_000  # ¥1,000,000: more is a typo
#: orders per INSERT (20 bind parameters each): a full sheet (5,000 rows) in one statement is over PostgreSQL's
#: 65,535 parameters of a statement (and SQLite's 32,766)
ORDERS_PER_INSERT = 1_000


def _source(source: str) -> str:
    if not SOURCE_RE.match(source or ""):
        raise InvalidInput("渠道编码需 2–32 位小写字母、数字、_ -，以字母开头", code="INVALID_SOURCE")
    return source


def get_mapping(session: Session, *, source: str) -> OrderSourceMapping:
    row = session.get(OrderSourceMapping, _source(source))
    if row is None:
        raise NotFound("该渠道尚未设置列映射", code="MAPPING_NOT_FOUND")
    return row


def save_mapping(session: Session, *, actor: Actor, source: str, mapping: dict[str, str],
                 default_type: str = "goods") -> OrderSourceMapping:
    """Save (create or replace) how ``source``'s sheets map to our fields."""
    _source(source)
    unknown = set(mapping) - set(FIELDS)
    if unknown:
        raise InvalidInput(f"未知的字段：{', '.join(sorted(unknown))}", code="INVALID_MAPPING")
    missing = [FIELDS[f][0] for f, (_, req) in FIELDS.items() if req and not (mapping.get(f) or "").strip()]
    if missing:
        raise InvalidInput(f"请为这些字段指定列：{'、'.join(missing)}", code="INVALID_MAPPING")
    clean = {f: h.strip()[:64] for f, h in mapping.items() if (h or "").strip()}
    if len(set(clean.values())) != len(clean):
        raise InvalidInput("同一列不能映射到两个字段", code="INVALID_MAPPING")
    if default_type not in ORDER_TYPES:
        raise InvalidInput("未知的订单类型", code="INVALID_ORDER_TYPE")
    row = session.get(OrderSourceMapping, source)
    before = None if row is None else {"mapping": row.mapping, "default_type": row.default_type}
    if row is None:
        row = OrderSourceMapping(source=source)
    row.mapping, row.default_type, row.updated_by, row.updated_at = clean, default_type, actor.name[:64], utcnow()
    session.add(row)
    session.flush()
    record(session, actor=actor, action="order_source.mapping_saved", target_type="order_source", target_id=source,
           summary=f"保存渠道 {source} 的订单导入列映射", before=before,
           after={"mapping": clean, "default_type": default_type})
    return row


@dataclasses.dataclass
class ImportRow:
    line: int
    external_id: str
    outcome: str  # ok | duplicate | error (preview); imported | duplicate | error (applied)
    message: str = ""
    values: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "external_id": self.external_id, "outcome": self.outcome, "message": self.message}


@dataclasses.dataclass
class ImportPlan:
    source: str
    rows: list[ImportRow]
    digest: str

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.rows)


def _fen(text: str) -> int | None:
    try:
        value = decimal.Decimal(text.replace(",", "").replace("¥", "").replace("￥", "").strip())
    except decimal.InvalidOperation:
        return None
    if not value.is_finite() or value < 0 or value != value.quantize(decimal.Decimal("0.01")):
        return None
    fen = int(value * 100)
    return fen if fen <= MAX_AMOUNT_FEN else None


def _check(cells: dict[str, str], default_type: str) -> tuple[dict[str, Any], str]:
    """A row's values, or ``({}, the reason)``."""
    for f, (label, req) in FIELDS.items():
        if req and not cells.get(f):
            return {}, f"{label}为空"
    ext = cells["external_id"]
    if len(ext) > 64:
        return {}, "渠道订单号超过 64 个字符"
    phone = normalize_phone(cells["phone"])
    if phone is None:
        return {}, "用户手机号不正确"
    amount = _fen(cells["amount"])
    if amount is None:
        return {}, "订单金额需为不小于 0 的金额（元，最多两位小数）"
    paid = amount if not cells.get("paid") else _fen(cells["paid"])
    if paid is None:
        return {}, "实付金额需为不小于 0 的金额（元，最多两位小数）"
    if paid > amount:
        return {}, "实付金额不能大于订单金额"
    qty_text = cells.get("quantity") or "1"
    if not qty_text.isdigit() or not 1 <= int(qty_text) <= 1000:
        return {}, "数量需为 1–1000 的整数"
    type_ = TYPE_BY_LABEL.get(cells.get("type") or default_type)
    if type_ is None:
        return {}, f"未知的订单类型：{cells.get('type')}"
    return {"external_id": ext, "phone": phone, "item": cells["item"][:64], "amount_fen": amount, "paid_fen": paid,
            "quantity": int(qty_text), "type": type_, "city": (cells.get("city") or "").removesuffix("市")[:16] or None}, ""


def plan(session: Session, *, source: str, data: bytes) -> ImportPlan:
    """The preview: each row checked against the saved mapping and what this source already imported."""
    m = get_mapping(session, source=source)
    sheet = read_sheet(data)
    idx: dict[str, int] = {}
    for f, header in m.mapping.items():
        i = sheet.column(header)
        if i is None:
            raise InvalidInput(f"文件缺少映射的列“{header}”（{FIELDS[f][0]}），请检查文件或修改列映射",
                               code="MISSING_COLUMN")
        idx[f] = i
    rows: list[ImportRow] = []
    for n, r in enumerate(sheet.rows):
        cells = {f: (r[i] if i < len(r) else "").strip() for f, i in idx.items()}
        values, problem = _check(cells, m.default_type)
        rows.append(ImportRow(n + 2, cells.get("external_id", "")[:64], "error" if problem else "ok", problem, values))
    seen: set[str] = set()
    for row in rows:
        if row.outcome == "ok":
            if row.external_id in seen:
                row.outcome, row.message = "error", "渠道订单号在文件中重复"
            seen.add(row.external_id)
    ids = [r.external_id for r in rows if r.outcome == "ok"]
    done: set[str] = set()
    for chunk in range(0, len(ids), 500):
        done |= set(session.exec(select(ServiceOrder.external_id).where(
            col(ServiceOrder.source) == source, col(ServiceOrder.external_id).in_(ids[chunk:chunk + 500]))).all())
    for row in rows:
        if row.outcome == "ok" and row.external_id in done:
            row.outcome, row.message = "duplicate", "该渠道订单已导入过"
    return ImportPlan(source, rows, hashlib.sha256(data).hexdigest())


def _insert(session: Session, table: Any):
    return (pg_insert if dialect(session) == "postgresql" else sqlite_insert)(table)


def apply(session: Session, *, actor: Actor, source: str, data: bytes, filename: str,
          into: OrderImport | None = None) -> OrderImport:
    """Import the good rows (set-based, in this transaction) and record the import with its per-row report —
    on ``into`` (the queued row the ``orders.import`` task claimed, :func:`claim_import`), made ``done``, or
    on a new row."""
    p = plan(session, source=source, data=data)
    good = [r for r in p.rows if r.outcome == "ok"]
    now = utcnow()
    imported: dict[str, int] = {}
    if good:
        phones = sorted({r.values["phone"] for r in good})
        session.execute(_insert(session, MpUser.__table__).values(
            [{"phone": ph, "nickname": "", "city": "", "created_at": now} for ph in phones]).on_conflict_do_nothing(index_elements=["phone"]))
        users = dict(session.exec(select(MpUser.phone, MpUser.id).where(col(MpUser.phone).in_(phones))).all())
        orders = []
        for r in good:
            v = r.values
            unit = v["amount_fen"] // v["quantity"]
            orders.append({
                "order_no": new_order_no(now), "type": v["type"], "status": "paid", "user_id": users[v["phone"]],
                "list_fen": v["amount_fen"], "payable_fen": v["paid_fen"], "paid_fen": v["paid_fen"], "refunded_fen": 0,
                "pricing": {"list_fen": v["amount_fen"], "steps": [], "payable_fen": v["paid_fen"]},
                "details": {"lines": [{"code": "", "name": v["item"], "quantity": v["quantity"], "unit_fen": unit,
                                       "amount_fen": v["amount_fen"]}], "source": source,
                            "channel_paid_fen": v["paid_fen"]},
                "fulfilment": {}, "points_used": 0, "stored_value_fen": 0, "pay_expires_at": now, "city": v["city"],
                "source": source, "external_id": v["external_id"], "created_at": now, "updated_at": now,
                "paid_at": now})
        for chunk in range(0, len(orders), ORDERS_PER_INSERT):
            stmt = _insert(session, ServiceOrder.__table__).values(orders[chunk:chunk + ORDERS_PER_INSERT])
            stmt = stmt.on_conflict_do_nothing(index_elements=["source", "external_id"]).returning(
                ServiceOrder.__table__.c.id, ServiceOrder.__table__.c.external_id)
            imported.update({ext: oid for oid, ext in session.execute(stmt).all()})
        if imported:
            session.execute(OrderEvent.__table__.insert(), [
                {"order_id": oid, "action": "import", "from_status": None, "to_status": "paid", "actor_type": actor.type,
                 "actor_id": actor.id, "actor_name": actor.name[:64], "reason": f"自渠道 {source} 导入", "at": now}
                for oid in imported.values()])
            session.execute(OrderChange.__table__.insert(),
                            [{"order_id": oid, "what": "import", "at": now} for oid in imported.values()])
    for r in good:
        r.outcome, r.message = ("imported", "已导入") if r.external_id in imported else (
            "duplicate", "该渠道订单已导入过")  # imported by someone else meanwhile: the unique key kept it once
    rec = into if into is not None else OrderImport(
        source=source, filename=(filename or "orders")[:255], created_by=actor.name[:64], actor_type=actor.type,
        actor_id=None if actor.id is None else str(actor.id), created_at=now)
    rec.digest, rec.rows, rec.imported = p.digest, len(p.rows), p.count("imported")
    rec.duplicates, rec.failed, rec.report, rec.status = p.count("duplicate"), p.count("error"), [r.to_dict() for r in p.rows], "done"
    session.add(rec)
    session.flush()
    record(session, actor=actor, action="orders.imported", target_type="order_import", target_id=rec.id,
           summary=f"导入渠道 {source} 订单：{rec.imported} 单导入，{rec.duplicates} 单重复，{rec.failed} 行有误",
           after={"source": source, "imported": rec.imported, "duplicates": rec.duplicates, "failed": rec.failed})
    return rec


# --- the import as the orders.import task (gc_admin/orders/imports/flows.py) -------------------------

def queue_import(session: Session, *, actor: Actor, source: str, filename: str) -> int:
    """Put an import of a channel's sheet on record, ``queued`` for the ``orders.import`` task; returns its id.
    The source's mapping is checked here (none: ``MAPPING_NOT_FOUND`` at once); the file is read by the task."""
    get_mapping(session, source=source)
    return task_rows.queue(session, OrderImport, actor=actor, source=source, filename=(filename or "orders")[:255],
                           digest="")


def claim_import(session: Session, *, import_id: int) -> tuple[OrderImport, Actor] | None:
    """Take a queued / running import for this unit of work (:func:`gc_admin.core.task_rows.claim`, in the unit
    of work that inserts the orders: a second run waits for the first and then finds it final). The row and the
    uploader; ``None`` when the import is done or failed already."""
    rec = task_rows.claim(session, OrderImport, import_id)
    return None if rec is None else (rec, task_rows.uploader(rec))


def fail_import(session: Session, *, import_id: int, reason: str, code: str) -> bool:
    """Put a refused (or crashed) import on record: ``failed`` with its reason and code, and an audit row —
    only if it was not final yet; whether it moved. In a unit of work of its own, after the import's rolled back."""
    return task_rows.fail(session, OrderImport, import_id, reason=reason, code=code, then=lambda rec: record(
        session, actor=task_rows.uploader(rec), action="orders.import_failed", target_type="order_import",
        target_id=import_id, summary=f"导入渠道 {rec.source} 订单失败（{rec.filename}）：{reason}"[:500]))


def get_import(session: Session, *, import_id: int) -> OrderImport:
    rec = session.exec(select(OrderImport).where(col(OrderImport.id) == import_id)
                       .execution_options(populate_existing=True)).first()
    if rec is None:
        raise NotFound("导入记录不存在", code="IMPORT_NOT_FOUND")
    return rec
