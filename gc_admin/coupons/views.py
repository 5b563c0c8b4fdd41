"""Read helpers for the coupon pages (券库存, 发券, 用户): the few queries and file readers the
dashboard needs beyond :mod:`gc_admin.coupons.service`.

Same rules as the service (DESIGN.md §2): plain functions, session first, keyword-only after,
no commit, Chinese :class:`~gc_admin.core.errors.DomainError`s. The pages call only these and the
service; they never query the database themselves.

- phone lists: :func:`split_phones` (pasted text) and :func:`read_phone_file` (CSV / XLSX / TXT,
  UTF-8 or GBK, with or without a header) — raw values in file order; issuance validates them;
- a private staging area on disk (:func:`stash_phones`, :func:`staging_file`) so a page's state holds a
  token, not a list of 100,000 phones or a 50 MB upload (DESIGN.md §2.8);
- the stock summary pivoted into one small table per product (:func:`summary_tables`);
- issuance batches of the issuer's programme (an insurer's staff see their programme's own batches),
  a batch's stored result by id, and its result as a CSV;
- a user's coupons by user id, coupons waiting for a phone nobody has registered yet (found by that
  whole number), and coupon history labels.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import secrets
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import case, func
from sqlmodel import Session, col, select

from gc_admin.config import get_settings
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import InvalidInput, NotFound
from gc_admin.core.exports import csv_bytes
from gc_admin.core.money import format_fen
from gc_admin.core.phone import normalize_phone
from gc_admin.core.uploads import check_upload
from gc_admin.coupons import service
from gc_admin.coupons.models import REDEMPTION_CODE, ROW_STATUSES, Coupon, IssuanceBatch, Product
from gc_admin.coupons.stock import SUMMARY_STATE_LABELS, SUMMARY_STATES, SummaryRow
from gc_admin.users.models import MpUser

MAX_PHONES = 200_000
HEADER_SCAN_ROWS = 5

# --- phone lists -----------------------------------------------------------------------------

_SPLIT_RE = re.compile(r"[\r\n,，;；、|\t]+")
_SPACED_PHONE_RE = re.compile(r"(?:\+?86|0086)?\d{11}")
_PHONE_HEADERS = {"手机号", "手机号码", "手机", "电话", "电话号码", "联系电话", "联系方式", "用户手机号", "客户手机号",
                  "phone", "mobile", "phonenumber", "mobilephone", "mobileno", "tel", "cellphone"}
_HEADER_STRIP = re.compile(r"[\s_\-()（）\[\]【】:：*\ufeff]")
_EXCEL_FLOAT = re.compile(r"^(\d{11})\.0+$")
_EXCEL_SCI = re.compile(r"^(\d(?:\.\d+)?)[eE]\+?(\d{1,2})$")
_LOOKS_LIKE_PHONE = r"^\s*(?:\+?86|0086)?[\s\-]*1[3-9][\d\s\-]{9,12}$"


def split_phones(text: str) -> list[str]:
    """Pasted phones: one per line, or separated by commas / spaces / semicolons / 、; blanks dropped.

    A piece whose spaces sit inside one number (``139 1234 5678``, ``+86 138-1234-5678``) stays whole.
    """
    out: list[str] = []
    for piece in _SPLIT_RE.split((text or "").replace("\ufeff", "").replace("\u3000", " ")):
        piece = piece.strip()
        if not piece:
            continue
        if " " in piece and not _SPACED_PHONE_RE.fullmatch(re.sub(r"[\s\-]", "", piece)):
            out += piece.split()
        else:
            out.append(piece)
    return out


def _norm_header(value: object) -> str:
    return _HEADER_STRIP.sub("", str(value or "")).lower()


def _cell(value: Any) -> str:
    """A cell as text, undoing what Excel does to a phone stored as a number."""
    s = "" if value is None else str(value).strip()
    m = _EXCEL_FLOAT.match(s)
    if m:
        return m.group(1)
    m = _EXCEL_SCI.match(s)
    if m and int(m.group(2)) == 10:  # 1.3812345678E10 -> 13812345678 (11 digits, exact)
        digits = m.group(1).replace(".", "")
        return digits.ljust(11, "0") if len(digits) <= 11 else s
    return s


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise InvalidInput("文件以 UTF-16 标记开头，但内容不是有效的文本", code="PHONE_FILE_INVALID") from None
    for enc in ("utf-8", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise InvalidInput("无法识别文件编码：请上传 UTF-8 或 GBK 编码的 CSV / TXT 文件，或 Excel（.xlsx）文件",
                       code="PHONE_FILE_INVALID")


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select([pl.col(c).cast(pl.String) for c in frame.columns])


def _values(series: pl.Series) -> list[str]:
    return [_cell(v) for v in series.to_list() if v is not None and str(v).strip()]


def _header_column(frame: pl.DataFrame) -> list[str] | None:
    """The values under a phone header (手机号 / phone / ...) in the first rows, if there is one."""
    for at, cells in enumerate(frame.head(HEADER_SCAN_ROWS).rows()):
        for idx, cell in enumerate(cells):
            if _norm_header(cell) in _PHONE_HEADERS:
                return _values(frame.get_column(frame.columns[idx]).slice(at + 1))
    return None


def _phone_like_counts(frame: pl.DataFrame) -> list[int]:
    return list(frame.select([
        pl.col(c).map_elements(_cell, return_dtype=pl.String).str.contains(_LOOKS_LIKE_PHONE).sum().alias(c)
        for c in frame.columns]).row(0))


def _drop_title(values: list[str]) -> list[str]:
    # An unrecognised header on the first row (e.g. "号码") is not a phone: drop it if it has no digit.
    return values[1:] if values and not re.search(r"\d", values[0]) else values


def read_phone_file(data: bytes, *, filename: str = "") -> list[str]:
    """Phones from an uploaded file, as written (not yet validated), in file order.

    ``.xlsx``/``.xls``: the first sheet with data. CSV/TXT in UTF-8, UTF-16 or GBK: a column headed
    手机号 / 手机 / 电话 / phone / mobile (in the first 5 rows) if there is one; otherwise a table's
    most phone-like column; otherwise every token separated by new lines, commas or spaces.
    The upload gate (:func:`gc_admin.core.uploads.check_upload`) refuses the file first if a parser
    must not see it (``UPLOAD_*`` codes).
    """
    if not data or not data.strip():
        raise InvalidInput("文件为空", code="PHONE_FILE_INVALID")
    if check_upload(data) in ("xlsx", "xls"):
        phones = _read_excel(data)
    else:
        phones = _read_text(data, filename)
    if not phones:
        raise InvalidInput("文件中没有找到手机号", code="PHONE_FILE_EMPTY")
    if len(phones) > MAX_PHONES:
        raise InvalidInput(f"一次最多发放 {MAX_PHONES:,} 个手机号，请拆分文件", code="TOO_MANY_PHONES")
    return phones


def _read_excel(data: bytes) -> list[str]:
    import fastexcel

    try:
        reader = fastexcel.read_excel(data)
        for idx in range(len(reader.sheet_names)):
            frame = _as_text(reader.load_sheet(idx, header_row=None, dtypes="string").to_polars())
            if frame.height == 0 or frame.width == 0:
                continue
            found = _header_column(frame)
            if found is not None:
                return found
            counts = _phone_like_counts(frame)
            best = max(range(frame.width), key=lambda i: counts[i])
            return _drop_title(_values(frame.get_column(frame.columns[best])))
    except InvalidInput:
        raise
    except Exception:
        raise InvalidInput("无法读取该 Excel 文件（文件损坏或不是 Excel 格式），请另存为 .xlsx 后重试",
                           code="PHONE_FILE_INVALID") from None
    return []


def _read_text(data: bytes, filename: str) -> list[str]:
    text = _decode(data)
    if "\x00" in text[:65536] or len(re.findall(r"[\x01-\x08\x0b\x0c\x0e-\x1f]", text[:65536])) > 8:
        raise InvalidInput("文件内容无法识别（不是文本），请上传 CSV、TXT 或 Excel 文件", code="PHONE_FILE_INVALID")
    lines = [ln for ln in text.splitlines() if ln.strip()][:HEADER_SCAN_ROWS]
    for sep in (",", "\t", ";", "|"):
        if len(lines) < 2 or not all(sep in ln for ln in lines):
            continue
        try:
            frame = _as_text(pl.read_csv(text.encode("utf-8"), has_header=False, separator=sep, infer_schema=False,
                                         truncate_ragged_lines=True, raise_if_empty=False))
        except Exception:
            break  # not a table after all: read it as a list
        found = _header_column(frame)
        if found is not None:
            return found
        counts = _phone_like_counts(frame)
        if sum(1 for n in counts if n) == 1:  # a table with one phone column (names, notes beside it)
            return _drop_title(_values(frame.get_column(frame.columns[counts.index(max(counts))])))
        break  # several phones per line: a plain list
    tokens = split_phones(text)
    if tokens and _norm_header(tokens[0]) in _PHONE_HEADERS:
        tokens = tokens[1:]
    return _drop_title([_cell(t) for t in tokens])


# --- private staging area --------------------------------------------------------------------

_TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
STAGING_MAX_AGE_S = 24 * 3600  # a preview nobody confirmed, an upload that never finished


def _staging_dir() -> Path:
    path = get_settings().upload_dir / "staging"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sweep_staging(max_age_s: float = STAGING_MAX_AGE_S) -> int:
    """Delete staging files older than ``max_age_s``; returns how many."""
    import time

    cutoff, n = time.time() - max_age_s, 0
    for path in _staging_dir().iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                n += 1
        except OSError:  # another worker got there first
            continue
    return n


def staging_file(kind: str, suffix: str = "") -> tuple[str, Path]:
    """A new private file for a page's pending work: ``(token, path)``; old leftovers are swept first."""
    sweep_staging()
    token = secrets.token_hex(16)
    return token, _staging_dir() / f"{kind}-{token}{suffix}"


