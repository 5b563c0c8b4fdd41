"""流水 (the ledger): one append-only row per money movement — its entries, filters, list, totals and export.

A leaf of the payments feature: it imports nothing from orders (payments sits below orders, see
DESIGN.md §2). An entry names its order by id; to show and filter by the order number the list
joins the order table by name (:data:`_ORDERS`), exactly as the ledger's foreign key refers to it.

``ledger_entry.ref`` is unique, so :func:`add_ledger` with a ref already there adds nothing (a
notify replayed, a refund applied twice); database triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from gc_admin.core.clock import SHANGHAI, UTC, fmt_local, iso, utcnow
from gc_admin.core.errors import InvalidInput
from gc_admin.core.export_jobs import Filters, register_export
from gc_admin.core.exports import EXPORT_LIMIT, xlsx_bytes
from gc_admin.core.money import format_fen
from gc_admin.core.params import DAY_RANGE, check_day
from gc_admin.core.sorting import order_by
from gc_admin.core.bulk import dialect
from gc_admin.db import Page, paginate
from gc_admin.payments.models import LEDGER_KINDS, LedgerEntry

# the order table, by name: the ledger shows an entry's order number without importing orders
_ORDERS = sa.table("service_order", sa.column("id"), sa.column("order_no"))


def dialect_insert(session: Session):
    """``INSERT`` of this session's dialect (for ``ON CONFLICT DO NOTHING``)."""
    return postgresql.insert if dialect(session) == "postgresql" else sqlite.insert


def add_ledger(session: Session, *, kind: str, amount_fen: int, ref: str, provider: str,
               provider_ref: str | None = None, order_id: int | None = None, user_id: int | None = None,
               occurred_at: dt.datetime | None = None, note: str = "") -> int | None:
    """Append one ledger entry unless ``ref`` is already there; returns its id (``None`` if it was)."""
    if kind not in LEDGER_KINDS:
        raise ValueError(f"unknown ledger kind {kind!r}")
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
        raise TypeError("amount_fen must be int")
    now = utcnow()
    stmt = dialect_insert(session)(LedgerEntry).values(
        kind=kind, amount_fen=amount_fen, ref=ref[:80], provider=provider, provider_ref=provider_ref,
        order_id=order_id, user_id=user_id, occurred_at=occurred_at or now, created_at=now, note=note[:200],
    ).on_conflict_do_nothing().returning(LedgerEntry.id)
    return session.execute(stmt).scalar_one_or_none()


@dataclasses.dataclass(frozen=True)
class LedgerFilter:
    """Ledger filters; ``date_from`` / ``date_to`` are Asia/Shanghai days, both included."""

    kind: str | None = None
    provider: str | None = None
    order_no: str | None = None
    user_id: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None


def ledger_filter(*, kind: str = "", provider: str = "", order_no: str = "", date_from: str = "",
                  date_to: str = "") -> LedgerFilter:
    """The page's filter fields (``"all"`` or empty: no filter) -> a :class:`LedgerFilter`;
    ``ValueError`` with a Chinese message for a bad date or an inverted range."""
    def day(value: str, label: str) -> dt.date | None:
        value = (value or "").strip()
        if not value:
            return None
        try:
            parsed = dt.date.fromisoformat(value[:10])
        except ValueError:
            raise ValueError(f"{label}格式不正确，应为 YYYY-MM-DD") from None
        try:
            return check_day(parsed)
        except ValueError:
            raise ValueError(f"{label}不正确：{DAY_RANGE}") from None

    start, end = day(date_from, "开始日期"), day(date_to, "结束日期")
    if start and end and start > end:
        raise ValueError("开始日期不能晚于结束日期")
    kind = "" if kind in ("", "all") else kind
    if kind and kind not in LEDGER_KINDS:
        raise ValueError("未知的流水类型")
    provider = "" if provider in ("", "all") else provider
    order_no = "".join(ch for ch in (order_no or "") if ch.isascii() and ch.isalnum())[:32]
    return LedgerFilter(kind=kind or None, provider=provider or None, order_no=order_no or None,
                        date_from=start, date_to=end)


@dataclasses.dataclass(frozen=True)
class LedgerRow:
    id: int
    kind: str
    amount_fen: int
    order_id: int | None
    order_no: str | None
    user_id: int | None
    provider: str
    provider_ref: str | None
    ref: str
    note: str
    occurred_at: dt.datetime
    created_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(occurred_at=iso(self.occurred_at), created_at=iso(self.created_at), kind_label=LEDGER_KINDS[self.kind])
        return d


@dataclasses.dataclass(frozen=True)
class LedgerPage(Page[LedgerRow]):
    net_fen: int  # sum of amount_fen over every row matching the filters (not just this page)


