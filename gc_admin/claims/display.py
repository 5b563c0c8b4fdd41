"""What the review page shows: service results turned into flat strings (money as ¥1,234.50, times
Asia/Shanghai), so the Reflex state holds one page of rows and one claim, nothing more."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gc_admin.claims.models import EVENT_ACTIONS, MAINTENANCE_ITEMS, OCR_STATUSES, PAYOUT_METHODS, STATUSES
from gc_admin.claims.service import reason_label
from gc_admin.core.clock import fmt_local
from gc_admin.core.money import format_fen


def _t(value: str | None) -> str:
    return fmt_local(dt.datetime.fromisoformat(value)) if value else "—"


def _age(minutes_left: int | None, overdue: bool) -> str:
    if minutes_left is None:
        return "—"
    if overdue:
        return f"超时 {(-minutes_left) // 60} 小时"
    return f"剩 {minutes_left // 60} 小时 {minutes_left % 60} 分"


def queue_row(r: dict[str, Any]) -> dict[str, str]:
    return {
        "id": str(r["id"]), "category": r["category_label"], "amount": format_fen(r["amount_paid_fen"]),
        "payout": format_fen(r["payout_fen"]), "station": r["station"], "status": r["status"],
        "status_label": r["status_label"], "phone": r["phone_masked"], "city": r["city"] or "—",
        "flags": str(r["flags"]), "flagged": "1" if r["flags"] else "", "created": _t(r["created_at"]),
        "sla": _age(r["sla"]["minutes_left"], r["sla"]["overdue"]), "overdue": "1" if r["sla"]["overdue"] else "",
        "leased_by": r["leased_by"] or "",
    }


def _conf(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def history_line(h: dict[str, Any]) -> str:
    """One line of 处理记录: when, who, what (Chinese), the status it left (Chinese), why."""
    reason = reason_label(h["reason"])
    return (f"{_t(h['at'])} {h['by']} {EVENT_ACTIONS.get(h['action'], h['action'])} → "
            f"{STATUSES.get(h['status'], h['status'])}{('：' + reason) if reason else ''}")


def claim_detail(d: dict[str, Any]) -> tuple[dict[str, str], list[dict[str, str]], list[str], list[str], list[str],
                                              list[str]]:
    """(the claim, its images with OCR, mismatch lines, duplicate lines, history lines, the user's claims)."""
    head = {
        "id": str(d["id"]), "category": d["category_label"], "amount": format_fen(d["amount_paid_fen"]),
        "payout": format_fen(d["payout_fen"]), "station": d["station"], "status": d["status"],
        "status_label": d["status_label"], "phone": d["phone_masked"], "city": d["city"] or "—",
        "method": PAYOUT_METHODS[d["payout_method"]], "account": d["account_masked"], "name": d["real_name_masked"],
        "created": _t(d["created_at"]), "reason": reason_label(d.get("reason")), "four_eyes": "1" if d["four_eyes"] else "",
        "reviewer": d.get("reviewer") or "", "items": "、".join(MAINTENANCE_ITEMS.get(i, i) for i in d.get("items") or []) or "—",
        "sla": _age(d["sla"]["minutes_left"], d["sla"]["overdue"]),
    }
    images = []
    for i in d["images"]:
        o = i["ocr"]
        images.append({
            "n": str(i["n"]), "url": i["url"], "ocr_status": OCR_STATUSES.get(o["status"], o["status"]),
            "pending": "1" if o["status"] == "pending" else "",
            "amount": format_fen(o["amount_fen"]) if o["amount_fen"] is not None else "—",
            "amount_conf": _conf(o["confidences"]["amount"]), "paid_at": _t(o["paid_at"]),
            "merchant": o["merchant"] or "—", "txn": o["transaction_no"] or "—",
            "amount_differs": "1" if o["amount_fen"] is not None and o["amount_fen"] != d["amount_paid_fen"] else "",
        })
    mismatches = [m["message"] for m in d["mismatches"]]
    duplicates = [x["message"] for x in d["duplicates"]]
    if any(i["pending"] for i in images):  # the image and transaction-number checks come with the OCR job
        duplicates.append("凭证识别中：图片查重与交易单号查重完成后显示在这里")
    history = [history_line(h) for h in d["history"]]
    others = [f"#{u['id']} {format_fen(u['amount_paid_fen'])} {STATUSES.get(u['status'], u['status'])} {_t(u['created_at'])}"
              for u in d["user_claims"]]
    return head, images, mismatches, duplicates, history, others