def staged_path(kind: str, token: str, suffix: str = "") -> Path:
    if not _TOKEN_RE.match(token or ""):
        raise NotFound("待处理文件已失效，请重新上传", code="STAGING_NOT_FOUND")
    return _staging_dir() / f"{kind}-{token}{suffix}"


def stash_phones(phones: list[str]) -> str:
    """Keep a phone list on disk until it is issued; returns its token."""
    token, path = staging_file("phones", ".txt")
    path.write_text("\n".join(p.replace("\n", " ") for p in phones), encoding="utf-8")
    return token


def load_phones(token: str) -> list[str]:
    path = staged_path("phones", token, ".txt")
    if not path.exists():
        raise NotFound("待发放的手机号列表已失效，请重新上传或粘贴", code="STAGING_NOT_FOUND")
    text = path.read_text(encoding="utf-8")
    return text.split("\n") if text else []


def discard_staged(kind: str, token: str, suffix: str = "") -> None:
    try:
        staged_path(kind, token, suffix).unlink(missing_ok=True)
    except NotFound:
        pass


# --- stock summary ---------------------------------------------------------------------------

BUCKET_KEYS = {"lt30": "lt30", "30to60": "m30_60", "gt60": "gt60"}


@dataclasses.dataclass
class SummaryTable:
    """One product's stock as the page shows it: a row per state, then 合计. Values are display text."""

    product_code: str = ""
    product_name: str = ""
    rows: list[dict[str, str]] = dataclasses.field(default_factory=list)


