"""Batch issuance (批量发券): one or N coupons of a product to each phone of a list.

How the guarantees hold (DESIGN.md §2.4 — in the database, not in Python):
- **Idempotency**: the batch row is inserted first with ``ON CONFLICT DO NOTHING`` on the unique
  ``(source, scope, batch_id)``. A racing twin blocks on that index entry until the first commits,
  then inserts nothing and returns the stored result (or proceeds if the first rolled back).
- **Never over-issue**: on PostgreSQL codes are taken by :func:`~gc_admin.coupons.stock.service.claim_codes`,
  one conditional ``UPDATE ... WHERE state = 'in_stock' ... RETURNING`` over the earliest-expiring
  issuable codes picked ``FOR UPDATE SKIP LOCKED`` (concurrent batches take disjoint codes instead
  of waiting); only the rows the UPDATE returned are used. On SQLite the database's single write lock, held from the batch row
  on, serialises issuers: coupons are inserted joined by rank to the earliest codes and a closing
  conditional UPDATE flips exactly those codes, its row count checked. Either way the unique
  ``coupon.stock_code_id`` refuses a code twice.
- **All-or-nothing per row**: with N per phone, a row gets N codes or none; on PostgreSQL a
  remainder of claimed codes that cannot complete a row goes straight back to stock.

Everything is set-based: phones are validated in polars, coupons are created with one
``INSERT ... SELECT`` from a staging table, and row results are written in one pass.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from typing import Any

import polars as pl
from sqlalchemy import case, func, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.core.bulk import db_time, dialect, drop_temp, load_frame, raw_rows, temp_table
from gc_admin.core.clock import SHANGHAI, fmt_local, utcnow
from gc_admin.core.errors import Conflict, DomainError, InvalidInput, NotFound
from gc_admin.core.export_jobs import Filters, register_export
from gc_admin.core.exports import EXPORT_LIMIT, csv_bytes
from gc_admin.core.principal import Actor
from gc_admin.core.sorting import order_by
from gc_admin.coupons.catalog.service import code_is, get_product_by_code, in_programme
from gc_admin.coupons.models import ISSUE_SOURCES, REDEMPTION_CODE, ROW_STATUSES, Coupon, IssuanceBatch, Product
from gc_admin.coupons.stock.importer import end_of_day
from gc_admin.coupons.stock.service import claim_codes, release_codes
from gc_admin.db import lock_for_write, paginate

MAX_PHONES = 200_000
MAX_PER_PHONE = 20
PREVIEW_PROBLEMS = 50  # bad rows listed by the preview (all of them are in the result file)
BATCH_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
REASONS = {"invalid_phone": "手机号格式不正确", "no_stock": "库存不足", "duplicate": "与第 {} 行手机号重复"}


class IssuanceCrashed(DomainError):
    """The batch broke on something that is not the request's fault (our bug): nothing of it was issued; the
    batch is on record ``failed`` and the same batch_id sent again retries it (:func:`queue_batch`)."""

    status = 500
    code = "ISSUANCE_ERROR"


CRASHED = "发券出错，本批次未发放任何券，请稍后用同一批次号重试或联系管理员"


@dataclasses.dataclass(frozen=True)
class IssuanceResult:
    """A batch's outcome (API.md "Issuance"). ``replayed``: the batch_id was already done; nothing new issued."""

    issuance_id: int
    batch_id: str
    source: str
    product_code: str
    per_phone: int
    requested: int
    issued: int  # rows that got all their coupons
    failed: int  # rows that got none
    coupons: int
    replayed: bool
    created_at: dt.datetime
    frame: pl.DataFrame  # row_no, phone, status, reason, coupon_ids ("1,2")
    status: str = "done"  # queued | running (the coupons.issue_batch task has not issued it yet: no rows) | done
    # | failed (the task broke: nothing issued, no rows; error_code says why)
    error_code: str | None = None

    @property
    def final(self) -> bool:
        return self.status in ("done", "failed")

    def rows(self) -> list[dict[str, Any]]:
        """Per-row results: ``{row, phone, status, coupon_ids?, reason?}``."""
        out = []
        for row_no, phone, status, reason, ids in self.frame.iter_rows():
            item: dict[str, Any] = {"row": row_no, "phone": phone, "status": status}
            if ids:
                item["coupon_ids"] = [int(i) for i in ids.split(",")]
            if reason:
                item["reason"] = reason
            out.append(item)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "product_code": self.product_code, "issued": self.issued,
                "failed": self.failed, "coupons": self.coupons, "replayed": self.replayed, "rows": self.rows()}


@dataclasses.dataclass(frozen=True)
class IssuancePreview:
    """What :func:`issue_batch` would do now, for the confirmation dialog. No side effects."""

    product_code: str
    product_name: str
    requested: int  # rows
    valid: int  # distinct valid phones
    invalid_phone: int
    duplicate: int
    per_phone: int
    would_issue: int  # rows that would get their coupons
    coupons: int  # coupons that would be created
    no_stock: int  # valid rows that would not (not enough stock)
    stock_available: int | None  # issuable codes now (None: product needs no stock)
    stock_after: int | None
    # the first rows that will not be issued, as the clerk wrote them: (row_no, text, status, reason)
    problems: tuple[tuple[int, str, str, str], ...] = ()


