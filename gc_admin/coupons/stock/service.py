"""Code stock: importing files of redemption codes, the stock summary and code list, the daily expiry job.

Bulk work is set-based (DESIGN.md §2.2): a file becomes a polars frame, is de-duplicated in
polars, and goes into the database in one pass — ``executemany`` on SQLite, ``COPY`` into a
staging table then one ``INSERT ... SELECT ... ON CONFLICT (code) DO NOTHING`` on PostgreSQL —
and the database's unique index on ``stock_code.code`` decides what is new.

Codes leave this module masked (``ABCD****WXYZ``), except through :func:`reveal_stock_code`, which
is audited. Reports and audit rows never contain a code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import polars as pl
from sqlalchemy import and_, case, func, literal, or_, text
from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.core import task_rows
from gc_admin.core.bulk import (
    copy_frame,
    db_time,
    dbapi,
    dialect,
    frame_times_for_sqlite,
    raw_rows,
    sqlite_time,
    temp_table,
)
from gc_admin.core.clock import fmt_local, utcnow
from gc_admin.core.errors import DomainError, InvalidInput, NotFound
from gc_admin.core.export_jobs import Filters, register_export
from gc_admin.core.exports import EXPORT_LIMIT, csv_bytes
from gc_admin.core.money import format_fen
from gc_admin.core.phone import mask_phone, mask_secret
from gc_admin.core.principal import SYSTEM, Actor
from gc_admin.core.sorting import order_by
from gc_admin.coupons.catalog.service import code_is, get_product_by_code
from gc_admin.coupons.models import REDEMPTION_CODE, STOCK_STATES, Coupon, Product, StockCode, StockImport
from gc_admin.coupons.stock.importer import FileRejected, ParsedFile, expiry_instant, read_codes_file
from gc_admin.db import Page, paginate

INVALID_KEPT = 10_000  # invalid rows kept on the import record (the count is always exact)
SUMMARY_STATES = ("in_stock", "issued", "used", "expired", "discarded")
SUMMARY_STATE_LABELS = {"in_stock": "在库", "issued": "已发未用", "used": "已使用", "expired": "已过期", "discarded": "弃票"}
BUCKETS = {"lt30": "30 天内到期", "30to60": "30–60 天到期", "gt60": "60 天以上"}


# --- import ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ImportReport:
    """The result of one stock import (API.md "Stock import"). Never contains a code."""

    import_id: int
    product_code: str
    filename: str
    status: str  # queued | running (the coupons.import task has not finished it yet) | done | failed
    error: str | None
    rows: int  # data rows read (blank rows are not rows)
    imported: int  # new codes stored, including discarded_near_expiry
    in_stock: int  # of which issuable
    duplicate_in_file: int
    duplicate_existing: int
    invalid: list[dict[str, Any]]  # [{row, reason}], at most INVALID_KEPT
    invalid_count: int
    discarded_near_expiry: int  # stored as 弃票: under the product's minimum validity
    face_fen_total: int
    cost_fen_total: int
    discarded_cost_fen: int  # the loss
    created_at: dt.datetime
    error_code: str | None = None  # a failed import's refusal code (IMPORT_FILE_INVALID, UPLOAD_*, IMPORT_ERROR)

    @property
    def final(self) -> bool:
        return self.status in ("done", "failed")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["created_at"] = self.created_at.isoformat()
        return d


def _report(imp: StockImport, product_code: str) -> ImportReport:
    assert imp.id is not None
    return ImportReport(
        import_id=imp.id, product_code=product_code, filename=imp.filename, status=imp.status, error=imp.error,
        rows=imp.rows, imported=imp.imported, in_stock=imp.imported - imp.discarded_near_expiry,
        duplicate_in_file=imp.duplicate_in_file, duplicate_existing=imp.duplicate_existing,
        invalid=json.loads(imp.invalid or "[]"), invalid_count=imp.invalid_count,
        discarded_near_expiry=imp.discarded_near_expiry, face_fen_total=imp.face_fen_total,
        cost_fen_total=imp.cost_fen_total, discarded_cost_fen=imp.discarded_cost_fen, created_at=imp.created_at,
        error_code=imp.error_code,
    )


class CodesFileRefused(InvalidInput):
    """The codes file as a whole cannot be read (``IMPORT_FILE_INVALID``, or the upload gate's ``UPLOAD_*``
    code), so nothing of it was imported. Like every error it rolls the unit of work back; the refusal
    is put on record by the caller, in a unit of work of its own (:func:`fail_import`;
    :func:`gc_admin.coupons.stock.flows.run_import` does both)."""


class ImportCrashed(DomainError):
    """The import broke on something that is not the file's fault (our bug): nothing of it was imported."""

    status = 500
    code = "IMPORT_ERROR"


