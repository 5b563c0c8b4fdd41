"""鲜花管理 page state: the bouquet catalogue (a page of rows), create / edit, 上架 / 下架, photo upload.

Every handler that reads or changes data is :func:`~gc_admin.ui.auth.guarded` by the flowers section;
only admin and manager change the catalogue (prices are money), which the handlers check again. A photo
goes through :func:`gc_admin.orders.flowers.service.set_image` (type by content, size and pixel limits).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar

import reflex as rx

from gc_admin.core.money import format_fen, parse_yuan
from gc_admin.orders.flowers import service
from gc_admin.orders.flowers.models import BOUQUET_NOTE
from gc_admin.ui.auth import current_principal, guarded, run_db
from gc_admin.ui.paging import PAGE_SIZE, PagedMixin
from gc_admin.ui.photos import CatalogueMixin

SECTION = "flowers"
EDITORS = frozenset({"admin", "manager"})
UPLOAD_ID = "bouquet_photo"


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


class FlowersState(CatalogueMixin, PagedMixin, rx.State):
    SECTION: ClassVar[str] = SECTION
    rows: list[dict[str, str]] = []
    can_edit: bool = False
    note: str = BOUQUET_NOTE

    def _on_denied(self) -> None:
        self.rows, self.total, self.can_edit = [], 0, False

    def _sort_keys(self) -> Collection[str]:
        return ()

    async def _reload(self) -> None:
        active, q, offset = self._active(), self.q, self._offset()
        page = await run_db(lambda s: service.list_bouquets(s, active=active, q=q, offset=offset, limit=PAGE_SIZE))
        self.rows, self.total = [_row(b) for b in page.rows], page.total
        self.can_edit = current_principal().role in EDITORS

    @rx.event
    @guarded(SECTION)
    async def load(self):
        await self._reload()

    # --- create / edit -------------------------------------------------------------------------

    def _editor(self):
        p = current_principal()
        return p if p.role in EDITORS else None

    @rx.event
    @guarded(SECTION)
    async def create(self, form: dict[str, Any]):
        p = self._editor()
        if p is None:
            return rx.toast.error("只有管理员或经理可以修改花束目录")
        out = await self._submit(lambda s: service.create_bouquet(s, actor=p.actor(), **bouquet_fields(form, creating=True)),
                                 lambda b: f"已新建花束 {b.name}（{b.code}），请上传照片后再上架")
        if out is not None:
            self._created()
        return out

    @rx.event
    @guarded(SECTION)
    async def save_edit(self, form: dict[str, Any]):
        p, code = self._editor(), self.edit_code
        if p is None:
            return rx.toast.error("只有管理员或经理可以修改花束目录")
        out = await self._submit(lambda s: service.update_bouquet(s, actor=p.actor(), code=code,
                                                                  **bouquet_fields(form, creating=False)),
                                 lambda b: f"已保存花束 {b.name}（价格 {format_fen(b.price_fen)}）")
        if out is not None:
            self.edit_code, self.edit = "", {}
        return out

    @rx.event
    @guarded(SECTION)
    async def set_active(self, code: str, active: bool):
        p = self._editor()
        if p is None:
            return rx.toast.error("只有管理员或经理可以上架或下架花束")
        return await self._act(lambda s: service.update_bouquet(s, actor=p.actor(), code=str(code), active=bool(active)),
                               lambda b: f"{b.name} 已{'上架' if b.active else '下架'}", missing="花束不存在")

    # --- photo -------------------------------------------------------------------------------------

    @rx.event
    @guarded(SECTION)
    async def upload_photo(self, files: list[rx.UploadFile]):
        p, code = self._editor(), self.photo_code
        if p is None:
            return rx.toast.error("只有管理员或经理可以上传花束照片")
        return await self._upload(files, UPLOAD_ID, lambda s, data: service.set_image(s, actor=p.actor(), code=code,
                                                                                     data=data),
                                  lambda b: f"已更新 {b.name} 的照片（{b.image_width}×{b.image_height}）")