# --- phones ----------------------------------------------------------------------------------

def _normalised_phone(raw: pl.Expr) -> pl.Expr:
    """Vectorised :func:`gc_admin.core.phone.normalize_phone` (ASCII digits only)."""
    s = raw.str.strip_chars().str.replace_all(r"[\s\-()]", "")
    s = (pl.when(s.str.starts_with("+86")).then(s.str.slice(3))
         .when(s.str.starts_with("0086")).then(s.str.slice(4))
         .when(s.str.starts_with("86") & (s.str.len_chars() == 13)).then(s.str.slice(2))
         .otherwise(s))
    return pl.when(s.str.contains(r"^1[3-9][0-9]{9}$")).then(s).otherwise(None)


def classify_phones(phones: list[Any]) -> pl.DataFrame:
    """``row_no, raw, phone, status, reason``: status ``ok`` | ``invalid_phone`` | ``duplicate``."""
    if not all(isinstance(p, str) for p in phones):
        phones = ["" if p is None else str(p) for p in phones]
    raw = pl.Series("raw", phones, dtype=pl.String)
    clean = raw.str.contains(r"^1[3-9][0-9]{9}$")
    phone = raw.zip_with(clean, pl.Series([None] * len(raw), dtype=pl.String)).alias("phone")
    dirty = (~clean).arg_true()
    if len(dirty):  # only the rows that need it go through the full normalisation
        fixed = pl.DataFrame({"raw": raw.gather(dirty)}).select(_normalised_phone(pl.col("raw"))).to_series()
        phone = phone.scatter(dirty, fixed)
    df = pl.DataFrame([raw, phone]).with_row_index("row_no", offset=1).with_columns(pl.col("row_no").cast(pl.Int64))
    dup = pl.col("phone").is_not_null() & pl.col("phone").is_first_distinct().not_()
    df = df.with_columns(
        pl.when(pl.col("phone").is_null()).then(pl.lit("invalid_phone"))
        .when(dup).then(pl.lit("duplicate")).otherwise(pl.lit("ok")).alias("status"))
    invalid = pl.col("status") == "invalid_phone"
    if not df.select((pl.col("status") == "duplicate").any()).item():
        return df.with_columns(pl.when(invalid).then(pl.lit(REASONS["invalid_phone"])).otherwise(None).alias("reason"))
    first = df.filter(pl.col("status") == "ok").select("phone", pl.col("row_no").alias("_first"))
    df = df.join(first, on="phone", how="left", maintain_order="left")
    return df.with_columns(
        pl.when(invalid).then(pl.lit(REASONS["invalid_phone"]))
        .when(pl.col("status") == "duplicate").then(pl.format("与第 {} 行手机号重复", pl.col("_first")))
        .otherwise(None).alias("reason")
    ).drop("_first")


# --- stock -----------------------------------------------------------------------------------

def issuable_stock(session: Session, *, product: Product, now: dt.datetime | None = None) -> int:
    """In-stock codes with at least the product's minimum validity left."""
    now = now or utcnow()
    min_exp = now + dt.timedelta(days=product.min_validity_days)
    return int(session.execute(
        text("SELECT count(*) FROM stock_code "
             "WHERE product_id = :pid AND state = 'in_stock' AND expires_at >= :min_exp")
        .bindparams(pid=product.id, min_exp=db_time(session, min_exp))
    ).scalar_one())


# --- issue -----------------------------------------------------------------------------------

def _fingerprint(product_code: str, per_phone: int, phones: list[Any]) -> str:
    h = hashlib.sha256(f"{product_code}\x1f{per_phone}\x1f".encode())
    h.update("\x1e".join("" if p is None else str(p) for p in phones).encode())
    return h.hexdigest()


def _insert_batch(session: Session, values: dict[str, Any]) -> int | None:
    """Insert the batch row unless its key exists (then ``None``): the idempotency gate."""
    ins = (postgresql.insert if dialect(session) == "postgresql" else sqlite.insert)(IssuanceBatch)
    stmt = ins.values(**values).on_conflict_do_nothing(index_elements=["source", "scope", "batch_id"]).returning(
        IssuanceBatch.id)
    return session.execute(stmt).scalar_one_or_none()


def _validate(source: str, batch_id: str, phones: list[Any], per_phone: int) -> str:
    if source not in ISSUE_SOURCES:
        raise InvalidInput("未知的发券来源", code="INVALID_SOURCE")
    batch_id = (batch_id or "").strip()
    if not BATCH_ID_RE.match(batch_id):
        raise InvalidInput("批次号需 1–64 位字母、数字或 _ . : -", code="INVALID_BATCH_ID")
    if isinstance(per_phone, bool) or not isinstance(per_phone, int) or not 1 <= per_phone <= MAX_PER_PHONE:
        raise InvalidInput(f"每个手机号发放张数需在 1–{MAX_PER_PHONE} 之间", code="INVALID_PER_PHONE")
    if not isinstance(phones, list) or not phones:
        raise InvalidInput("手机号列表为空", code="NO_PHONES")
    if len(phones) > MAX_PHONES:
        raise InvalidInput(f"一次最多发放 {MAX_PHONES:,} 个手机号，请拆分批次", code="TOO_MANY_PHONES")
    return batch_id


