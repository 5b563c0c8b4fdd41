"""流水与对账 helpers: the ledger filter from the page's form, totals by kind, display shapes of ledger
rows and reconciliation runs, the export file name.

Reads only through :mod:`gc_admin.payments.service` and :mod:`gc_admin.payments.reconcile`.
Totals by kind reuse :func:`service.list_ledger` (which returns the count and the net amount of
everything matching a filter) once per kind, so they apply exactly the same filter semantics as
the list and the export: a handful of aggregate queries, no rows fetched.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlmodel import Session

from gc_admin.core.clock import SHANGHAI, fmt_local, utcnow
from gc_admin.core.money import format_fen
from gc_admin.core.params import DAY_RANGE, check_day
from gc_admin.payments import reconcile
from gc_admin.payments import service as payments
from gc_admin.payments.models import LEDGER_KINDS

PROVIDERS: dict[str, str] = {"wechatpay": "微信支付", "points": "积分", "stored_value": "储值卡", "none": "无"}
ENTRY_LABELS = {"payment": "支付", "refund": "退款"}


def ledger_filter(*, kind: str = "", provider: str = "", order_no: str = "", date_from: str = "",
                  date_to: str = "") -> payments.LedgerFilter:
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
    return payments.LedgerFilter(kind=kind or None, provider=provider or None, order_no=order_no or None,
                                 date_from=start, date_to=end)


@dataclasses.dataclass(frozen=True)
class KindTotal:
    kind: str
    label: str
    count: int
    net_fen: int


def ledger_totals(session: Session, *, filters: payments.LedgerFilter) -> list[KindTotal]:
    """Count and net amount per ledger kind for ``filters`` (kinds with no rows left out)."""
    kinds = [filters.kind] if filters.kind else list(LEDGER_KINDS)
    out = []
    for kind in kinds:
        page = payments.list_ledger(session, filters=dataclasses.replace(filters, kind=kind), limit=1)
        if page.total:
            out.append(KindTotal(kind, LEDGER_KINDS[kind], page.total, page.net_fen))
    return out


def ledger_row(r: payments.LedgerRow) -> dict[str, str]:
    return {
        "id": str(r.id), "at": fmt_local(r.occurred_at, seconds=True), "kind": r.kind,
        "kind_label": LEDGER_KINDS.get(r.kind, r.kind), "amount": format_fen(r.amount_fen),
        "sign": "neg" if r.amount_fen < 0 else "pos", "order_no": r.order_no or "—",
        "provider": PROVIDERS.get(r.provider, r.provider), "provider_ref": r.provider_ref or "—", "ref": r.ref,
        "note": r.note,
    }


def export_filename(now: dt.datetime | None = None) -> str:
    """``流水-20261122.xlsx`` (today in Asia/Shanghai)."""
    return f"流水-{(now or utcnow()).astimezone(SHANGHAI):%Y%m%d}.xlsx"


def _money(fen: int | None) -> str:
    return "—" if fen is None else format_fen(fen)


def run_view(r: reconcile.ReconcileResult) -> dict[str, str]:
    return {
        "id": str(r.run_id), "bill_date": r.bill_date.isoformat(), "bill_rows": f"{r.bill_rows:,}",
        "ledger_rows": f"{r.ledger_rows:,}", "matched": f"{r.matched:,}",
        "missing_in_ledger": f"{r.count('missing_in_ledger'):,}", "missing_in_bill": f"{r.count('missing_in_bill'):,}",
        "amount_differs": f"{r.count('amount_differs'):,}", "mismatches": f"{len(r.mismatches):,}",
        "bill_net": format_fen(r.bill_net_fen), "ledger_net": format_fen(r.ledger_net_fen),
        "ok": "1" if r.ok else "", "at": fmt_local(r.created_at),
    }


def mismatch_rows(r: reconcile.ReconcileResult, *, limit: int = 500) -> list[dict[str, str]]:
    rows = []
    for m in r.mismatches[:limit]:
        diff = (m.bill_fen - m.ledger_fen) if m.bill_fen is not None and m.ledger_fen is not None else None
        rows.append({
            "kind": m.kind, "kind_label": reconcile.KINDS.get(m.kind, m.kind),
            "entry": ENTRY_LABELS.get(m.entry, m.entry), "key": m.key, "bill": _money(m.bill_fen),
            "ledger": _money(m.ledger_fen), "diff": _money(diff), "ref": m.provider_ref or "—",
        })
    return rows