def summary_tables(rows: list[SummaryRow]) -> list[SummaryTable]:
    """Pivot :func:`service.stock_summary` rows: per product, states × (<30 天, 30–60 天, >60 天, 合计, 面值, 成本)."""
    by_product: dict[str, dict[str, Any]] = {}
    for r in rows:
        p = by_product.setdefault(r.product_code, {"name": r.product_name, "cells": {}})
        cell = p["cells"].setdefault(r.state, {"lt30": 0, "30to60": 0, "gt60": 0, "face": 0, "cost": 0})
        cell[r.bucket] += r.count
        cell["face"] += r.face_fen
        cell["cost"] += r.cost_fen
    out: list[SummaryTable] = []
    for code, p in by_product.items():
        table = SummaryTable(product_code=code, product_name=p["name"])
        total = {"lt30": 0, "30to60": 0, "gt60": 0, "face": 0, "cost": 0}
        for state in SUMMARY_STATES:
            c = p["cells"].get(state, {"lt30": 0, "30to60": 0, "gt60": 0, "face": 0, "cost": 0})
            for k in total:
                total[k] += c[k]
            table.rows.append(_summary_row(state, SUMMARY_STATE_LABELS[state], c))
        table.rows.append(_summary_row("total", "合计", total))
        out.append(table)
    return out