def _product_for(session: Session, product_code: str, programme_code: str | None) -> Product:
    """The product, if the issuer may issue it. ``programme_code``: the issuer acts for that programme
    (an insurer's staff or partner key) and sees only its programme's insurer-funded products;
    anything else is "not found", like a missing code. ``None``: platform staff, every product."""
    product = get_product_by_code(session, product_code)
    if programme_code is not None and not in_programme(product, programme_code):
        raise NotFound("券种不存在", code="PRODUCT_NOT_FOUND")
    return product


def _open_batch(session: Session, *, actor: Actor, source: str, batch_id: str, product_code: str, phones: list[Any],
                per_phone: int, programme_code: str | None, now: dt.datetime,
                status: str) -> tuple[int, Product, IssuanceBatch | None]:
    """Validate a batch request and insert its row (``status``) unless its key exists: (batch row id, product,
    ``None``) for a new batch, (its id, product, the existing row) for the same request again; the same key
    with a different request raises :class:`Conflict` ``BATCH_ID_REUSED``."""
    batch_id = _validate(source, batch_id, phones, per_phone)
    product = _product_for(session, product_code, programme_code)
    assert product.id is not None
    scope = programme_code or ""
    fingerprint = _fingerprint(product.code, per_phone, phones)
    lock_for_write(session)  # SQLite: the only writer from the batch row on (what _issue_codes_sqlite counts on)
    issuance_id = _insert_batch(session, {
        "source": source, "scope": scope, "batch_id": batch_id, "fingerprint": fingerprint, "product_id": product.id,
        "per_phone": per_phone, "actor_type": actor.type, "actor_id": None if actor.id is None else str(actor.id),
        "actor_name": actor.name[:64], "actor_ip": actor.ip, "requested": len(phones), "created_at": now, "status": status,
    })
    if issuance_id is not None:
        return issuance_id, product, None
    existing = session.exec(select(IssuanceBatch).where(
        IssuanceBatch.source == source, IssuanceBatch.scope == scope, IssuanceBatch.batch_id == batch_id)).one()
    if existing.fingerprint != fingerprint:
        raise Conflict(f"批次号 {batch_id} 已用于另一批发券（券种或手机号不同），请换一个批次号",
                       code="BATCH_ID_REUSED")
    assert existing.id is not None
    return existing.id, product, existing


def issue_batch(
    session: Session,
    *,
    actor: Actor,
    source: str,
    batch_id: str,
    product_code: str,
    phones: list[str],
    per_phone: int = 1,
    programme_code: str | None = None,
    now: dt.datetime | None = None,
) -> IssuanceResult:
    """Issue ``per_phone`` coupons of a product to each phone; idempotent by ``(source, programme, batch_id)``.
    In the caller's unit of work (scripts, the demo, benches); the API and the 发券 page issue through the
    ``coupons.issue_batch`` task (:mod:`gc_admin.coupons.issuance.flows`: :func:`queue_batch` and
    :func:`issue_claimed`), the same steps.

    ``programme_code``: the issuer acts for that programme — an insurer's staff (``source="staff"``)
    or its partner key (``"partner"``). It may issue only that programme's insurer-funded products,
    and its batch ids are its own key space (never another programme's or the platform's batches).

    The same key again returns the first result (``replayed=True``) and issues nothing; the same
    key with a different request raises :class:`Conflict` ``BATCH_ID_REUSED``. Rows: ``issued``,
    ``invalid_phone``, ``duplicate`` (the phone appeared on an earlier row), ``no_stock``.
    """
    now = now or utcnow()
    issuance_id, product, existing = _open_batch(
        session, actor=actor, source=source, batch_id=batch_id, product_code=product_code, phones=phones,
        per_phone=per_phone, programme_code=programme_code, now=now, status="done")
    if existing is not None:
        return _result(session, existing, replayed=True)
    return _issue_rows(session, issuance_id=issuance_id, product=product, actor=actor, source=source,
                       batch_id=batch_id.strip(), phones=phones, per_phone=per_phone, now=now)


def queue_batch(session: Session, *, actor: Actor, source: str, batch_id: str, product_code: str,
                phones: list[str], per_phone: int = 1, programme_code: str | None = None,
                now: dt.datetime | None = None) -> tuple[int, bool]:
    """Put a batch on record ``queued`` for the ``coupons.issue_batch`` task (checked as :func:`issue_batch`
    checks it); returns (its id, whether it is to be issued now). The same request again: the first batch's id,
    ``False`` — unless that batch failed (:func:`fail_batch`: nothing of it issued): then it is queued again, a new
    attempt of the same batch (``True``), claimed by a conditional update so two such retries queue it once."""
    issuance_id, _product, existing = _open_batch(
        session, actor=actor, source=source, batch_id=batch_id, product_code=product_code, phones=phones,
        per_phone=per_phone, programme_code=programme_code, now=now or utcnow(), status="queued")
    if existing is not None and existing.status == "failed":
        again = session.execute(text("UPDATE issuance_batch SET status = 'queued', error_code = NULL "
                                     "WHERE id = :id AND status = 'failed'"), {"id": issuance_id}).rowcount
        return issuance_id, bool(again)
    return issuance_id, existing is None