def _new_import(product: Product, *, actor: Actor, filename: str, batch_ref: str | None, status: str,
                now: dt.datetime) -> StockImport:
    return StockImport(product_id=product.id, filename=(filename or "").strip()[-255:],
                       batch_ref=(batch_ref or "").strip()[:64] or None, actor_type=actor.type,
                       actor_id=None if actor.id is None else str(actor.id), actor_name=actor.name[:64],
                       actor_ip=actor.ip, status=status, created_at=now)


def import_codes(
    session: Session,
    *,
    actor: Actor,
    product_code: str,
    data: bytes,
    filename: str = "",
    expires_at: dt.date | dt.datetime | None = None,
    batch_ref: str | None = None,
    now: dt.datetime | None = None,
    into: StockImport | None = None,
    parsed: ParsedFile | None = None,
) -> ImportReport:
    """Import a CSV/XLSX file of codes for a redemption-code product; returns the report.

    A file that cannot be read imports nothing and raises :class:`CodesFileRefused` (the caller
    records the refusal: :func:`fail_import`). Bad rows are skipped and reported; codes
    already in stock (from any import) are counted as ``duplicate_existing``; codes with less than
    the product's minimum validity left are stored as discarded (弃票) and counted as a loss.
    ``into``: the import row to fill (one :func:`claim_import` took for this unit of work; its filename and
    batch_ref apply) instead of a new one. ``parsed``: the file as :func:`parse_codes` read it already (before
    this unit of work wrote anything: on SQLite its write lock is then held for the inserts only, not for the
    parse of a large file).
    """
    now = now or utcnow()
    product = _code_product(session, product_code)
    if into is None:
        imp = _new_import(product, actor=actor, filename=filename, batch_ref=batch_ref, status="done", now=now)
    else:
        imp, imp.status = into, "done"
    filename, batch_ref = imp.filename, imp.batch_ref
    if parsed is None:
        parsed = parse_codes(data, filename=filename, expires_at=expires_at)
    imp.file_type = parsed.file_type
    session.add(imp)
    session.flush()
    assert imp.id is not None and product.id is not None

    frame = parsed.frame
    bad = frame.filter(pl.col("reason").is_not_null())
    good = frame.filter(pl.col("reason").is_null())
    unique = good.filter(pl.col("code").is_first_distinct())
    cutoff = now + dt.timedelta(days=product.min_validity_days)
    staged = unique.select(
        pl.col("code"),
        pl.col("expires_at"),
        pl.col("face_fen").fill_null(product.face_fen),
        pl.col("cost_fen").fill_null(product.cost_fen),
        pl.col("batch_ref").fill_null(pl.lit(batch_ref, pl.String)),
        (pl.col("expires_at") < pl.lit(cutoff).cast(pl.Datetime("us", "UTC"))).alias("discard"),
    ).sort("code")  # in index order: the unique index on code is then filled page by page (2x faster at 1M)
    counts = _insert_codes(session, staged, product_id=product.id, import_id=imp.id, now=now)

    imp.rows = frame.height
    imp.invalid_count = bad.height
    imp.invalid = json.dumps(bad.head(INVALID_KEPT).select("row", "reason").to_dicts(), ensure_ascii=False)
    imp.duplicate_in_file = good.height - unique.height
    imp.imported = counts["imported"]
    imp.duplicate_existing = unique.height - counts["imported"]
    imp.discarded_near_expiry = counts["discarded"]
    imp.face_fen_total = counts["face_fen"]
    imp.cost_fen_total = counts["cost_fen"]
    imp.discarded_cost_fen = counts["discarded_cost_fen"]
    session.add(imp)
    session.flush()
    record(
        session, actor=actor, action="stock.imported", target_type="stock_import", target_id=imp.id,
        summary=(f"导入 {product.name}：读取 {imp.rows} 行，新增 {imp.imported} 张（其中弃票 {imp.discarded_near_expiry} 张），"
                 f"文件内重复 {imp.duplicate_in_file}，已存在 {imp.duplicate_existing}，无效 {imp.invalid_count}"),
        after={"product": product.code, "filename": filename, "rows": imp.rows, "imported": imp.imported,
               "duplicate_in_file": imp.duplicate_in_file, "duplicate_existing": imp.duplicate_existing,
               "invalid": imp.invalid_count, "discarded_near_expiry": imp.discarded_near_expiry,
               "discarded_cost_fen": imp.discarded_cost_fen},
    )
    return _report(imp, product.code)