def _summary_row(state: str, label: str, c: dict[str, int]) -> dict[str, str]:
    n = c["lt30"] + c["30to60"] + c["gt60"]
    row = {"state": state, "label": label, "total": f"{n:,}", "face": format_fen(c["face"]), "cost": format_fen(c["cost"])}
    for bucket, key in BUCKET_KEYS.items():
        row[key] = f"{c[bucket]:,}"
    return row


def summary_totals(rows: list[SummaryRow]) -> dict[str, int]:
    """Headline numbers for the stock page: in-stock count/face, expiring within 30 / 60 days, discarded loss."""
    out = {"in_stock": 0, "in_stock_face_fen": 0, "in_stock_lt30": 0, "in_stock_lt60": 0, "discarded": 0,
           "discarded_cost_fen": 0}
    for r in rows:
        if r.state == "in_stock":
            out["in_stock"] += r.count
            out["in_stock_face_fen"] += r.face_fen
            if r.bucket == "lt30":
                out["in_stock_lt30"] += r.count
            if r.bucket in ("lt30", "30to60"):
                out["in_stock_lt60"] += r.count
        elif r.state == "discarded":
            out["discarded"] += r.count
            out["discarded_cost_fen"] += r.cost_fen
    return out



# --- products --------------------------------------------------------------------------------

def issuable_products(session: Session, *, programme_code: str | None) -> list[Product]:
    """Products a staff member may issue: every product for platform staff (``None``); for an
    insurer's staff, their programme's insurer-funded products (:func:`service.in_programme`)."""
    if programme_code is None:
        return service.list_products(session)
    return service.programme_products(session, programme_code=programme_code)


def code_products(session: Session) -> list[Product]:
    """Products with code stock (the import form's choices)."""
    return service.list_products(session, kind=REDEMPTION_CODE)


# --- issuance batches ------------------------------------------------------------------------

def list_batches(session: Session, *, programme_code: str | None = None, sort: str | None = None, offset: int = 0,
                 limit: int = 20) -> tuple[list[service.IssuanceSummary], int]:
    """Issuance batches, newest first (or by ``sort``); ``programme_code``: only that programme's own batches."""
    return service.list_issuances(session, programme_code=programme_code, sort=sort, offset=offset, limit=limit)


