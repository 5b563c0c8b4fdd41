"""鲜花管理 page state: the bouquet catalogue (a page of rows), create / edit, 上架 / 下架, photo upload.

Every handler that reads or changes data is :func:`~gc_admin.ui.auth.guarded` by the flowers section;
only admin and manager change the catalogue (prices are money), which the handlers check again. A photo
goes through :func:`gc_admin.orders.flowers.service.set_image` (type by content, size and pixel limits).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any, ClassVar

import reflex as rx

from gc_admin.core.errors import DomainError
from gc_admin.core.money import format_fen, parse_yuan
from gc_admin.core.uploads import limits, read_upload
from gc_admin.orders.flowers import service
from gc_admin.orders.flowers.models import BOUQUET_NOTE
from gc_admin.ui.auth import current_principal, guarded, public, run_db
from gc_admin.ui.paging import PAGE_SIZE, PagedMixin

SECTION = "flowers"
EDITORS = frozenset({"admin", "manager"})
UPLOAD_ID = "bouquet_photo"
ACTIVE_FILTERS = {"all": None, "active": True, "inactive": False}


def _row(b: Any) -> dict[str, str]:
    return {"code": b.code, "name": b.name, "description": b.description, "price": format_fen(b.price_fen),
            "price_yuan": f"{b.price_fen / 100:.2f}".rstrip("0").rstrip("."), "sort": str(b.sort),
            "active": "1" if b.active else "", "image_url": service.image_url(b) or "",
            "size": f"{b.image_width}×{b.image_height}" if b.image_width else ""}


def bouquet_fields(form: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """The form (yuan, text) -> service keyword arguments; ``ValueError`` in Chinese."""
    raw_price = str(form.get("price", "") or "").strip()
    try:
        price = parse_yuan(raw_price)
    except ValueError:
        raise ValueError("价格需填写金额（元），最多两位小数，例如 150 或 99.90") from None
    raw_sort = str(form.get("sort", "") or "0").strip()
    if not raw_sort.isascii() or not raw_sort.isdigit():
        raise ValueError("排序需填写 0–9999 的整数")
    fields: dict[str, Any] = {"name": str(form.get("name", "") or ""), "price_fen": price,
                              "description": str(form.get("description", "") or ""), "sort": int(raw_sort)}
    if creating:
        fields["code"] = str(form.get("code", "") or "")
        fields["active"] = str(form.get("active", "")).lower() in ("on", "true", "1")
    return fields


class FlowersState(PagedMixin, rx.State):
    SECTION: ClassVar[str] = SECTION
    rows: list[dict[str, str]] = []
    can_edit: bool = False
    active_filter: str = "all"
    q: str = ""
    note: str = BOUQUET_NOTE
    create_open: bool = False
    edit_code: str = ""  # the bouquet whose edit dialog is open
    edit: dict[str, str] = {}
    photo_code: str = ""  # the bouquet whose photo dialog is open
    form_error: str = ""
    uploading: bool = False

    def _on_denied(self) -> None:
        self.rows, self.total, self.can_edit = [], 0, False

    def _sort_keys(self) -> Collection[str]:
        return ()

    async def _reload(self) -> None:
        active, q, offset = ACTIVE_FILTERS.get(self.active_filter), self.q, self._offset()
        page = await run_db(lambda s: service.list_bouquets(s, active=active, q=q, offset=offset, limit=PAGE_SIZE))
        self.rows, self.total = [_row(b) for b in page.rows], page.total
        self.can_edit = current_principal().role in EDITORS

    @rx.event
    @guarded(SECTION)
    async def load(self):
        await self._reload()

    @rx.event
    @guarded(SECTION)
    async def set_active_filter(self, value: str):
        self.active_filter = value if value in ACTIVE_FILTERS else "all"
        self.page = 1
        await self._reload()

    @rx.event
    @public
    def set_q(self, value: str):
        self.q = str(value)[:32]

    # --- create / edit -------------------------------------------------------------------------

    @rx.event
    @public
    def open_create(self, value: bool):
        self.create_open, self.form_error = value, ""

    @rx.event
    @public
    def open_edit(self, code: str):
        row = next((r for r in self.rows if r["code"] == code), None)
        self.edit_code, self.edit, self.form_error = (code, dict(row), "") if row else ("", {}, "")

    @rx.event
    @public
    def close_edit(self, value: bool):
        if not value:
            self.edit_code, self.edit, self.form_error = "", {}, ""

    def _editor(self):
        p = current_principal()
        return p if p.role in EDITORS else None

    @rx.event
    @guarded(SECTION)
    async def create(self, form: dict[str, Any]):
        p = self._editor()
        if p is None:
            return rx.toast.error("只有管理员或经理可以修改花束目录")
        try:
            fields = bouquet_fields(form, creating=True)
            bouquet = await run_db(lambda s: service.create_bouquet(s, actor=p.actor(), **fields))
        except (ValueError, DomainError) as exc:
            self.form_error = exc.message if isinstance(exc, DomainError) else str(exc)
            return None
        self.create_open, self.form_error = False, ""
        await self._reload()
        return rx.toast.success(f"已新建花束 {bouquet.name}（{bouquet.code}），请上传照片后再上架")

    @rx.event
    @guarded(SECTION)
    async def save_edit(self, form: dict[str, Any]):
        p, code = self._editor(), self.edit_code
        if p is None:
            return rx.toast.error("只有管理员或经理可以修改花束目录")
        try:
            fields = bouquet_fields(form, creating=False)
            bouquet = await run_db(lambda s: service.update_bouquet(s, actor=p.actor(), code=code, **fields))
        except (ValueError, DomainError) as exc:
            self.form_error = exc.message if isinstance(exc, DomainError) else str(exc)
            return None
        self.edit_code, self.edit, self.form_error = "", {}, ""
        await self._reload()
        return rx.toast.success(f"已保存花束 {bouquet.name}（价格 {format_fen(bouquet.price_fen)}）")

    @rx.event
    @guarded(SECTION)
    async def set_active(self, code: str, active: bool):
        p = self._editor()
        if p is None:
            return rx.toast.error("只有管理员或经理可以上架或下架花束")
        try:
            bouquet = await run_db(lambda s: service.update_bouquet(s, actor=p.actor(), code=str(code),
                                                                    active=bool(active)))
        except DomainError as exc:
            await self._reload()
            return rx.toast.error(exc.message)
        await self._reload()
        return rx.toast.success(f"{bouquet.name} 已{'上架' if bouquet.active else '下架'}")

    # --- photo -------------------------------------------------------------------------------------

    @rx.event
    @public
    def open_photo(self, code: str):
        self.photo_code, self.form_error = str(code)[:32], ""

    @rx.event
    @public
    def close_photo(self, value: bool):
        if not value:
            self.photo_code, self.form_error = "", ""

    @rx.event
    @guarded(SECTION)
    async def upload_photo(self, files: list[rx.UploadFile]):
        p, code = self._editor(), self.photo_code
        if p is None:
            return rx.toast.error("只有管理员或经理可以上传花束照片")
        if not files or not code:
            self.form_error = "请选择一张照片"
            return None
        lim = limits()
        self.uploading = True
        try:
            data = await read_upload(files[0], lim=dataclasses.replace(lim, max_bytes=lim.image_max_bytes))
            bouquet = await run_db(lambda s: service.set_image(s, actor=p.actor(), code=code, data=data))
        except DomainError as exc:
            self.form_error, self.uploading = exc.message, False
            return rx.clear_selected_files(UPLOAD_ID)
        self.photo_code, self.form_error, self.uploading = "", "", False
        await self._reload()
        return [rx.clear_selected_files(UPLOAD_ID),
                rx.toast.success(f"已更新 {bouquet.name} 的照片（{bouquet.image_width}×{bouquet.image_height}）")]