def day_start(day: dt.date) -> dt.datetime:
    """00:00 Asia/Shanghai of ``day``, as UTC."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).astimezone(UTC)


def _ledger_query(filters: LedgerFilter | None):
    f = filters or LedgerFilter()
    q = (select(LedgerEntry, _ORDERS.c.order_no)
         .outerjoin(_ORDERS, _ORDERS.c.id == col(LedgerEntry.order_id)))
    if f.kind:
        if f.kind not in LEDGER_KINDS:
            raise InvalidInput("未知的流水类型", code="INVALID_KIND")
        q = q.where(col(LedgerEntry.kind) == f.kind)
    if f.provider:
        q = q.where(col(LedgerEntry.provider) == f.provider)
    if f.order_no:
        q = q.where(_ORDERS.c.order_no == f.order_no.strip().upper())
    if f.user_id is not None:
        q = q.where(col(LedgerEntry.user_id) == f.user_id)
    if f.date_from:
        q = q.where(col(LedgerEntry.occurred_at) >= day_start(f.date_from))
    if f.date_to:
        q = q.where(col(LedgerEntry.occurred_at) < day_start(f.date_to + dt.timedelta(days=1)))
    return q


def _row(r: Any) -> LedgerRow:
    e, order_no = r
    return LedgerRow(e.id or 0, e.kind, e.amount_fen, e.order_id, order_no, e.user_id, e.provider, e.provider_ref,
                     e.ref, e.note, e.occurred_at, e.created_at)


LEDGER_SORT_KEYS: dict[str, Any] = {
    "occurred_at": col(LedgerEntry.occurred_at), "kind": col(LedgerEntry.kind), "amount_fen": col(LedgerEntry.amount_fen),
    "order_no": _ORDERS.c.order_no, "provider": col(LedgerEntry.provider),
}


def list_ledger(session: Session, *, filters: LedgerFilter | None = None, sort: str | None = None, offset: int = 0,
                limit: int = 50) -> LedgerPage:
    """A page of the ledger, newest first (or by ``sort``: :data:`LEDGER_SORT_KEYS`), with the total count and
    the net amount of all matches."""
    q = _ledger_query(filters)
    order = order_by(sort, LEDGER_SORT_KEYS, tie=col(LedgerEntry.id),
                     default=[col(LedgerEntry.occurred_at).desc(), col(LedgerEntry.id).desc()])
    page = paginate(session, q, order=order, offset=offset, limit=limit, row=_row)
    net = session.execute(select(func.coalesce(func.sum(q.subquery().c.amount_fen), 0))).scalar_one()
    return LedgerPage(page.rows, page.total, int(net))


@dataclasses.dataclass(frozen=True)
class KindTotal:
    kind: str
    label: str
    count: int
    net_fen: int


def ledger_totals(session: Session, *, filters: LedgerFilter) -> list[KindTotal]:
    """Count and net amount per ledger kind for ``filters`` (kinds with no rows left out), in one
    ``GROUP BY`` over the list's own query: exactly the list's and the export's filter semantics."""
    sub = _ledger_query(filters).subquery()
    found = {kind: (int(n), int(net)) for kind, n, net in session.execute(
        select(sub.c.kind, func.count(), func.coalesce(func.sum(sub.c.amount_fen), 0)).group_by(sub.c.kind)).all()}
    return [KindTotal(kind, label, *found[kind]) for kind, label in LEDGER_KINDS.items() if kind in found]


def ledger_frame(session: Session, *, filters: LedgerFilter | None = None, sort: str | None = None) -> pl.DataFrame:
    """The matching ledger rows as a frame (oldest first, or by ``sort`` as the list shows them), for exports."""
    order = order_by(sort, LEDGER_SORT_KEYS, tie=col(LedgerEntry.id),
                     default=[col(LedgerEntry.occurred_at), col(LedgerEntry.id)])
    q = _ledger_query(filters).order_by(*order).limit(EXPORT_LIMIT)
    rows = [_row(r) for r in session.exec(q).all()]
    return pl.DataFrame({
        "流水ID": [r.id for r in rows],
        "发生时间": [fmt_local(r.occurred_at, seconds=True) for r in rows],
        "类型": [LEDGER_KINDS[r.kind] for r in rows],
        "金额（分）": pl.Series([r.amount_fen for r in rows], dtype=pl.Int64),
        "金额": [format_fen(r.amount_fen) for r in rows],
        "订单号": [r.order_no or "" for r in rows],
        "渠道": [r.provider for r in rows],
        "渠道流水号": [r.provider_ref or "" for r in rows],
        "业务单号": [r.ref for r in rows],
        "备注": [r.note for r in rows],
    }, schema_overrides={"流水ID": pl.Int64})


def ledger_xlsx(session: Session, *, filters: LedgerFilter | None = None, sort: str | None = None) -> bytes:
    """The matching ledger as an Excel workbook (amounts as integer fen plus ``¥`` text; no floats)."""
    return xlsx_bytes(ledger_frame(session, filters=filters, sort=sort), sheet="流水")


def export_filename(now: dt.datetime | None = None) -> str:
    """``流水-20261122.xlsx`` (today in Asia/Shanghai)."""
    return f"流水-{(now or utcnow()).astimezone(SHANGHAI):%Y%m%d}.xlsx"


def export_ledger(session: Session, who: Any, filters: dict[str, Any]) -> pl.DataFrame:  # noqa: ARG001 - one scope
    """The ``ledger`` export (``exports.build``; the 流水 page and ``GET /admin/ledger.xlsx``): :func:`ledger_frame`
    of the filters (kind, provider, order_no, date_from / date_to as ``YYYY-MM-DD``, sort), checked again by
    :func:`ledger_filter`."""
    f = Filters(filters)
    try:
        parsed = ledger_filter(kind=f.text("kind", limit=16) or "", provider=f.text("provider", limit=16) or "",
                               order_no=f.text("order_no", limit=32) or "", date_from=f.text("date_from", limit=10) or "",
                               date_to=f.text("date_to", limit=10) or "")
    except ValueError as exc:
        raise InvalidInput(str(exc), code="INVALID_EXPORT_FILTER") from None
    return ledger_frame(session, filters=parsed, sort=f.text("sort", limit=32))


LEDGER_EXPORT = register_export("ledger", "流水", export_ledger, section="ledger", filename=export_filename)
