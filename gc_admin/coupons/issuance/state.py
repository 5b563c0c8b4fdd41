"""发券 page state: batch issuance to pasted or uploaded phones, with a preview and a confirmation.

Flow: 预览 reads the phones (pasted text, or the uploaded file's stash), asks
:func:`service.preview_issuance` what would happen, keeps the phone list in a private staging file
(the state holds only its token: DESIGN.md §2.8) and opens the confirmation dialog; 确认发放 runs
:func:`flows.issue` (the ``coupons.issue_batch`` task, waited for) in a background event — the issuance goes on if the clerk navigates
away, and its result and the batch history are there when they come back. The batch id is the
idempotency key: issuing the same id again returns the first result (``replayed``).

Who may issue: the roles of the ``issuance`` section. An insurer's staff act for their account's
programme (``Principal.programme``): the service offers, previews, issues and lists only that
programme's insurer-funded products and own batches — the same rule as the admin and partner
APIs — and an insurer account without a programme gets a refusal, not everyone's batches.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
from typing import Any, ClassVar

import reflex as rx

from gc_admin.core.clock import SHANGHAI, fmt_local, utcnow
from gc_admin.core.errors import DomainError, NotFound
from gc_admin.core.money import format_fen
from gc_admin.core.params import parse_id
from gc_admin.core.phone import mask_phone
from gc_admin.core.principal import Principal
from gc_admin.core.uploads import read_upload
from gc_admin.coupons.catalog.service import get_product_by_code, issuable_products
from gc_admin.coupons.issuance import files as phone_files
from gc_admin.coupons.issuance import flows, service
from gc_admin.coupons.models import ISSUE_SOURCES, KINDS, REDEMPTION_CODE, ROW_STATUSES
from gc_admin.coupons.staging import discard_staged
from gc_admin.db import session_scope
from gc_admin.ui.auth import current_principal, guarded, public, run_db
from gc_admin.ui.paging import PAGE_SIZE, PagedMixin

log = logging.getLogger(__name__)

SECTION = "issuance"
RESULT_ROWS_SHOWN = 200
MAX_PER_PHONE = 10
UPLOAD_ID = "phones-file"


def new_batch_id() -> str:
    """``B20261122-7KQ2``: today's date (Asia/Shanghai) and four random letters/digits."""
    alphabet = string.ascii_uppercase + string.digits
    return f"B{utcnow().astimezone(SHANGHAI):%Y%m%d}-" + "".join(secrets.choice(alphabet) for _ in range(4))


def _result_rows(result: service.IssuanceResult) -> list[dict[str, str]]:
    return [
        {"row": str(row_no), "phone": mask_phone(phone) or "—", "status": status,
         "label": ROW_STATUSES.get(status, status), "reason": reason or "",
         "coupons": str(len(ids.split(","))) if ids else "0"}
        for row_no, phone, status, reason, ids in result.frame.head(RESULT_ROWS_SHOWN).iter_rows()
    ]


def _result_view(result: service.IssuanceResult, product_name: str) -> dict[str, str]:
    return {
        "id": str(result.issuance_id), "batch_id": result.batch_id, "product": product_name,
        "requested": f"{result.requested:,}", "issued": f"{result.issued:,}", "failed": f"{result.failed:,}",
        "coupons": f"{result.coupons:,}", "per_phone": str(result.per_phone), "at": fmt_local(result.created_at),
        "more": f"{result.requested - RESULT_ROWS_SHOWN:,}" if result.requested > RESULT_ROWS_SHOWN else "",
    }


def _issue(token: str, *, p: Principal, product_code: str, batch_id: str, per_phone: int) -> tuple[Any, str]:
    """Worker thread: the ``coupons.issue_batch`` task for the whole batch (one unit of work), waited for."""
    phones = phone_files.load_phones(token)
    result = flows.issue(actor=p.actor(), source="staff", batch_id=batch_id, product_code=product_code,
                         phones=phones, per_phone=per_phone, programme_code=p.programme())
    with session_scope() as session:
        return result, get_product_by_code(session, result.product_code).name


