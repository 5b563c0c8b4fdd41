"""Reading an uploaded table (CSV in UTF-8 / GBK, or .xlsx) into a header and text rows, after
:func:`gc_admin.core.uploads.check_upload` refused what a parser must not see. Used by the shipment
sheet (orders/suppliers/shipments.py) and the third-party order import (orders/imports/service.py)."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from typing import Any, TypeVar

import polars as pl
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from gc_admin.core.errors import InvalidInput
from gc_admin.core.uploads import UploadRefused, check_upload, read_upload
from gc_admin.db import session_scope

T = TypeVar("T")

MAX_ROWS = 5_000  # rows of one sheet (a shipment sheet, a channel's export)


@dataclasses.dataclass(frozen=True)
class Sheet:
    header: list[str]
    rows: list[list[str]]  # text cells, stripped; row i is worksheet line i + 2

    def column(self, name: str) -> int | None:
        return self.header.index(name) if name in self.header else None


def _decode(data: bytes) -> str:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise InvalidInput("无法识别文件编码：请上传 UTF-8 或 GBK 编码的 CSV，或 Excel（.xlsx）文件", code="FILE_REJECTED")


def read_sheet(data: bytes) -> Sheet:
    """The first worksheet / the CSV: its first row is the header. ``FILE_REJECTED`` (or the upload check's
    own code) when it is unusable as a whole."""
    if not data or not data.strip():
        raise InvalidInput("文件为空", code="FILE_REJECTED")
    try:
        kind = check_upload(data)
    except UploadRefused:
        raise
    if kind == "xls":
        raise InvalidInput("请将 .xls 文件另存为 .xlsx 或 CSV 后再上传", code="FILE_REJECTED")
    try:
        if kind == "xlsx":
            import fastexcel

            frame = fastexcel.read_excel(data).load_sheet(0, header_row=None, dtypes="string").to_polars()
        else:
            text = _decode(data)
            sep = max((",", "\t", ";"), key=lambda s: text.split("\n", 1)[0].count(s))
            frame = pl.read_csv(io.BytesIO(text.encode()), has_header=False, separator=sep, infer_schema=False,
                                truncate_ragged_lines=True, raise_if_empty=False)
    except InvalidInput:
        raise
    except Exception:  # noqa: BLE001 - polars / calamine raise several kinds for malformed files
        raise InvalidInput("文件格式有误，无法读取，请检查后重试", code="FILE_REJECTED") from None
    cells = [["" if v is None else str(v).strip() for v in row] for row in frame.rows()]
    cells = [r for r in cells if any(r)] if cells else []
    if not cells:
        raise InvalidInput("文件中没有数据", code="FILE_REJECTED")
    if len(cells) - 1 > MAX_ROWS:
        raise InvalidInput(f"一次最多导入 {MAX_ROWS} 行，请拆分文件", code="TOO_MANY_ROWS")
    return Sheet(cells[0], cells[1:])


async def sheet_report(file: Any, *, dry_run: bool, preview: Callable[[Session, bytes], T],
                       apply: Callable[..., T], apply_in_unit: bool = True) -> T:
    """An uploaded sheet's route body: read the upload (size-capped), then off the event loop either
    ``preview(session, data)`` in one unit of work (the dry run: writes nothing) or ``apply(session, data,
    filename)`` in one — or, with ``apply_in_unit=False``, ``apply(data, filename)`` on its own (a flow that
    defers a task and waits for it: its units of work are its own). Each returns its per-row report."""
    data = await read_upload(file)
    filename = (getattr(file, "filename", None) or "")[:255]

    def work() -> T:
        if not dry_run and not apply_in_unit:
            return apply(data, filename)
        with session_scope() as s:
            return preview(s, data) if dry_run else apply(s, data, filename)

    return await run_in_threadpool(work)
