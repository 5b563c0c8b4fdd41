"""流水与对账 page state: the ledger (filters, paging, totals by kind, Excel export) and reconciliation
(a WeChat Pay trade bill uploaded or fetched for a day, compared with the ledger; the run history).

Two small states, one per tab (DESIGN.md §2.8). Every handler that reads or changes data is
``@guarded("ledger")``: admin and manager only (the same platform money roles as the staff API's
``/admin/ledger`` and ``/admin/reconciliations``); the setters that only hold what is typed are ``@public``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, ClassVar

import reflex as rx

from gc_admin.core.errors import DomainError
from gc_admin.core.exports import csv_bytes
from gc_admin.core.money import format_fen
from gc_admin.core.params import DAY_RANGE, check_day, parse_id
from gc_admin.core.uploads import read_upload
from gc_admin.payments import display, ledger, reconcile
from gc_admin.ui.auth import current_principal, guarded, public, run_db
from gc_admin.ui.paging import PAGE_SIZE, DateRangeMixin, PagedMixin

SECTION = "ledger"
UPLOAD_ID = "bill-file"
HISTORY_SHOWN = 20


class LedgerState(PagedMixin, DateRangeMixin, rx.State):
    SECTION: ClassVar[str] = SECTION  # the paging handlers check it (ui.paging)
    SORT_KEYS: ClassVar = ledger.LEDGER_SORT_KEYS
    kind: str = "all"
    provider: str = "all"
    order_no: str = ""
    totals: list[dict[str, str]] = []
    net: str = "¥0.00"
    error: str = ""
    loaded: bool = False

    def _on_denied(self) -> None:
        self.rows, self.total, self.totals = [], 0, []

    @rx.event
    @guarded(SECTION)
    async def set_kind(self, value: str):
        self.kind, self.page = value, 1
        return await self._reload()

    @rx.event
    @guarded(SECTION)
    async def set_provider(self, value: str):
        self.provider, self.page = value, 1
        return await self._reload()

    @rx.event
    @public
    def set_order_no(self, value: str):
        self.order_no = value.strip()[:32]

    @rx.event
    @guarded(SECTION)
    async def clear_filters(self):
        self.kind, self.provider, self.order_no, self.date_from, self.date_to, self.page = "all", "all", "", "", "", 1
        return await self._reload()

    def _filters(self) -> ledger.LedgerFilter:
        return ledger.ledger_filter(kind=self.kind, provider=self.provider, order_no=self.order_no,
                                    date_from=self.date_from, date_to=self.date_to)

    async def _reload(self):
        """The ledger page and its totals (called by guarded handlers only)."""
        try:
            f = self._filters()
        except ValueError as exc:
            self.error = str(exc)
            return None

        sort = self._sort()

        def _work(s):
            return (ledger.list_ledger(s, filters=f, sort=sort, offset=self._offset(), limit=PAGE_SIZE),
                    ledger.ledger_totals(s, filters=f))

        try:
            page, totals = await run_db(_work)
        except DomainError as exc:
            self.error = exc.message
            return None
        self.error, self.loaded = "", True
        self.total, self.net = page.total, format_fen(page.net_fen)
        self.rows = [display.ledger_row(r) for r in page.rows]
        self.totals = [{"kind": t.kind, "label": t.label, "count": f"{t.count:,}", "net": format_fen(t.net_fen),
                        "sign": "neg" if t.net_fen < 0 else "pos"} for t in totals]
        return None

    @rx.event
    @guarded(SECTION)
    async def load(self):
        refused = await self._reload()
        if refused is not None or not self.loaded:
            return refused
        return ReconcileState.load

    @rx.event
    @guarded(SECTION)
    async def export(self):
        """Every ledger row matching the filters (up to the service's export limit) as Excel."""
        try:
            self._filters()
        except ValueError as exc:
            self.error = str(exc)
            return
        filters = {"kind": self.kind, "provider": self.provider, "order_no": self.order_no,
                   "date_from": self.date_from, "date_to": self.date_to, "sort": self._sort()}
        async for event in self._export("ledger", filters):
            yield event


class ReconcileState(rx.State):
    bill_date: str = ""  # YYYY-MM-DD: the day to fetch, or the date of an empty uploaded bill
    busy: bool = False
    busy_text: str = ""
    error: str = ""
    result: dict[str, str] = {}
    mismatches: list[dict[str, str]] = []
    history: list[dict[str, str]] = []

    def _on_denied(self) -> None:
        self.history = []

    @rx.event
    @public
    def set_bill_date(self, value: str):
        self.bill_date = value[:10]

    def _day(self) -> dt.date | None | str:
        if not self.bill_date:
            return None
        try:
            day = dt.date.fromisoformat(self.bill_date)
        except ValueError:
            return "账单日期格式不正确，应为 YYYY-MM-DD"
        try:
            return check_day(day)
        except ValueError:
            return f"账单日期不正确：{DAY_RANGE}"

    async def _reload(self):
        """The run history (called by guarded handlers only)."""
        runs = await run_db(lambda s: reconcile.list_reconciliations(s, limit=HISTORY_SHOWN))
        self.history = [display.run_view(r) for r in runs]
        return None

    @rx.event
    @guarded(SECTION)
    async def load(self):
        return await self._reload()

    def _show(self, result: reconcile.ReconcileResult) -> None:
        self.result = display.run_view(result)
        self.mismatches = display.mismatch_rows(result)

    def _done_toast(self, result: reconcile.ReconcileResult) -> Any:
        if result.ok:
            return rx.toast.success(f"对账完成（{result.bill_date.isoformat()}）：{result.matched:,} 笔全部一致")
        return rx.toast.warning(f"对账完成（{result.bill_date.isoformat()}）：一致 {result.matched:,} 笔，"
                                f"差异 {len(result.mismatches):,} 笔，请核查")

    @rx.event
    @guarded(SECTION)
    async def upload_bill(self, files: list[rx.UploadFile]):
        """A trade bill CSV as WeChat Pay serves it: compared with the ledger of its day."""
        p = current_principal()
        if not files:
            return
        day = self._day()
        if isinstance(day, str):
            self.error = day
            yield rx.clear_selected_files(UPLOAD_ID)
            return
        f = files[0]
        try:
            data = await read_upload(f)  # stops at the upload cap (UPLOAD_TOO_LARGE)
        except DomainError as exc:
            self.error = exc.message
            yield rx.clear_selected_files(UPLOAD_ID)
            return
        name = (f.name or "trade-bill.csv").rsplit("/", 1)[-1]
        self.busy, self.busy_text, self.error = True, f"正在对账：{name}", ""
        yield
        try:
            result = await run_db(lambda s: reconcile.reconcile_trade_bill(s, data=data, actor=p.actor(),
                                                                          bill_date=day, filename=name))
        except DomainError as exc:
            self.busy, self.busy_text, self.error = False, "", exc.message
            yield rx.clear_selected_files(UPLOAD_ID)
            yield rx.toast.error(f"对账失败：{exc.message}")
            return
        self.busy, self.busy_text = False, ""
        self._show(result)
        await self._reload()
        yield rx.clear_selected_files(UPLOAD_ID)
        yield self._done_toast(result)

    @rx.event
    @guarded(SECTION)
    async def fetch_bill(self):
        """Download the chosen day's trade bill from WeChat Pay and reconcile it."""
        p = current_principal()
        day = self._day()
        if day is None or isinstance(day, str):
            self.error = day or "请选择账单日期"
            return
        self.busy, self.busy_text, self.error = True, f"正在从微信支付下载 {day.isoformat()} 的交易账单并对账", ""
        yield
        try:
            result = await run_db(lambda s: reconcile.fetch_and_reconcile(s, bill_date=day, actor=p.actor()))
        except DomainError as exc:
            self.busy, self.busy_text, self.error = False, "", exc.message
            yield rx.toast.error(f"对账失败：{exc.message}")
            return
        self.busy, self.busy_text = False, ""
        self._show(result)
        await self._reload()
        yield self._done_toast(result)

    @rx.event
    @guarded(SECTION)
    async def open_run(self, run_id: str):
        try:
            result = await run_db(lambda s: reconcile.get_reconciliation(s, run_id=parse_id(run_id, what="对账记录")))
        except (DomainError, ValueError) as exc:
            return rx.toast.error(getattr(exc, "message", "对账记录不存在"))
        self._show(result)
        return None

    @rx.event
    @guarded(SECTION)
    async def download_mismatches(self):
        """The shown run's mismatches as CSV (UTF-8 with BOM, opens in Excel)."""
        run_id = self.result.get("id", "")
        if not run_id:
            return rx.toast.error("请先选择一次对账")
        try:
            result = await run_db(lambda s: reconcile.get_reconciliation(s, run_id=int(run_id)))
        except (DomainError, ValueError) as exc:
            return rx.toast.error(getattr(exc, "message", "对账记录不存在"))
        data = await asyncio.to_thread(_mismatch_csv, result)
        return rx.download(data=data, filename=f"对账差异-{result.bill_date:%Y%m%d}-{result.run_id}.csv",
                           mime_type="text/csv")


def _mismatch_csv(result: reconcile.ReconcileResult) -> bytes:
    rows: list[list[Any]] = [["差异类型", "类型", "商户单号", "账单金额（分）", "流水金额（分）", "微信单号"]]
    rows += [[reconcile.KINDS.get(m.kind, m.kind), display.ENTRY_LABELS.get(m.entry, m.entry), m.key,
              "" if m.bill_fen is None else m.bill_fen, "" if m.ledger_fen is None else m.ledger_fen,
              m.provider_ref or ""] for m in result.mismatches]
    return csv_bytes(rows)  # neutralised: the keys come from an uploaded bill