class IssuanceState(PagedMixin, rx.State):
    SECTION: ClassVar[str] = SECTION  # the paging handlers check it (ui.paging)
    SORT_KEYS: ClassVar = service.ISSUANCE_SORT_KEYS
    products: list[dict[str, str]] = []
    product_code: str = ""
    per_phone: str = "1"
    batch_id: str = ""
    file_token: str = ""
    file_name: str = ""
    file_count: int = 0
    error: str = ""
    # preview / confirmation
    preview_open: bool = False
    preview: dict[str, str] = {}
    preview_problems: list[dict[str, str]] = []  # the rows that will not be issued: 行号, 内容, 原因
    pending_token: str = ""
    # issuing and result
    issuing: bool = False
    issuing_text: str = ""
    result: dict[str, str] = {}
    result_rows: list[dict[str, str]] = []
    replayed: bool = False

    def _on_denied(self) -> None:
        self.rows, self.total, self.products = [], 0, []

    # --- form --------------------------------------------------------------------------------

    @rx.event
    @public
    def set_product(self, value: str):
        self.product_code = value
        self.error = ""

    @rx.event
    @public
    def set_per_phone(self, value: str):
        # ASCII and short: int() raises on "²" (a digit to str.isdigit) and on 5,000 digits
        ok = isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 3
        self.per_phone = value if ok and 1 <= int(value) <= MAX_PER_PHONE else "1"

    @rx.event
    @public
    def set_batch_id(self, value: str):
        self.batch_id = value.strip()[:64]

    @rx.event
    @guarded(SECTION)  # it deletes the staged phone file
    async def new_batch(self):
        """Start over: a fresh batch id, no file, no result."""
        if self.issuing:
            return rx.toast.warning("当前批次仍在发放中，请稍候")
        self.batch_id = new_batch_id()
        self._drop_file()
        self.result, self.result_rows, self.replayed, self.error = {}, [], False, ""
        return rx.set_value("phones-text", "")

    def _drop_file(self) -> None:
        if self.file_token:
            discard_staged("phones", self.file_token, ".txt")
        self.file_token, self.file_name, self.file_count = "", "", 0

    @rx.event
    @guarded(SECTION)  # it deletes the staged phone file
    async def clear_file(self):
        self._drop_file()

    @rx.event
    @guarded(SECTION)
    async def upload_phones(self, files: list[rx.UploadFile]):
        """A CSV / XLSX / TXT of phones: parsed off the event loop and kept in a staging file."""
        if not files:
            return None
        f = files[0]
        name = (f.name or "手机号文件").rsplit("/", 1)[-1]
        try:
            data = await read_upload(f)  # stops at the upload cap (UPLOAD_TOO_LARGE)
            phones = await asyncio.to_thread(phone_files.read_phone_file, data, filename=name)
        except DomainError as exc:
            self.error = exc.message
            return [rx.clear_selected_files(UPLOAD_ID), rx.toast.error(exc.message)]
        self._drop_file()
        self.file_token = await asyncio.to_thread(phone_files.stash_phones, phones)
        self.file_name, self.file_count, self.error = name, len(phones), ""
        return [rx.clear_selected_files(UPLOAD_ID), rx.toast.success(f"已读取 {name}：{len(phones):,} 行")]

    # --- load --------------------------------------------------------------------------------

    async def _reload(self) -> None:
        try:
            programme = current_principal().programme()
        except DomainError as exc:
            self.rows, self.total, self.products, self.error = [], 0, [], exc.message
            return
        sort = self._sort()

        def _work(s):
            products = issuable_products(s, programme_code=programme)
            stock = {x.code: service.issuable_stock(s, product=x) for x in products if x.kind == REDEMPTION_CODE}
            return products, stock, service.list_issuances(s, programme_code=programme, sort=sort, offset=self._offset(),
                                                           limit=PAGE_SIZE)

        products, stock, (batches, total) = await run_db(_work)
        self.products = [
            {"code": x.code,
             "label": f"{x.name}（{KINDS.get(x.kind, x.kind)} · {format_fen(x.face_fen)}"
                      + (f" · 可发库存 {stock[x.code]:,}" if x.code in stock else "") + "）"}
            for x in products
        ]
        self.total = total
        self.rows = [
            {"id": str(b.issuance_id), "at": fmt_local(b.created_at), "batch_id": b.batch_id,
             "source": ISSUE_SOURCES.get(b.source, b.source), "product": b.product_name, "per_phone": str(b.per_phone),
             "requested": f"{b.requested:,}", "issued": f"{b.issued:,}", "failed": f"{b.failed:,}",
             "coupons": f"{b.coupons:,}", "actor": b.actor_name or "—",
             "status": service.batch_status_label(b.status), "pending": "" if b.status == "done" else "1",
             "broken": "1" if b.status == "failed" else ""}
            for b in batches
        ]

    @rx.event
    @guarded(SECTION)
    async def load(self):
        if not self.batch_id:
            self.batch_id = new_batch_id()
        await self._reload()

    @rx.event
    @guarded(SECTION)
    async def export(self):
        """Every batch this staff member may see (not just this page) as Excel, in the list's order."""
        try:
            current_principal().programme()  # (the task applies it again, from the signed-in member)
        except DomainError as exc:
            yield rx.toast.error(exc.message)
            return
        async for event in self._export("issuances", {"sort": self._sort()}):
            yield event

    # --- preview -----------------------------------------------------------------------------

    @rx.event
    @guarded(SECTION)
    async def preview_batch(self, form: dict[str, Any]):
        p = current_principal()
        if self.issuing:
            return rx.toast.warning("当前批次仍在发放中，请等待完成后再发下一批")
        if not self.product_code:
            self.error = "请选择要发放的券种"
            return None
        if not self.batch_id:
            self.error = "请填写批次号"
            return None
        per_phone = int(self.per_phone) if self.per_phone.isdigit() else 1
        text = str(form.get("phones", "") or "")
        file_token = self.file_token
        product_code, batch_id = self.product_code, self.batch_id

        def _prepare(s):
            programme = p.programme()
            phones = phone_files.load_phones(file_token) if file_token else phone_files.split_phones(text)
            if not phones:
                raise NotFound("请粘贴手机号，或上传手机号文件", code="NO_PHONES")
            preview = service.preview_issuance(s, product_code=product_code, phones=phones, per_phone=per_phone,
                                               programme_code=programme)
            product = get_product_by_code(s, preview.product_code)
            earlier = service.find_staff_batch(s, batch_id=batch_id, programme_code=programme)
            token = file_token or phone_files.stash_phones(phones)
            return product, preview, earlier, token

        try:
            product, pv, earlier, token = await run_db(_prepare)
        except DomainError as exc:
            self.error = exc.message
            return None
        if self.pending_token and self.pending_token not in (token, self.file_token):
            discard_staged("phones", self.pending_token, ".txt")
        self.pending_token = token
        self.error = ""
        stock_line = ("该券种无需库存" if pv.stock_after is None
                      else f"剩余库存 {pv.stock_after:,}")
        self.preview = {
            "product": pv.product_name, "product_code": pv.product_code, "batch_id": batch_id,
            "requested": f"{pv.requested:,}", "valid": f"{pv.valid:,}", "would_issue": f"{pv.would_issue:,}",
            "coupons": f"{pv.coupons:,}", "invalid": f"{pv.invalid_phone:,}", "duplicate": f"{pv.duplicate:,}",
            "no_stock": f"{pv.no_stock:,}", "per_phone": str(pv.per_phone),
            "stock": "—" if pv.stock_available is None else f"{pv.stock_available:,}",
            "headline": f"将向 {pv.would_issue:,} 个手机号发放 {pv.coupons:,} 张券，{stock_line}",
            "nothing": "1" if pv.would_issue == 0 else "",
            "replay": "1" if earlier is not None else "",
            "face": format_fen(product.face_fen * pv.coupons),
            "problems_more": (f"{pv.invalid_phone + pv.duplicate - len(pv.problems):,}"
                              if pv.invalid_phone + pv.duplicate > len(pv.problems) else ""),
        }
        self.preview_problems = [
            {"row": str(row_no), "text": (text if len(text) <= 40 else text[:40] + "…") or "（空）",
             "label": ROW_STATUSES.get(status, status), "reason": reason, "status": status}
            for row_no, text, status, reason in pv.problems
        ]
        self.preview_open = True
        return None

    @rx.event
    @public
    def set_preview_open(self, value: bool):
        self.preview_open = value

    # --- issue -------------------------------------------------------------------------------

    @rx.event(background=True)
    @guarded(SECTION, background=True)  # checked inside ``async with self``
    async def confirm_issue(self):
        """Issue the previewed batch in a worker thread; the page may be left meanwhile."""
        p = current_principal()
        refusal: Any = None
        async with self:
            if self.issuing:
                refusal = rx.toast.warning("当前批次仍在发放中")
            elif not self.pending_token or not self.preview:
                refusal = rx.toast.error("请先预览再确认发放")
            else:
                token, product_code = self.pending_token, self.preview.get("product_code", "")
                batch_id, per_phone = self.preview.get("batch_id", ""), int(self.preview.get("per_phone", "1") or 1)
                self.issuing, self.preview_open, self.error = True, False, ""
                self.issuing_text = f"正在发放批次 {batch_id}：{self.preview.get('headline', '')}"
                self.result, self.result_rows, self.replayed = {}, [], False
        if refusal is not None:
            yield refusal
            return
        try:
            result, product_name = await asyncio.to_thread(_issue, token, p=p, product_code=product_code,
                                                           batch_id=batch_id, per_phone=per_phone)
        except Exception as exc:  # DomainError: refused (nothing issued); anything else: rolled back, our fault
            message = exc.message if isinstance(exc, DomainError) else "发放出错，本批次未发放任何券，请稍后重试或联系管理员"
            if not isinstance(exc, DomainError):
                log.exception("batch issuance failed")
            async with self:
                self.issuing, self.issuing_text, self.error = False, "", message
                if isinstance(exc, service.IssuanceCrashed):  # on record: the history shows it 失败
                    self.page = 1
                    await self._reload()
            yield rx.toast.error(f"发放失败：{message}")
            return
        if not result.final:  # not issued within GC_TASKS_WAIT_SECONDS: it goes on in the background
            async with self:
                self.issuing, self.issuing_text = False, ""
                if token != self.file_token:
                    discard_staged("phones", token, ".txt")
                self.pending_token = ""
                self.page = 1
                await self._reload()
            yield rx.toast.info(f"批次 {result.batch_id} 已在后台{service.batch_status_label(result.status)}，"
                                "完成后在发放记录中查看结果")
            return
        async with self:
            self.issuing, self.issuing_text = False, ""
            self.result = _result_view(result, product_name)
            self.result_rows = _result_rows(result)
            self.replayed = result.replayed
            if token != self.file_token:
                discard_staged("phones", token, ".txt")
            self.pending_token = ""
            self.page = 1
            await self._reload()
        if result.replayed:
            yield rx.toast.info(f"批次 {result.batch_id} 已发放过，未重复发券，显示首次结果")
        else:
            yield rx.toast.success(f"发放完成：成功 {result.issued:,} 行 / {result.coupons:,} 张，失败 {result.failed:,} 行")

    # --- downloads ---------------------------------------------------------------------------

    @rx.event
    @guarded(SECTION)
    async def download_result(self, issuance_id: str):
        """Every row of a batch as CSV, phones whole (the clerk supplied them)."""
        try:
            programme = current_principal().programme()
            iid = parse_id(issuance_id, what="发券批次")
            result = await run_db(lambda s: service.issuance_by_id(s, issuance_id=iid, programme_code=programme))
        except (DomainError, ValueError) as exc:
            return rx.toast.error(getattr(exc, "message", "发券批次不存在"))
        data = await asyncio.to_thread(service.issuance_result_csv, result)
        return rx.download(data=data, filename=f"issuance-{result.batch_id}.csv", mime_type="text/csv")