def parse_codes(data: bytes, *, filename: str = "", expires_at: dt.date | dt.datetime | None = None) -> ParsedFile:
    """Read a codes file (no database): :class:`CodesFileRefused` when the file as a whole is unusable."""
    try:
        return read_codes_file(data, filename=filename, default_expires_at=expires_at)
    except FileRejected as exc:
        raise CodesFileRefused(exc.reason, code=exc.code) from None


def pending_import(session: Session, *, import_id: int) -> StockImport | None:
    """The import row while it is not final (queued / running), read only; ``None`` once done or failed."""
    imp = session.get(StockImport, import_id)
    return imp if imp is not None and imp.status in task_rows.UNFINISHED else None


def _code_product(session: Session, product_code: str) -> Product:
    product = get_product_by_code(session, product_code)
    if product.kind != REDEMPTION_CODE:
        raise InvalidInput("只有第三方兑换码类券种可以导入券码库存", code="NOT_A_CODE_PRODUCT")
    return product


def queue_import(session: Session, *, actor: Actor, product_code: str, filename: str = "",
                 expires_at: dt.date | dt.datetime | None = None, batch_ref: str | None = None,
                 now: dt.datetime | None = None) -> int:
    """Put an import of a codes file on record, ``queued`` for the ``coupons.import`` task; returns its id.
    The product is checked here (a wrong one is refused at once); the file is read by the task, which applies
    ``expires_at`` (kept on the row) to rows without an expiry."""
    product = _code_product(session, product_code)
    imp = _new_import(product, actor=actor, filename=filename, batch_ref=batch_ref, status="queued",
                      now=now or utcnow())
    imp.expires_default = None if expires_at is None else expiry_instant(expires_at)
    session.add(imp)
    session.flush()
    assert imp.id is not None
    return imp.id


def mark_import_running(session: Session, *, import_id: int) -> bool:
    """``queued -> running`` (the lists show 导入中); whether it moved."""
    return task_rows.mark_running(session, StockImport, import_id)


def claim_import(session: Session, *, import_id: int) -> tuple[StockImport, Actor, str] | None:
    """Take a queued / running import for this unit of work — one conditional ``UPDATE ... WHERE status IN
    ('queued', 'running')``, which also locks the row until the unit of work ends (PostgreSQL; SQLite holds its
    write lock), so a second run of the task waits for the first and then finds it final. Returns the row, the
    actor who uploaded the file and the product's code; ``None`` when the import is done or failed already."""
    imp = task_rows.claim(session, StockImport, import_id)
    if imp is None:
        return None
    product = session.get(Product, imp.product_id)
    assert product is not None
    return imp, Actor(imp.actor_type, imp.actor_id, imp.actor_name, imp.actor_ip), product.code


def fail_import(session: Session, *, import_id: int, reason: str, code: str) -> bool:
    """Put a refused (or crashed) import on record: ``failed`` with its reason (the history and the report show
    it) and an audit row — only if it was not final yet (a second run changes nothing); whether it moved.
    For the caller of :func:`import_codes`, after it raised, in a new unit of work."""
    def audit(imp: StockImport) -> None:
        product = session.get(Product, imp.product_id)
        name = product.name if product is not None else str(imp.product_id)
        record(session, actor=Actor(imp.actor_type, imp.actor_id, imp.actor_name, imp.actor_ip),
               action="stock.import_failed", target_type="stock_import", target_id=import_id,
               summary=f"导入券码失败（{name}，{imp.filename or '未命名文件'}）：{reason}"[:500])

    return task_rows.fail(session, StockImport, import_id, reason=reason, code=code, then=audit)


