"""Pure formatting for the 券库存 page: the stock summary pivoted into one small table per product,
and its headline numbers. No database: the rows come from :func:`gc_admin.coupons.stock.service.stock_summary`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gc_admin.core.money import format_fen
from gc_admin.coupons.stock.service import SUMMARY_STATE_LABELS, SUMMARY_STATES, SummaryRow

BUCKET_KEYS = {"lt30": "lt30", "30to60": "m30_60", "gt60": "gt60"}


@dataclasses.dataclass
class SummaryTable:
    """One product's stock as the page shows it: a row per state, then 合计. Values are display text."""

    product_code: str = ""
    product_name: str = ""
    rows: list[dict[str, str]] = dataclasses.field(default_factory=list)


def summary_tables(rows: list[SummaryRow]) -> list[SummaryTable]:
    """Pivot :func:`stock_summary` rows: per product, states × (<30 天, 30–60 天, >60 天, 合计, 面值, 成本)."""
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