def fail_batch(session: Session, *, issuance_id: int, code: str) -> bool:
    """Put a batch whose task broke on record: ``failed`` with ``code`` and an audit row — only if it was not
    final yet (a second call changes nothing); whether it moved. In a unit of work of its own, after the one
    that issued rolled back (so nothing of the batch exists)."""
    moved = session.execute(text("UPDATE issuance_batch SET status = 'failed', error_code = :code "
                                 "WHERE id = :id AND status IN ('queued', 'running')"),
                            {"id": issuance_id, "code": code[:32]}).rowcount
    if not moved:
        return False
    batch = session.exec(select(IssuanceBatch).where(col(IssuanceBatch.id) == issuance_id)
                         .execution_options(populate_existing=True)).one()
    record(session, actor=Actor(batch.actor_type, batch.actor_id, batch.actor_name, batch.actor_ip), action="coupon.issue_failed",
           target_type="issuance_batch", target_id=issuance_id,
           summary=f"批量发券失败（批次 {batch.batch_id}，{batch.requested} 行）：未发放任何券")
    return True


def mark_batch_running(session: Session, *, issuance_id: int) -> bool:
    """``queued -> running`` (the history shows 发放中); whether it moved."""
    return bool(session.execute(text("UPDATE issuance_batch SET status = 'running' WHERE id = :id AND status = 'queued'"),
                                {"id": issuance_id}).rowcount)


def issue_claimed(session: Session, *, issuance_id: int, phones: list[str],
                  now: dt.datetime | None = None) -> IssuanceResult | None:
    """Issue a queued batch in this unit of work: claim it with a conditional ``UPDATE ... WHERE status IN
    ('queued', 'running')`` (which locks the row until the unit of work ends, so a second run of the task waits
    for the first and then finds it done), then the same steps as :func:`issue_batch`, which mark it done.
    ``None`` when the batch was done already (nothing issued)."""
    taken = session.execute(text("UPDATE issuance_batch SET status = 'running' WHERE id = :id "
                                 "AND status IN ('queued', 'running')"), {"id": issuance_id}).rowcount
    if not taken:
        return None
    lock_for_write(session)
    batch = session.exec(select(IssuanceBatch).where(col(IssuanceBatch.id) == issuance_id)
                         .execution_options(populate_existing=True)).one()
    product = session.get(Product, batch.product_id)
    assert product is not None
    return _issue_rows(session, issuance_id=issuance_id, product=product,
                       actor=Actor(batch.actor_type, batch.actor_id, batch.actor_name, batch.actor_ip), source=batch.source,
                       batch_id=batch.batch_id, phones=phones, per_phone=batch.per_phone, now=now or utcnow())


def batch_status(session: Session, *, issuance_id: int) -> str:
    """queued | running | done | failed."""
    status = session.exec(select(IssuanceBatch.status).where(col(IssuanceBatch.id) == issuance_id)).first()
    if status is None:
        raise NotFound("发券批次不存在", code="ISSUANCE_NOT_FOUND")
    return status


def unfinished_batches(session: Session, *, older_than: dt.datetime) -> list[int]:
    """Batches still queued / running that were recorded before ``older_than`` (the sweep defers them again)."""
    return list(session.exec(select(IssuanceBatch.id).where(col(IssuanceBatch.status).in_(("queued", "running")),
                                                            col(IssuanceBatch.created_at) < older_than)
                             .order_by(col(IssuanceBatch.id))).all())