def unfinished_imports(session: Session, *, older_than: dt.datetime) -> list[int]:
    """Imports still queued / running that were recorded before ``older_than`` (the sweep defers them again)."""
    return task_rows.unfinished(session, StockImport, older_than=older_than)


def _insert_codes(session: Session, staged: pl.DataFrame, *, product_id: int, import_id: int,
                  now: dt.datetime) -> dict[str, int]:
    """Insert new codes (``ON CONFLICT (code) DO NOTHING``); counts and values of what went in."""
    out = {"imported": 0, "discarded": 0, "face_fen": 0, "cost_fen": 0, "discarded_cost_fen": 0}
    if staged.height == 0:
        return out
    cols = "code, product_id, import_id, expires_at, face_fen, cost_fen, batch_ref, state, discarded_at"
    pg = dialect(session) == "postgresql"
    if pg:
        temp_table(session, "_gc_codes", "code text, expires_at timestamptz, face_fen bigint, cost_fen bigint, "
                                         "batch_ref text, discard boolean")
        copy_frame(session, "_gc_codes", staged)
    cur = dbapi(session).cursor()
    try:
        for discard in (True, False):  # one pass per state: the driver's rowcount is what went in
            part = staged.filter(pl.col("discard") == discard)
            if part.height == 0:
                continue
            state = "discarded" if discard else "in_stock"
            if pg:
                cur.execute(
                    f"INSERT INTO stock_code ({cols}) SELECT code, %(pid)s, %(iid)s, expires_at, face_fen, cost_fen, "
                    f"batch_ref, %(state)s, %(at)s FROM _gc_codes WHERE discard = %(discard)s "
                    f"ON CONFLICT (code) DO NOTHING",
                    {"pid": product_id, "iid": import_id, "state": state, "at": now if discard else None,
                     "discard": discard})
            else:
                discarded_at = f"'{sqlite_time(now)}'" if discard else "NULL"
                cur.executemany(
                    f"INSERT INTO stock_code ({cols}) VALUES (?, {int(product_id)}, {int(import_id)}, ?, ?, ?, ?, "
                    f"'{state}', {discarded_at}) ON CONFLICT (code) DO NOTHING",
                    frame_times_for_sqlite(part.select("code", "expires_at", "face_fen", "cost_fen", "batch_ref"))
                    .iter_rows(),
                )
            n = max(cur.rowcount, 0)
            out["imported"] += n
            if discard:
                out["discarded"] = n
            if n == part.height:  # nothing collided: the frame's sums are exact
                face, cost = part.select(pl.col("face_fen").sum(), pl.col("cost_fen").sum()).row(0)
            else:  # some codes already existed: sum what this import actually stored
                cur.execute("SELECT coalesce(sum(face_fen), 0), coalesce(sum(cost_fen), 0) FROM stock_code "
                            + ("WHERE product_id = %s AND state = %s AND import_id = %s" if pg else
                               "WHERE product_id = ? AND state = ? AND import_id = ?"), (product_id, state, import_id))
                face, cost = cur.fetchone()
            out["face_fen"] += int(face or 0)
            out["cost_fen"] += int(cost or 0)
            if discard:
                out["discarded_cost_fen"] = int(cost or 0)
    finally:
        cur.close()
    if pg:
        session.execute(text("DROP TABLE IF EXISTS pg_temp._gc_codes"))
    return out


def get_import(session: Session, *, import_id: int) -> ImportReport:
    """One import's stored report."""
    row = session.exec(select(StockImport, Product.code).join(Product, col(Product.id) == col(StockImport.product_id))
                       .where(StockImport.id == import_id)).first()
    if row is None:
        raise NotFound("导入记录不存在", code="IMPORT_NOT_FOUND")
    return _report(row[0], row[1])


