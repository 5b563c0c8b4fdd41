"""券库存 page state: stock summary, code import, code list, the expiry run.

Small states, one per part of the page one per part of the page (DESIGN.md §2.8: a page of rows each, never a table):
- :class:`StockState` — the summary per product and the "执行过期处理" run; its ``load`` is the page's
  ``on_load`` and chains the others;
- :class:`StockImportState` — the import form; the upload streams to a private staging file in a
  background task (``rx.upload_files_chunk``), so a big file neither sits in memory nor blocks the
  event loop, and the import (the upload gate :mod:`gc_admin.core.uploads`, then the parse) runs in a
  worker thread; it keeps running if the clerk navigates away;
- :class:`StockCodesState` — the filtered, paged code list (codes and phones masked by the service);
- :class:`~gc_admin.coupons.catalog.state.ProductsState` (券种管理) lives with the catalogue.

Every handler that reads or changes data is :func:`~gc_admin.ui.auth.guarded` by the stock section
(the page gate is not the security boundary); the setters of form fields that read and change no
data are ``@public``. The expiry run is open to every role of the stock section (it is also the daily
job) and is audited with the staff member who ran it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any, ClassVar

import reflex as rx

from gc_admin.core.clock import SHANGHAI, UTC, fmt_local
from gc_admin.core.errors import DomainError
from gc_admin.core.money import format_fen
from gc_admin.core.params import DAY_RANGE, parse_day, parse_id
from gc_admin.core.principal import Actor
from gc_admin.core.uploads import limits as upload_limits
from gc_admin.core.uploads import too_large
from gc_admin.coupons.catalog.service import code_products
from gc_admin.coupons.catalog.state import ON_PRODUCT_CREATED, ProductsState
from gc_admin.coupons.staging import staging_file
from gc_admin.coupons.stock import display, flows, service
from gc_admin.coupons.stock.service import SUMMARY_STATE_LABELS
from gc_admin.ui.auth import current_principal, guarded, public, run_db
from gc_admin.ui.paging import PAGE_SIZE, PagedMixin

log = logging.getLogger(__name__)

SECTION = "stock"
INVALID_SHOWN = 20
UPLOAD_ID = "codes-file"


def local_day(value: str, *, end: bool = False) -> dt.datetime | None:
    """``2026-11-21`` (Asia/Shanghai) -> that midnight (or the next one) in UTC; junk or out of range -> None."""
    d = parse_day(value)
    if d is None:
        return None
    if end:
        d += dt.timedelta(days=1)
    return dt.datetime(d.year, d.month, d.day, tzinfo=SHANGHAI).astimezone(UTC)


def _n(value: int | None) -> str:
    return f"{value or 0:,}"


# --- summary and expiry ----------------------------------------------------------------------

class StockState(rx.State):
    tables: list[display.SummaryTable] = []
    stats: dict[str, str] = {}
    expiry_busy: bool = False
    expiry_done: bool = False
    expiry: dict[str, str] = {}
    expiry_rows: list[dict[str, str]] = []

    def _on_denied(self) -> None:
        self.tables, self.stats = [], {}

    async def _refresh(self) -> None:
        rows = await run_db(service.stock_summary)
        self.tables = display.summary_tables(rows)
        t = display.summary_totals(rows)
        self.stats = {
            "in_stock": _n(t["in_stock"]), "in_stock_face": format_fen(t["in_stock_face_fen"]),
            "lt60": _n(t["in_stock_lt60"]), "discarded": _n(t["discarded"]),
            "discarded_cost": format_fen(t["discarded_cost_fen"]),
        }

    @rx.event
    @guarded(SECTION)
    async def load(self):
        await self._refresh()
        return [StockImportState.load, StockCodesState.load, ProductsState.load]

    @rx.event
    @guarded(SECTION)
    async def refresh(self):
        await self._refresh()

    @rx.event
    @guarded(SECTION)
    async def run_expiry(self):
        p = current_principal()
        self.expiry_busy = True
        yield
        try:
            result = await run_db(lambda s: service.run_expiry(s, actor=p.actor()))
        except DomainError as exc:
            self.expiry_busy = False
            yield rx.toast.error(exc.message)
            return
        self.expiry_busy = False
        self.expiry_done = True
        self.expiry = {
            "discarded": _n(result.discarded), "discarded_face": format_fen(result.discarded_face_fen),
            "discarded_cost": format_fen(result.discarded_cost_fen), "expired": _n(result.expired_coupons),
            "expired_cost": format_fen(result.expired_cost_fen),
            "loss": format_fen(result.discarded_cost_fen + result.expired_cost_fen),
        }
        self.expiry_rows = [
            {"product": f"{r['product_name']}（{r['product_code']}）", "discarded": _n(r["discarded"]),
             "discarded_cost": format_fen(r["discarded_cost_fen"]), "expired": _n(r["expired_coupons"]),
             "expired_cost": format_fen(r["expired_cost_fen"])}
            for r in result.by_product
        ]
        await self._refresh()
        if result.discarded or result.expired_coupons:
            yield rx.toast.success(f"过期处理完成：弃票 {result.discarded:,} 张，过期券 {result.expired_coupons:,} 张，"
                                   f"损失 {format_fen(result.discarded_cost_fen + result.expired_cost_fen)}")
        else:
            yield rx.toast.info("过期处理完成：没有需要处理的券码或券")
        yield StockCodesState.search


# --- import ----------------------------------------------------------------------------------

def _report_view(r: service.ImportReport) -> dict[str, str]:
    return {
        "id": str(r.import_id), "product": r.product_code, "filename": r.filename or "未命名文件",
        "status": service.import_status_label(r.status), "ok": "1" if r.status == "done" else "",
        "pending": "" if r.final else "1",
        "error": r.error or "", "rows": _n(r.rows), "imported": _n(r.imported), "in_stock": _n(r.in_stock),
        "dup_file": _n(r.duplicate_in_file), "dup_existing": _n(r.duplicate_existing), "invalid": _n(r.invalid_count),
        "discarded": _n(r.discarded_near_expiry), "loss": format_fen(r.discarded_cost_fen),
        "face": format_fen(r.face_fen_total), "cost": format_fen(r.cost_fen_total), "at": fmt_local(r.created_at),
    }


def _import_file(path: str, *, actor: Actor, product_code: str, filename: str, expires_at: dt.date | None,
                 batch_ref: str) -> service.ImportReport:
    """Worker thread: read the staged file and import it (:func:`flows.import_file`: the ``coupons.import``
    task, waited for; a refused file is put on record in a unit of work of its own)."""
    with open(path, "rb") as fh:
        data = fh.read()
    return flows.import_file(actor=actor, product_code=product_code, data=data, filename=filename,
                             expires_at=expires_at, batch_ref=batch_ref or None)


class StockImportState(PagedMixin, rx.State):
    SECTION: ClassVar[str] = SECTION  # the paging handlers check it (ui.paging)
    products: list[dict[str, str]] = []
    product_code: str = ""
    expiry_date: str = ""  # YYYY-MM-DD: for files without an expiry column
    batch_ref: str = ""
    busy: bool = False
    phase: str = ""  # 上传中 | 导入中
    upload_pct: int = 0
    error: str = ""
    report: dict[str, str] = {}
    report_invalid: list[dict[str, str]] = []

    def _on_denied(self) -> None:
        self.rows, self.total, self.products = [], 0, []

    @rx.event
    @public
    def set_product(self, value: str):
        self.product_code = value

    @rx.event
    @public
    def set_expiry_date(self, value: str):
        self.expiry_date = value[:10]

    @rx.event
    @public
    def set_batch_ref(self, value: str):
        self.batch_ref = value[:64]

    @rx.event
    @public
    def on_progress(self, prog: dict[str, Any]):
        try:
            self.upload_pct = max(0, min(100, int(float(prog.get("progress", 0)) * 100)))
        except (TypeError, ValueError, OverflowError):  # a hand-made event: "abc", NaN, 1e308
            pass

    async def _reload(self):
        def _work(s):
            return code_products(s), service.list_imports(s, offset=self._offset(), limit=PAGE_SIZE)

        products, page = await run_db(_work)
        self.products = [{"code": p.code, "name": f"{p.name}（{p.code}）"} for p in products]
        names = {p.code: p.name for p in products}
        self.total = page.total
        self.rows = [{**_report_view(r), "product_name": names.get(r.product_code, r.product_code)} for r in page.rows]

    def _check_form(self) -> tuple[str, dt.date | None] | str:
        """(product code, expiry date) or a Chinese message for the form."""
        if not self.product_code:
            return "请选择要导入的券种"
        if self.product_code not in {p["code"] for p in self.products}:
            return "只能向第三方兑换码类券种导入券码"
        expiry: dt.date | None = None
        if self.expiry_date:
            try:
                expiry = dt.date.fromisoformat(self.expiry_date)
            except ValueError:
                return "整批有效期格式不正确"
            if parse_day(self.expiry_date) is None:
                return f"整批有效期不正确：{DAY_RANGE}"
        return self.product_code, expiry

    @rx.event(background=True)
    @guarded(SECTION, background=True)  # checked inside ``async with self``: a refused upload is not read
    async def import_file(self, chunk_iter: rx.UploadChunkIterator):
        """Stream the upload to a staging file (≤ the upload cap), then import it off the event loop."""
        p = current_principal()
        refusal: Any = None
        async with self:
            checked = self._check_form()
            if isinstance(checked, str):
                self.error = checked
                refusal = rx.toast.error(checked)
            elif self.busy:
                refusal = rx.toast.warning("上一个文件还在导入，请稍候")
            else:
                product_code, expiry = checked
                batch_ref = self.batch_ref.strip()
                self.busy, self.phase, self.error = True, "上传中", ""
                self.report, self.report_invalid = {}, []
        if refusal is not None:
            yield refusal
            return
        token, path = staging_file("codes")
        size, filename, too_big, cap = 0, "", False, upload_limits().max_bytes
        try:
            try:
                with open(path, "wb") as fh:
                    async for chunk in chunk_iter:  # drain it all, even past the limit, so the upload ends cleanly
                        filename = filename or chunk.filename
                        size = max(size, chunk.offset + len(chunk.data))
                        if size > cap:
                            too_big = True
                            continue
                        fh.seek(chunk.offset)
                        fh.write(chunk.data)
            except Exception:  # the browser went away mid-upload, or the stream broke
                log.warning("code import upload interrupted", exc_info=True)
                async with self:
                    self.busy, self.phase, self.error, self.upload_pct = False, "", "上传中断，未导入任何券码，请重新上传", 0
                yield rx.toast.error("上传中断，未导入任何券码，请重新上传")
                return
            if too_big or not filename:
                message = too_large().message if too_big else "请选择要导入的文件"
                async with self:
                    self.busy, self.phase, self.error, self.upload_pct = False, "", message, 0
                yield rx.toast.error(message)
                return
            async with self:
                self.phase, self.upload_pct = "导入中", 100
            try:
                report = await asyncio.to_thread(_import_file, str(path), actor=p.actor(), product_code=product_code,
                                                 filename=filename.rsplit("/", 1)[-1], expires_at=expiry,
                                                 batch_ref=batch_ref)
            except Exception as exc:  # DomainError: the file or form is refused; anything else: our fault
                message = exc.message if isinstance(exc, DomainError) else "导入出错，未导入任何券码，请稍后重试或联系管理员"
                if not isinstance(exc, DomainError):
                    log.exception("code import failed")
                async with self:
                    self.busy, self.phase, self.error, self.upload_pct = False, "", message, 0
                    await self._reload()
                yield rx.toast.error(f"导入失败：{message}")
                yield rx.clear_selected_files(UPLOAD_ID)
                return
        finally:
            path.unlink(missing_ok=True)
        if not report.final:  # the task did not finish within GC_TASKS_WAIT_SECONDS: it goes on in the background
            async with self:
                self.busy, self.phase, self.upload_pct = False, "", 0
                self.page = 1
                await self._reload()
            yield rx.clear_selected_files(UPLOAD_ID)
            yield rx.toast.info(f"文件已在后台{service.import_status_label(report.status)}，完成后在导入记录中查看报告")
            return
        async with self:
            self.busy, self.phase, self.upload_pct = False, "", 0
            self.report = _report_view(report)
            self.report_invalid = [{"row": str(i["row"]), "reason": str(i["reason"])} for i in report.invalid[:INVALID_SHOWN]]
            self.page = 1
            await self._reload()
        yield rx.clear_selected_files(UPLOAD_ID)
        yield rx.toast.success(f"导入完成：新增 {report.imported:,} 张（其中弃票 {report.discarded_near_expiry:,} 张），"
                               f"无效 {report.invalid_count:,} 行")
        yield StockState.refresh
        yield StockCodesState.search

    @rx.event
    @guarded(SECTION)
    async def download_report(self, import_id: str):
        try:
            iid = parse_id(import_id, what="导入记录")
            data = await run_db(lambda s: service.import_report_csv(service.get_import(s, import_id=iid)))
        except (DomainError, ValueError) as exc:
            return rx.toast.error(getattr(exc, "message", "导入记录不存在"))
        return rx.download(data=data, filename=f"import-{int(import_id)}-report.csv", mime_type="text/csv")


# --- code list -------------------------------------------------------------------------------

class StockCodesState(PagedMixin, rx.State):
    SECTION: ClassVar[str] = SECTION  # the paging handlers check it (ui.paging)
    SORT_KEYS: ClassVar = service.STOCK_CODE_SORT_KEYS
    products: list[dict[str, str]] = []
    product: str = "all"
    state: str = "all"
    exp_from: str = ""
    exp_to: str = ""
    code_q: str = ""
    error: str = ""

    def _on_denied(self) -> None:
        self.rows, self.total, self.products = [], 0, []

    @rx.event
    @guarded(SECTION)
    async def set_product(self, value: str):
        self.product, self.page = value, 1
        await self._reload()

    @rx.event
    @guarded(SECTION)
    async def set_state(self, value: str):
        self.state, self.page = value, 1
        await self._reload()

    @rx.event
    @public
    def set_exp_from(self, value: str):
        self.exp_from = value[:10]

    @rx.event
    @public
    def set_exp_to(self, value: str):
        self.exp_to = value[:10]

    @rx.event
    @public
    def set_code_q(self, value: str):
        self.code_q = value.strip()[:128]

    @rx.event
    @guarded(SECTION)
    async def clear_filters(self):
        self.product, self.state, self.exp_from, self.exp_to, self.code_q, self.page = "all", "all", "", "", "", 1
        await self._reload()

    def _filters(self) -> dict[str, Any]:
        return {"product_code": None if self.product == "all" else self.product or None,
                "state": None if self.state == "all" else self.state or None,
                "expires_after": local_day(self.exp_from), "expires_before": local_day(self.exp_to, end=True),
                "code": self.code_q or None, "sort": self._sort()}

    async def _reload(self):
        filters = self._filters()

        def _work(s):
            return code_products(s), service.list_stock_codes(s, **filters, offset=self._offset(), limit=PAGE_SIZE)

        try:
            products, page = await run_db(_work)
        except DomainError as exc:
            self.rows, self.total, self.error = [], 0, exc.message
            return
        self.error = ""
        self.products = [{"code": p.code, "name": p.name} for p in products]
        self.total = page.total
        self.rows = [
            {
                "id": str(r.id), "code": r.code_masked, "product": r.product_name,
                "state": SUMMARY_STATE_LABELS.get(r.state, r.state), "state_key": r.state,
                "expires": fmt_local(r.expires_at), "face": format_fen(r.face_fen), "cost": format_fen(r.cost_fen),
                "import": f"#{r.import_id}" if r.import_id else "—", "batch": r.batch_ref or "—",
                "phone": r.phone_masked or "—",
            }
            for r in page.rows
        ]

    @rx.event
    @guarded(SECTION)
    async def export(self):
        """Every code matching the filters (not just this page) as Excel; codes and phones stay masked."""
        async for event in self._export("stock_codes", self._filters()):
            yield event


# A new product is offered by the import form and the code list's filter at once.
ON_PRODUCT_CREATED.extend([StockImportState.load, StockCodesState.load])