def _issue_rows(session: Session, *, issuance_id: int, product: Product, actor: Actor, source: str, batch_id: str,
                phones: list[Any], per_phone: int, now: dt.datetime) -> IssuanceResult:
    """The issuance itself, into the batch row ``issuance_id`` (marked done with its counts)."""
    assert product.id is not None
    rows = classify_phones(phones)
    candidates = rows.filter(pl.col("status") == "ok").select("row_no", "phone")
    min_exp = now + dt.timedelta(days=product.min_validity_days)
    if product.kind != REDEMPTION_CODE:
        created = _create_coupons(session, _lines(candidates, per_phone), product=product, issuance_id=issuance_id,
                                  source=source, now=now)
    elif dialect(session) == "sqlite":
        created = _issue_codes_sqlite(session, candidates, per_phone=per_phone, product=product, min_exp=min_exp,
                                      issuance_id=issuance_id, source=source, now=now)
    else:
        codes = claim_codes(session, product_id=product.id, n=candidates.height * per_phone, min_exp=min_exp)
        served = min(candidates.height, len(codes) // per_phone)
        release_codes(session, codes[served * per_phone:])  # cannot complete a row
        lines = _lines(candidates.head(served), per_phone).with_columns(
            pl.Series("stock_code_id", codes[:served * per_phone], dtype=pl.Int64))
        created = _create_coupons(session, lines, product=product, issuance_id=issuance_id, source=source, now=now)

    if per_phone == 1:
        ids = created.select("phone", pl.col("id").cast(pl.String).alias("coupon_ids"))
    else:
        ids = created.group_by("phone").agg(pl.col("id").sort().cast(pl.String).str.join(",").alias("coupon_ids"))
    result_rows = (
        rows.join(ids, on="phone", how="left")
        .with_columns(
            pl.when(pl.col("status") != "ok").then(pl.col("status"))
            .when(pl.col("coupon_ids").is_not_null()).then(pl.lit("issued"))
            .otherwise(pl.lit("no_stock")).alias("status"),
        )
        .with_columns(
            pl.when(pl.col("status") == "no_stock").then(pl.lit(REASONS["no_stock"])).otherwise(pl.col("reason"))
            .alias("reason"),
            pl.when(pl.col("status") == "issued").then(pl.col("coupon_ids")).otherwise(None).alias("coupon_ids"),
            pl.coalesce(pl.col("phone"), pl.col("raw").str.slice(0, 32)).fill_null("").alias("phone"),
        )
        .select("row_no", "phone", "status", "reason", "coupon_ids")
        .sort("row_no")
    )
    load_frame(session, "issuance_row", result_rows.with_columns(pl.lit(issuance_id, pl.Int64).alias("issuance_id")))
    issued = result_rows.filter(pl.col("status") == "issued").height
    failed = result_rows.height - issued
    session.execute(text("UPDATE issuance_batch SET issued = :i, failed = :f, coupons = :c, status = 'done' "
                         "WHERE id = :id"),
                    {"i": issued, "f": failed, "c": created.height, "id": issuance_id})
    record(
        session, actor=actor, action="coupon.issued", target_type="issuance_batch", target_id=issuance_id,
        summary=(f"批量发券 {product.name}（批次 {batch_id}）：{len(phones)} 行，成功 {issued} 行 / {created.height} 张，"
                 f"失败 {failed} 行"),
        after={"batch_id": batch_id, "source": source, "product": product.code, "per_phone": per_phone,
               "requested": len(phones), "issued": issued, "failed": failed, "coupons": created.height,
               "no_stock": result_rows.filter(pl.col("status") == "no_stock").height},
    )
    return IssuanceResult(
        issuance_id=issuance_id, batch_id=batch_id, source=source, product_code=product.code, per_phone=per_phone,
        requested=len(phones), issued=issued, failed=failed, coupons=created.height, replayed=False, created_at=now,
        frame=result_rows,
    )


def _lines(candidates: pl.DataFrame, per_phone: int) -> pl.DataFrame:
    """One line per coupon to create: each candidate row ``per_phone`` times, in row order."""
    if per_phone == 1:
        return candidates.select("phone")
    return candidates.select(pl.col("phone").repeat_by(per_phone).explode())


def _issue_codes_sqlite(session: Session, candidates: pl.DataFrame, *, per_phone: int, product: Product,
                        min_exp: dt.datetime, issuance_id: int, source: str, now: dt.datetime) -> pl.DataFrame:
    """SQLite: count, insert coupons joined to the earliest codes by rank, then flip those codes to issued.

    SQLite has one writer at a time, and this transaction has held the write lock since it inserted
    the batch row, so the stock cannot change between these statements. The closing conditional
    UPDATE still checks that every code it flips was in stock (and the unique index on
    ``coupon.stock_code_id`` would refuse a code twice): a mismatch aborts the whole batch.
    """
    params: dict[str, Any] = {"pid": product.id, "min_exp": db_time(session, min_exp), "bid": issuance_id,
                              "src": source, "now": db_time(session, now)}
    want = candidates.height * per_phone
    have = int(session.execute(text(
        "SELECT count(*) FROM (SELECT 1 FROM stock_code WHERE product_id = :pid AND state = 'in_stock' "
        "AND expires_at >= :min_exp LIMIT :n)"), {**params, "n": want}).scalar_one())
    served = min(candidates.height, have // per_phone)
    if served == 0:
        return pl.DataFrame(schema={"id": pl.Int64, "phone": pl.String})
    lines = _lines(candidates.head(served), per_phone)
    temp_table(session, "_gc_issue", "seq INTEGER PRIMARY KEY, phone TEXT")
    load_frame(session, "_gc_issue", lines.select(pl.int_range(0, pl.len(), dtype=pl.Int64).alias("seq"), "phone"))
    created = raw_rows(session, """
        INSERT INTO coupon (product_id, phone, user_id, stock_code_id, status, face_fen, cost_fen, issued_at,
                            expires_at, issuance_id, source)
        SELECT :pid, t.phone, u.id, c.id, 'available', c.face_fen, c.cost_fen, :now, c.expires_at, :bid, :src
        FROM (SELECT id, face_fen, cost_fen, expires_at, row_number() OVER (ORDER BY expires_at, id) - 1 AS rn
              FROM stock_code WHERE product_id = :pid AND state = 'in_stock' AND expires_at >= :min_exp
              ORDER BY expires_at, id LIMIT :n) c
        JOIN _gc_issue t ON t.seq = c.rn
        LEFT JOIN mp_user u ON u.phone = t.phone
        RETURNING id, phone""", {**params, "n": lines.height})
    flipped = session.execute(text(
        "UPDATE stock_code SET state = 'issued' WHERE state = 'in_stock' "
        "AND id IN (SELECT stock_code_id FROM coupon WHERE issuance_id = :bid)"), {"bid": issuance_id}).rowcount
    drop_temp(session, "_gc_issue")
    if len(created) != lines.height or flipped != lines.height:
        raise RuntimeError(f"stock changed under the write lock: {lines.height} wanted, {len(created)} coupons, "
                           f"{flipped} codes")  # never expected; rolls the whole batch back
    return pl.DataFrame([pl.Series("id", [r[0] for r in created], dtype=pl.Int64),
                         pl.Series("phone", [r[1] for r in created], dtype=pl.String)])


def _create_coupons(session: Session, lines: pl.DataFrame, *, product: Product, issuance_id: int, source: str,
                    now: dt.datetime) -> pl.DataFrame:
    """Create one coupon per line (``phone`` [, ``stock_code_id``]) with one ``INSERT ... SELECT`` from a
    staging table; the user id is joined in by phone. Returns ``id, phone`` of the new coupons."""
    if lines.height == 0:
        return pl.DataFrame(schema={"id": pl.Int64, "phone": pl.String})
    with_code = "stock_code_id" in lines.columns
    temp_table(session, "_gc_issue", "phone text" + (", stock_code_id bigint" if with_code else ""))
    load_frame(session, "_gc_issue", lines.select("phone", *(["stock_code_id"] if with_code else [])))
    params: dict[str, Any] = {"pid": product.id, "bid": issuance_id, "src": source, "now": db_time(session, now)}
    if with_code:
        sql = """
            INSERT INTO coupon (product_id, phone, user_id, stock_code_id, status, face_fen, cost_fen, issued_at,
                                expires_at, issuance_id, source)
            SELECT :pid, t.phone, u.id, t.stock_code_id, 'available', sc.face_fen, sc.cost_fen, :now, sc.expires_at,
                   :bid, :src
            FROM _gc_issue t JOIN stock_code sc ON sc.id = t.stock_code_id LEFT JOIN mp_user u ON u.phone = t.phone
            RETURNING id, phone"""
    else:
        params.update(face=product.face_fen, cost=product.cost_fen, exp=db_time(session, plain_expiry(product, now)))
        sql = """
            INSERT INTO coupon (product_id, phone, user_id, status, face_fen, cost_fen, issued_at, expires_at,
                                issuance_id, source)
            SELECT :pid, t.phone, u.id, 'available', :face, :cost, :now, :exp, :bid, :src
            FROM _gc_issue t LEFT JOIN mp_user u ON u.phone = t.phone
            RETURNING id, phone"""
    created = raw_rows(session, sql, params)
    drop_temp(session, "_gc_issue")
    return pl.DataFrame([pl.Series("id", [r[0] for r in created], dtype=pl.Int64),
                         pl.Series("phone", [r[1] for r in created], dtype=pl.String)])


def plain_expiry(product: Product, now: dt.datetime) -> dt.datetime:
    """A non-code coupon is valid ``validity_days`` from issue, through the end of that day (Shanghai)
    (issued in a batch or bought: :mod:`gc_admin.coupons.purchase.service`)."""
    return end_of_day((now.astimezone(SHANGHAI) + dt.timedelta(days=product.validity_days)).date())


def _result(session: Session, batch: IssuanceBatch, *, replayed: bool) -> IssuanceResult:
    product_code = session.exec(select(Product.code).where(Product.id == batch.product_id)).one()
    rows = raw_rows(session, "SELECT row_no, phone, status, reason, coupon_ids FROM issuance_row "
                             "WHERE issuance_id = :b ORDER BY row_no", {"b": batch.id})  # up to 10^5 rows
    columns = list(zip(*rows)) or [()] * 5
    schema = {"row_no": pl.Int64, "phone": pl.String, "status": pl.String, "reason": pl.String, "coupon_ids": pl.String}
    frame = pl.DataFrame([pl.Series(name, values, dtype=t) for (name, t), values in zip(schema.items(), columns)])
    assert batch.id is not None
    return IssuanceResult(
        issuance_id=batch.id, batch_id=batch.batch_id, source=batch.source, product_code=product_code,
        per_phone=batch.per_phone, requested=batch.requested, issued=batch.issued, failed=batch.failed,
        coupons=batch.coupons, replayed=replayed, created_at=batch.created_at, frame=frame, status=batch.status,
        error_code=batch.error_code,
    )


def get_issuance(session: Session, *, source: str, batch_id: str, programme_code: str | None = None) -> IssuanceResult:
    """A stored batch's result (e.g. ``GET /partner/issuances/{batch_id}``), in the key space of
    ``programme_code`` (the issuer's programme; ``None``: the platform's staff batches)."""
    batch = session.exec(select(IssuanceBatch).where(
        IssuanceBatch.source == source, IssuanceBatch.scope == (programme_code or ""),
        IssuanceBatch.batch_id == (batch_id or "").strip())).first()
    if batch is None:
        raise NotFound("发券批次不存在", code="ISSUANCE_NOT_FOUND")
    return _result(session, batch, replayed=True)


def issuance_coupon_states(session: Session, *, issuance_id: int) -> dict[int, str]:
    """Current state of every coupon of a batch (``available`` past its date shows as ``expired``)."""
    now = utcnow()
    rows = session.exec(
        select(Coupon.id, Coupon.status, Coupon.expires_at).where(Coupon.issuance_id == issuance_id)).all()
    return {cid: ("expired" if status == "available" and exp < now else status) for cid, status, exp in rows}


@dataclasses.dataclass(frozen=True)
class IssuanceSummary:
    issuance_id: int
    batch_id: str
    source: str
    product_code: str
    product_name: str
    per_phone: int
    requested: int
    issued: int
    failed: int
    coupons: int
    actor_name: str
    created_at: dt.datetime
    status: str = "done"  # queued | running | done | failed


BATCH_STATUS_LABELS = {"queued": "排队中", "running": "发放中", "done": "已完成", "failed": "失败"}


def batch_status_label(status: str) -> str:
    return BATCH_STATUS_LABELS.get(status, status)


ISSUANCE_SORT_KEYS: dict[str, Any] = {
    "created_at": col(IssuanceBatch.created_at), "batch_id": col(IssuanceBatch.batch_id),
    "source": col(IssuanceBatch.source), "product": col(Product.name), "per_phone": col(IssuanceBatch.per_phone),
    "requested": col(IssuanceBatch.requested), "issued": col(IssuanceBatch.issued),
    "failed": col(IssuanceBatch.failed), "coupons": col(IssuanceBatch.coupons), "actor": col(IssuanceBatch.actor_name),
}


def _issuances_query(*, product_code: str | None, source: str | None, programme_code: str | None,
                     sort: str | None):
    q = (select(IssuanceBatch, Product.code, Product.name)
         .join(Product, col(Product.id) == col(IssuanceBatch.product_id)))
    if programme_code is not None:
        q = q.where(IssuanceBatch.scope == programme_code)
    if product_code:
        q = q.where(code_is(product_code))
    if source:
        q = q.where(IssuanceBatch.source == source)
    order = order_by(sort, ISSUANCE_SORT_KEYS, tie=col(IssuanceBatch.id), default=[col(IssuanceBatch.id).desc()])
    return q, order


def _summary(b: IssuanceBatch, code: str, name: str) -> IssuanceSummary:
    return IssuanceSummary(b.id or 0, b.batch_id, b.source, code, name, b.per_phone, b.requested, b.issued, b.failed,
                           b.coupons, b.actor_name, b.created_at, b.status)


def list_issuances(session: Session, *, product_code: str | None = None, source: str | None = None,
                   programme_code: str | None = None, sort: str | None = None, offset: int = 0,
                   limit: int = 50) -> tuple[list[IssuanceSummary], int]:
    """Batches, newest first (or by ``sort``: :data:`ISSUANCE_SORT_KEYS`), with the total count.
    ``programme_code``: only that programme's own batches (issued by its staff or its partner keys);
    ``None``: every batch (platform staff)."""
    q, order = _issuances_query(product_code=product_code, source=source, programme_code=programme_code, sort=sort)
    page = paginate(session, q, order=order, offset=offset, limit=limit, row=lambda r: _summary(*r))
    return page.rows, page.total


def issuances_frame(session: Session, *, product_code: str | None = None, source: str | None = None,
                    programme_code: str | None = None, sort: str | None = None) -> pl.DataFrame:
    """Every batch matching the filters (up to the export limit), in the list's order, for the Excel export;
    ``programme_code`` scopes it as :func:`list_issuances` does."""
    q, order = _issuances_query(product_code=product_code, source=source, programme_code=programme_code, sort=sort)
    rows = [_summary(b, code, name) for b, code, name in session.exec(q.order_by(*order).limit(EXPORT_LIMIT)).all()]
    n = lambda values: pl.Series(values, dtype=pl.Int64)  # noqa: E731
    return pl.DataFrame({
        "发放时间": [fmt_local(r.created_at) for r in rows],
        "批次号": [r.batch_id for r in rows],
        "来源": [ISSUE_SOURCES.get(r.source, r.source) for r in rows],
        "券种": [r.product_name for r in rows],
        "券种编码": [r.product_code for r in rows],
        "每人张数": n([r.per_phone for r in rows]),
        "提交行数": n([r.requested for r in rows]),
        "成功行数": n([r.issued for r in rows]),
        "失败行数": n([r.failed for r in rows]),
        "发出券数": n([r.coupons for r in rows]),
        "操作人": [r.actor_name for r in rows],
    })


def export_issuances(session: Session, who: Any, filters: dict[str, Any]) -> pl.DataFrame:
    """The ``issuances`` export (``exports.build``): :func:`issuances_frame` in the list's order, within the asker's
    programme (an insurer: its own batches; without a programme: ``NO_PROGRAMME``) taken from ``who``."""
    f = Filters(filters)
    return issuances_frame(session, programme_code=who.programme(), sort=f.text("sort", limit=32))


ISSUANCES_EXPORT = register_export("issuances", "发券批次", export_issuances, section="issuance")


def preview_issuance(
    session: Session,
    *,
    product_code: str,
    phones: list[str],
    per_phone: int = 1,
    programme_code: str | None = None,
    now: dt.datetime | None = None,
) -> IssuancePreview:
    """How many rows would be issued and the stock left afterwards (the confirmation step); reads only."""
    if isinstance(per_phone, bool) or not isinstance(per_phone, int) or not 1 <= per_phone <= MAX_PER_PHONE:
        raise InvalidInput(f"每个手机号发放张数需在 1–{MAX_PER_PHONE} 之间", code="INVALID_PER_PHONE")
    if len(phones) > MAX_PHONES:
        raise InvalidInput(f"一次最多发放 {MAX_PHONES:,} 个手机号，请拆分批次", code="TOO_MANY_PHONES")
    product = _product_for(session, product_code, programme_code)
    rows = classify_phones(phones) if phones else pl.DataFrame(schema={"status": pl.String})
    counts = dict(rows.group_by("status").len().iter_rows())
    problems = () if not phones else tuple(
        (int(n), raw or "", status, reason or "") for n, raw, status, reason in
        rows.filter(pl.col("status") != "ok").head(PREVIEW_PROBLEMS).select("row_no", "raw", "status", "reason")
        .iter_rows())
    valid = int(counts.get("ok", 0))
    stock: int | None = None
    would = valid
    if product.kind == REDEMPTION_CODE:
        stock = issuable_stock(session, product=product, now=now)
        would = min(valid, stock // per_phone)
    return IssuancePreview(
        product_code=product.code, product_name=product.name, requested=len(phones), valid=valid,
        invalid_phone=int(counts.get("invalid_phone", 0)), duplicate=int(counts.get("duplicate", 0)),
        per_phone=per_phone, would_issue=would, coupons=would * per_phone, no_stock=valid - would,
        stock_available=stock, stock_after=None if stock is None else stock - would * per_phone, problems=problems,
    )


# --- a stored batch, for the 发券 page ----------------------------------------------------

def issuance_by_id(session: Session, *, issuance_id: int, programme_code: str | None = None) -> IssuanceResult:
    """A stored batch's result by its row id (staff or partner batch). ``programme_code``: only that
    programme's own batches; another's is "not found", like a missing id."""
    row = session.exec(select(IssuanceBatch.source, IssuanceBatch.scope, IssuanceBatch.batch_id)
                       .where(col(IssuanceBatch.id) == issuance_id)).first()
    if row is None or (programme_code is not None and row[1] != programme_code):
        raise NotFound("发券批次不存在", code="ISSUANCE_NOT_FOUND")
    source, scope, batch_id = row
    return get_issuance(session, source=source, batch_id=batch_id, programme_code=scope or None)


def find_staff_batch(session: Session, *, batch_id: str,
                     programme_code: str | None = None) -> IssuanceResult | None:
    """The staff batch with this id in this issuer's key space, if it was issued already (the
    preview warns about a replay)."""
    try:
        return get_issuance(session, source="staff", batch_id=batch_id, programme_code=programme_code)
    except NotFound:
        return None


def issuance_result_csv(result: IssuanceResult) -> bytes:
    """Every row of a batch: 行号, 手机号 (as supplied: the clerk's own list), 结果, 原因, 券ID. UTF-8 with BOM,
    written by :func:`gc_admin.core.exports.csv_bytes` (a junk row like ``=HYPERLINK(...)`` stays text)."""
    rows: list[list[Any]] = [["批次号", result.batch_id, "券种", result.product_code, "每人张数", result.per_phone],
                             ["行号", "手机号", "结果", "原因", "券ID"]]
    rows += [[row_no, phone, ROW_STATUSES.get(status, status), reason or "", (ids or "").replace(",", " ")]
             for row_no, phone, status, reason, ids in result.frame.iter_rows()]
    return csv_bytes(rows)


# --- figures (工作台) ----------------------------------------------------------------------------

def coupons_issued_since(session: Session, *, since: dt.datetime, programme_code: str | None = None) -> int:
    """Coupons issued in batches created since ``since`` (from the small batch table, not the coupons).
    ``programme_code``: batches of that programme's insurer-funded products only (whoever issued them)."""
    q = select(func.coalesce(func.sum(IssuanceBatch.coupons), 0)).where(col(IssuanceBatch.created_at) >= since)
    if programme_code is not None:
        q = q.join(Product, col(Product.id) == col(IssuanceBatch.product_id)).where(
            Product.programme_code == programme_code, Product.funded_by == "insurer")
    return int(session.exec(q).one())


def programme_coupon_counts(session: Session, *, programme_code: str, now: dt.datetime | None = None) -> dict[str, int]:
    """The programme's coupons (its insurer-funded products, every source) by shown state: ``total``,
    ``available`` (unused and in date), ``used`` and ``expired``; one grouped count."""
    now = now or utcnow()
    shown = case(((col(Coupon.status) == "available") & (col(Coupon.expires_at) < now), "expired"),
                 else_=col(Coupon.status))
    rows = session.exec(
        select(shown, func.count()).select_from(Coupon).join(Product, col(Product.id) == col(Coupon.product_id))
        .where(Product.programme_code == programme_code, Product.funded_by == "insurer").group_by(shown)).all()
    counts = {state: int(n) for state, n in rows}
    return {"total": sum(counts.values()), "available": counts.get("available", 0), "used": counts.get("used", 0),
            "expired": counts.get("expired", 0)}