def list_imports(session: Session, *, product_code: str | None = None, offset: int = 0,
                 limit: int = 50) -> Page[ImportReport]:
    """Imports, newest first (reports without their invalid-row lists' contents trimmed)."""
    q = select(StockImport, Product.code).join(Product, col(Product.id) == col(StockImport.product_id))
    if product_code:
        q = q.where(code_is(product_code))
    return paginate(session, q, order=[col(StockImport.id).desc()], offset=offset, limit=limit,
                    row=lambda r: _report(r[0], r[1]))


IMPORT_STATUS_LABELS = {"queued": "排队中", "running": "导入中", "done": "成功", "failed": "失败"}


def import_status_label(status: str) -> str:
    return IMPORT_STATUS_LABELS.get(status, status)


def import_report_csv(report: ImportReport) -> bytes:
    """The downloadable report: a summary block, then every kept invalid row. UTF-8 with BOM (Excel-friendly);
    written by :func:`gc_admin.core.exports.csv_bytes`, so a file named ``=HYPERLINK(...).csv`` stays text."""
    rows: list[list[Any]] = [["项目", "值"]]
    for label, value in (
        ("导入编号", report.import_id), ("券种", report.product_code), ("文件", report.filename),
        ("状态", import_status_label(report.status)), ("失败原因", report.error or ""),
        ("读取行数", report.rows), ("新增券码", report.imported), ("其中可发放", report.in_stock),
        ("其中弃票（剩余有效期不足）", report.discarded_near_expiry), ("文件内重复", report.duplicate_in_file),
        ("与已有库存重复", report.duplicate_existing), ("无效行", report.invalid_count),
        ("新增面值合计", format_fen(report.face_fen_total)), ("新增成本合计", format_fen(report.cost_fen_total)),
        ("弃票损失（成本）", format_fen(report.discarded_cost_fen)),
    ):
        rows.append([label, value])
    rows += [[], ["行号", "原因"]]
    rows += [[item["row"], item["reason"]] for item in report.invalid]
    if report.invalid_count > len(report.invalid):
        rows.append(["…", f"另有 {report.invalid_count - len(report.invalid)} 行无效未列出"])
    return csv_bytes(rows)


# --- summary and code list -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SummaryRow:
    product_code: str
    product_name: str
    state: str  # in_stock | issued | used | expired | discarded
    bucket: str  # lt30 | 30to60 | gt60 (by the code's expiry, from now)
    count: int
    face_fen: int
    cost_fen: int


def _display_state(now: dt.datetime) -> Any:
    """A code's state as the stock page shows it: issued codes take their coupon's state."""
    return case(
        (and_(col(StockCode.state) == "issued", col(Coupon.status) == "used"), literal("used")),
        (and_(col(StockCode.state) == "issued",
              or_(col(Coupon.status) == "expired",
                  and_(col(Coupon.status) == "available", col(Coupon.expires_at) < now))),
         literal("expired")),
        (and_(col(StockCode.state) == "in_stock", col(StockCode.expires_at) < now), literal("expired")),
        else_=col(StockCode.state),
    )


def stock_summary(session: Session, *, product_code: str | None = None,
                  now: dt.datetime | None = None) -> list[SummaryRow]:
    """Counts and value (face, cost) by product × state × expiry bucket, in one GROUP BY."""
    now = now or utcnow()
    state = _display_state(now).label("st")
    bucket = case(
        (col(StockCode.expires_at) < now + dt.timedelta(days=30), literal("lt30")),
        (col(StockCode.expires_at) < now + dt.timedelta(days=60), literal("30to60")),
        else_=literal("gt60"),
    ).label("bucket")
    q = (
        select(Product.code, Product.name, state, bucket, func.count(), func.sum(StockCode.face_fen),
               func.sum(StockCode.cost_fen))
        .select_from(StockCode)
        .join(Product, col(Product.id) == col(StockCode.product_id))
        .outerjoin(Coupon, col(Coupon.stock_code_id) == col(StockCode.id))
        .group_by(Product.code, Product.name, state, bucket)
        .order_by(Product.code)
    )
    if product_code:
        q = q.where(code_is(product_code))
    return [SummaryRow(code, name, st, b, int(n), int(face or 0), int(cost or 0))
            for code, name, st, b, n, face, cost in session.exec(q).all()]


