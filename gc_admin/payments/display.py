"""流水与对账 display: the shapes (strings only) of ledger rows and reconciliation runs, the export file name.

Pure functions, no database: the page's filter and the totals by kind are in
:mod:`gc_admin.payments.ledger`, the runs in :mod:`gc_admin.payments.reconcile`.
"""

from __future__ import annotations


from gc_admin.core.clock import fmt_local
from gc_admin.core.money import format_fen
from gc_admin.payments import reconcile
from gc_admin.payments.ledger import LedgerRow
from gc_admin.payments.ledger import export_filename as export_filename  # the 流水 export's file name
from gc_admin.payments.models import LEDGER_KINDS

PROVIDERS: dict[str, str] = {"wechatpay": "微信支付", "points": "积分", "stored_value": "储值卡", "none": "无"}
ENTRY_LABELS = {"payment": "支付", "refund": "退款"}


def ledger_row(r: LedgerRow) -> dict[str, str]:
    return {
        "id": str(r.id), "at": fmt_local(r.occurred_at, seconds=True), "kind": r.kind,
        "kind_label": LEDGER_KINDS.get(r.kind, r.kind), "amount": format_fen(r.amount_fen),
        "sign": "neg" if r.amount_fen < 0 else "pos", "order_no": r.order_no or "—",
        "provider": PROVIDERS.get(r.provider, r.provider), "provider_ref": r.provider_ref or "—", "ref": r.ref,
        "note": r.note,
    }


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