def issuance_by_id(session: Session, *, issuance_id: int, programme_code: str | None = None) -> service.IssuanceResult:
    """A stored batch's result by its row id (staff or partner batch). ``programme_code``: only that
    programme's own batches; another's is "not found", like a missing id."""
    row = session.exec(select(IssuanceBatch.source, IssuanceBatch.scope, IssuanceBatch.batch_id)
                       .where(col(IssuanceBatch.id) == issuance_id)).first()
    if row is None or (programme_code is not None and row[1] != programme_code):
        raise NotFound("发券批次不存在", code="ISSUANCE_NOT_FOUND")
    source, scope, batch_id = row
    return service.get_issuance(session, source=source, batch_id=batch_id, programme_code=scope or None)


def find_staff_batch(session: Session, *, batch_id: str,
                     programme_code: str | None = None) -> service.IssuanceResult | None:
    """The staff batch with this id in this issuer's key space, if it was issued already (the
    preview warns about a replay)."""
    try:
        return service.get_issuance(session, source="staff", batch_id=batch_id, programme_code=programme_code)
    except NotFound:
        return None


def issuance_result_csv(result: service.IssuanceResult) -> bytes:
    """Every row of a batch: 行号, 手机号 (as supplied: the clerk's own list), 结果, 原因, 券ID. UTF-8 with BOM,
    written by :func:`gc_admin.core.exports.csv_bytes` (a junk row like ``=HYPERLINK(...)`` stays text)."""
    rows: list[list[Any]] = [["批次号", result.batch_id, "券种", result.product_code, "每人张数", result.per_phone],
                             ["行号", "手机号", "结果", "原因", "券ID"]]
    rows += [[row_no, phone, ROW_STATUSES.get(status, status), reason or "", (ids or "").replace(",", " ")]
             for row_no, phone, status, reason, ids in result.frame.iter_rows()]
    return csv_bytes(rows)


# --- users -----------------------------------------------------------------------------------

def user_coupons(session: Session, *, user_id: int) -> tuple[MpUser, list[service.StaffCouponView]]:
    """A user and every coupon of theirs (masked). A user without a phone has none yet: coupons wait on phones."""
    user = session.get(MpUser, user_id)
    if user is None:
        raise NotFound("用户不存在", code="USER_NOT_FOUND")
    if not user.phone:
        return user, []
    return user, service.user_coupons_for_staff(session, phone=user.phone)


@dataclasses.dataclass(frozen=True)
class WaitingPhone:
    """Coupons issued to a phone number that no user has registered yet (they wait for it)."""

    phone: str  # normalised, whole: the caller masks it for display
    coupons: int
    available: int  # unused and in date


def waiting_phone(session: Session, *, phone: str, now: dt.datetime | None = None) -> WaitingPhone | None:
    """The coupons waiting for ``phone`` if it is a whole number nobody has registered, else ``None``.
    Only a whole number finds them: unregistered phones are not listed from a few digits."""
    norm = normalize_phone(phone or "")
    if norm is None or session.exec(select(MpUser.id).where(MpUser.phone == norm)).first() is not None:
        return None
    now = now or utcnow()
    in_date = case(((col(Coupon.status) == "available") & (col(Coupon.expires_at) >= now), 1), else_=0)
    total, available = session.exec(select(func.count(), func.coalesce(func.sum(in_date), 0))
                                    .where(col(Coupon.phone) == norm)).one()
    return WaitingPhone(norm, int(total), int(available)) if total else None


def phone_coupons(session: Session, *, phone: str) -> list[service.StaffCouponView]:
    """Every coupon of a phone number (masked): a waiting phone's detail on the 用户 page."""
    return service.user_coupons_for_staff(session, phone=phone)


COUPON_ACTION_LABELS: dict[str, str] = {
    "coupon.issued": "发放",
    "coupon.claimed": "归属到用户",
    "coupon.revealed": "使用（显示券码）",
    "coupon.re_revealed": "再次查看券码",
    "coupon.reserved": "下单锁定",
    "coupon.consumed": "核销",
    "coupon.released": "释放",
    "coupon.expired": "过期",
    "stock.code_revealed": "员工查看完整券码",
    "stock.discarded": "弃票",
}