@dataclasses.dataclass(frozen=True)
class StockCodeRow:
    id: int
    code_masked: str
    product_code: str
    product_name: str
    state: str  # as on the summary: in_stock | issued | used | expired | discarded
    expires_at: dt.datetime
    face_fen: int
    cost_fen: int
    import_id: int | None
    batch_ref: str | None
    discarded_at: dt.datetime | None
    coupon_id: int | None
    phone_masked: str


STOCK_CODE_SORT_KEYS = ("expires_at", "product", "state", "face_fen", "cost_fen", "import_id", "id")


def _stock_codes_query(*, now: dt.datetime, product_code: str | None = None, state: str | None = None,
                       import_id: int | None = None, expires_before: dt.datetime | None = None,
                       expires_after: dt.datetime | None = None, code: str | None = None, sort: str | None = None):
    shown = _display_state(now)
    q = (
        select(StockCode.id, StockCode.code, Product.code, Product.name, shown, StockCode.expires_at,
               StockCode.face_fen, StockCode.cost_fen, StockCode.import_id, StockCode.batch_ref, StockCode.discarded_at,
               Coupon.id, Coupon.phone)
        .select_from(StockCode)
        .join(Product, col(Product.id) == col(StockCode.product_id))
        .outerjoin(Coupon, col(Coupon.stock_code_id) == col(StockCode.id))
    )
    if product_code:
        q = q.where(code_is(product_code))
    if state:
        if state not in SUMMARY_STATES:
            raise InvalidInput("未知的库存状态", code="INVALID_STATE")
        q = q.where(shown == state)
    if import_id is not None:
        q = q.where(StockCode.import_id == import_id)
    if expires_before is not None:
        q = q.where(col(StockCode.expires_at) < expires_before)
    if expires_after is not None:
        q = q.where(col(StockCode.expires_at) >= expires_after)
    if code:
        q = q.where(StockCode.code == code.strip())
    keys = {"expires_at": col(StockCode.expires_at), "product": col(Product.name), "state": shown,
            "face_fen": col(StockCode.face_fen), "cost_fen": col(StockCode.cost_fen),
            "import_id": col(StockCode.import_id), "id": col(StockCode.id)}
    order = order_by(sort, keys, tie=col(StockCode.id), default=[col(StockCode.expires_at), col(StockCode.id)])
    return q, order


def _code_row(r: Any) -> StockCodeRow:
    return StockCodeRow(r[0], mask_secret(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
                        mask_phone(r[12]))


def list_stock_codes(
    session: Session,
    *,
    product_code: str | None = None,
    state: str | None = None,
    import_id: int | None = None,
    expires_before: dt.datetime | None = None,
    expires_after: dt.datetime | None = None,
    code: str | None = None,
    sort: str | None = None,
    offset: int = 0,
    limit: int = 50,
    now: dt.datetime | None = None,
) -> Page[StockCodeRow]:
    """A page of codes (masked), filtered, earliest expiry first (or by ``sort``: :data:`STOCK_CODE_SORT_KEYS`);
    ``code`` finds one exact code (e.g. a user reports it)."""
    q, order = _stock_codes_query(product_code=product_code, state=state, import_id=import_id,
                                  expires_before=expires_before, expires_after=expires_after, code=code, sort=sort,
                                  now=now or utcnow())
    return paginate(session, q, order=order, offset=offset, limit=limit, row=_code_row)


def stock_codes_frame(session: Session, *, now: dt.datetime | None = None, **filters: Any) -> pl.DataFrame:
    """Every code matching ``filters`` — those of :func:`list_stock_codes`, and its ``sort`` — up to the
    export limit, in the list's order, for the Excel export. Codes and phones are masked exactly as in the
    list: an export never carries a whole code."""
    q, order = _stock_codes_query(now=now or utcnow(), **filters)
    rows = [_code_row(r) for r in session.exec(q.order_by(*order).limit(EXPORT_LIMIT)).all()]
    fen = lambda values: pl.Series(values, dtype=pl.Int64)  # noqa: E731
    return pl.DataFrame({
        "券码（部分隐藏）": [r.code_masked for r in rows],
        "券种": [r.product_name for r in rows],
        "券种编码": [r.product_code for r in rows],
        "状态": [SUMMARY_STATE_LABELS.get(r.state, r.state) for r in rows],
        "有效期至": [fmt_local(r.expires_at) for r in rows],
        "面值（分）": fen([r.face_fen for r in rows]),
        "成本（分）": fen([r.cost_fen for r in rows]),
        "导入批次": pl.Series([r.import_id for r in rows], dtype=pl.Int64),
        "批次号": [r.batch_ref or "" for r in rows],
        "领取手机号": [r.phone_masked for r in rows],
        "弃票时间": [fmt_local(r.discarded_at) for r in rows],
    })


def export_stock_codes(session: Session, who: Any, filters: dict[str, Any]) -> pl.DataFrame:  # noqa: ARG001
    """The ``stock_codes`` export (``exports.build``): :func:`stock_codes_frame` of the page's filters, masked."""
    f = Filters(filters)
    return stock_codes_frame(session, product_code=f.text("product_code", limit=64), state=f.text("state", limit=16),
                             import_id=f.number("import_id"), expires_after=f.time("expires_after"),
                             expires_before=f.time("expires_before"), code=f.text("code", limit=128),
                             sort=f.text("sort", limit=32))


STOCK_CODES_EXPORT = register_export("stock_codes", "券码", export_stock_codes, section="stock")


def reveal_stock_code(session: Session, *, actor: Actor, stock_code_id: int, reason: str = "") -> str:
    """The whole code, for a staff member who needs it (customer service); always audited."""
    row = session.exec(select(StockCode.code, Coupon.id).select_from(StockCode)
                       .outerjoin(Coupon, col(Coupon.stock_code_id) == col(StockCode.id))
                       .where(col(StockCode.id) == stock_code_id)).first()
    if row is None:
        raise NotFound("券码不存在", code="CODE_NOT_FOUND")
    code, coupon_id = row
    record(session, actor=actor, action="stock.code_revealed", target_type="stock_code", target_id=stock_code_id,
           summary=f"查看完整券码 {mask_secret(code)}" + (f"：{reason.strip()[:100]}" if reason.strip() else ""),
           after={"coupon_id": coupon_id})
    return code


# --- codes out of stock and back ------------------------------------------------------------

def claim_codes(session: Session, *, product_id: int, n: int, min_exp: dt.datetime) -> list[int]:
    """Atomically take up to ``n`` issuable codes of a product out of stock (``in_stock -> issued``), the
    earliest-expiring first; returns their ids in that order (expiry, id). Fewer than ``n``: stock ran out.

    The one way codes are claimed (batch issuance on PostgreSQL, purchase reservations): one conditional
    ``UPDATE ... WHERE state = 'in_stock' ... RETURNING``, so a code is flipped by one transaction only
    and only the returned ids were taken. On PostgreSQL over the codes picked ``FOR UPDATE SKIP LOCKED``
    (concurrent claims take disjoint codes instead of waiting); on SQLite the statement holds the
    database's single write lock, which serialises claims. Codes with less than ``min_exp`` left are
    never taken. The caller's unit of work owns them from here: it links them (a coupon, a purchase
    item) or gives them back with :func:`release_codes`.
    """
    session.flush()  # the caller's pending writes go first, as before any statement of the session
    params = {"pid": product_id, "n": n, "min_exp": db_time(session, min_exp)}
    if dialect(session) == "postgresql":
        sql = """
            WITH picked AS (
                SELECT id FROM stock_code
                WHERE product_id = :pid AND state = 'in_stock' AND expires_at >= :min_exp
                ORDER BY expires_at, id LIMIT :n FOR UPDATE SKIP LOCKED)
            UPDATE stock_code s SET state = 'issued' FROM picked
            WHERE s.id = picked.id AND s.state = 'in_stock'
            RETURNING s.id, s.expires_at"""
    else:  # SQLite: the statement holds the database's write lock, which serialises claims
        sql = """
            UPDATE stock_code SET state = 'issued'
            WHERE id IN (SELECT id FROM stock_code
                         WHERE product_id = :pid AND state = 'in_stock' AND expires_at >= :min_exp
                         ORDER BY expires_at, id LIMIT :n)
              AND state = 'in_stock'
            RETURNING id, expires_at"""
    # RETURNING gives no order; expires_at is the driver's value (text on SQLite), only used to sort
    return [int(code_id) for _, code_id in sorted((exp, code_id) for code_id, exp in raw_rows(session, sql, params))]


def release_codes(session: Session, ids: list[int]) -> int:
    """Put claimed codes back in stock (``issued -> in_stock``); returns how many went back. Only codes
    still issued move, so giving the same codes back twice changes nothing the second time."""
    if not ids:
        return 0
    return session.execute(text("UPDATE stock_code SET state = 'in_stock' WHERE state = 'issued' "
                                "AND id IN (" + ", ".join(str(int(i)) for i in ids) + ")")).rowcount


# --- daily maintenance -----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ExpiryResult:
    discarded: int  # in-stock codes that fell under their product's minimum validity (弃票)
    discarded_face_fen: int
    discarded_cost_fen: int  # the loss
    expired_coupons: int  # issued coupons past their date, never revealed/used
    expired_cost_fen: int  # what the codes behind them cost
    by_product: list[dict[str, Any]]


def run_expiry(session: Session, *, now: dt.datetime | None = None, actor: Actor = SYSTEM) -> ExpiryResult:
    """Discard in-stock codes under minimum validity; expire unrevealed coupons past their date.

    Set-based conditional UPDATEs per product (products are few); one audit row per product and
    kind of change. Safe to run twice: the second run finds nothing.
    """
    now = now or utcnow()
    products = session.exec(select(Product.id, Product.code, Product.name, Product.min_validity_days)).all()
    by_product: list[dict[str, Any]] = []
    totals = dict.fromkeys(
        ("discarded", "discarded_face_fen", "discarded_cost_fen", "expired_coupons", "expired_cost_fen"), 0)
    for pid, code, name, min_days in products:
        cutoff = now + dt.timedelta(days=min_days)
        gone = session.execute(
            text("UPDATE stock_code SET state = 'discarded', discarded_at = :now "
                 "WHERE product_id = :pid AND state = 'in_stock' AND expires_at < :cutoff RETURNING face_fen, cost_fen")
            .bindparams(now=db_time(session, now), cutoff=db_time(session, cutoff), pid=pid)
        ).all()
        expired = session.execute(
            text("UPDATE coupon SET status = 'expired' WHERE product_id = :pid AND status = 'available' "
                 "AND expires_at < :now RETURNING stock_code_id, cost_fen")
            .bindparams(now=db_time(session, now), pid=pid)
        ).all()
        code_ids = [r[0] for r in expired if r[0] is not None]
        for start in range(0, len(code_ids), 500):  # the codes behind them are lost too
            chunk = ", ".join(str(int(i)) for i in code_ids[start:start + 500])
            session.execute(text(f"UPDATE stock_code SET state = 'expired' WHERE state = 'issued' AND id IN ({chunk})"))
        item = {
            "product_code": code, "product_name": name,
            "discarded": len(gone), "discarded_face_fen": sum(r[0] for r in gone),
            "discarded_cost_fen": sum(r[1] for r in gone),
            "expired_coupons": len(expired),
            "expired_cost_fen": sum(r[1] for r in expired if r[0] is not None),
        }
        if gone:
            record(session, actor=actor, action="stock.discarded", target_type="product", target_id=pid,
                   summary=f"{name}：{len(gone)} 张券码剩余有效期不足 {min_days} 天，转为弃票，损失 "
                           f"{format_fen(item['discarded_cost_fen'])}",
                   after={k: item[k] for k in ("discarded", "discarded_face_fen", "discarded_cost_fen")})
        if expired:
            record(session, actor=actor, action="coupon.expired", target_type="product", target_id=pid,
                   summary=f"{name}：{len(expired)} 张券过期未使用",
                   after={k: item[k] for k in ("expired_coupons", "expired_cost_fen")})
        if gone or expired:
            by_product.append(item)
            for k in totals:
                totals[k] += item[k]
    return ExpiryResult(by_product=by_product, **totals)


def state_label(state: str) -> str:
    return SUMMARY_STATE_LABELS.get(state) or STOCK_STATES.get(state, state)
