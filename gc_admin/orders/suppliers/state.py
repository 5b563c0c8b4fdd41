"""商品管理 page state: a page of the goods catalogue — photo, price, stock, exchange products, 上架 / 下架 —
with create, edit (price, exchange products, stock added or taken off), the switch and a photo upload.

Row scope as over the API (:func:`gc_admin.orders.suppliers.api.supplier_scope`): admin and manager manage
every supplier's goods; a clerk reads them; a supplier account sees and edits only its own (its
``supplier_code`` goes into every service call, so another supplier's code is "not found"). Every handler
that reads or changes data is :func:`~gc_admin.ui.auth.guarded` by the goods section and checks the role
again; a photo goes through :func:`gc_admin.orders.suppliers.service.set_goods_image` (the bouquets' checks).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar

import reflex as rx

from gc_admin.core.errors import Forbidden
from gc_admin.core.money import format_fen, parse_yuan
from gc_admin.orders.suppliers import service
from gc_admin.orders.suppliers.api import supplier_scope
from gc_admin.ui.auth import current_principal, guarded, run_db
from gc_admin.ui.paging import PAGE_SIZE, PagedMixin
from gc_admin.ui.photos import CatalogueMixin

SECTION = "goods"
UPLOAD_ID = "goods_photo"


def _row(g: Any, names: dict[str, str]) -> dict[str, str]:
    return {"code": g.code, "name": g.name, "supplier": names.get(g.supplier_code, g.supplier_code),
            "price": format_fen(g.price_fen), "price_yuan": f"{g.price_fen / 100:.2f}".rstrip("0").rstrip("."),
            "stock": str(g.stock), "low": "1" if g.stock <= 5 else "",
            "exchange": "、".join(g.exchange_products or []) or "—", "exchange_raw": ",".join(g.exchange_products or []),
            "on_sale": "1" if g.on_sale else "", "image_url": service.image_url(g) or "",
            "size": f"{g.image_width}×{g.image_height}" if g.image_width else ""}


def goods_fields(form: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """The form (yuan, text) -> service keyword arguments; ``ValueError`` in Chinese."""
    try:
        price = parse_yuan(str(form.get("price", "") or "").strip())
    except ValueError:
        raise ValueError("价格需填写金额（元），最多两位小数，例如 128 或 99.90") from None
    raw_stock = str(form.get("stock", "") or "0").strip()
    sign = -1 if raw_stock.startswith("-") else 1
    digits = raw_stock.lstrip("+-")
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("库存需填写整数（调整时可填负数，如 -3）" if not creating else "库存需填写不小于 0 的整数")
    stock = sign * int(digits)
    if creating and stock < 0:
        raise ValueError("库存需填写不小于 0 的整数")
    exchange = [p.strip() for p in str(form.get("exchange", "") or "").replace("，", ",").split(",") if p.strip()]
    fields: dict[str, Any] = {"name": str(form.get("name", "") or ""), "price_fen": price, "exchange_products": exchange}
    if creating:
        fields.update(code=str(form.get("code", "") or ""), stock=stock,
                      on_sale=str(form.get("on_sale", "")).lower() in ("on", "true", "1"))
        if form.get("supplier_code"):
            fields["supplier_code"] = str(form["supplier_code"])
    else:
        fields["stock_delta"] = stock
    return fields


class GoodsState(CatalogueMixin, PagedMixin, rx.State):
    SECTION: ClassVar[str] = SECTION
    rows: list[dict[str, str]] = []
    can_edit: bool = False
    pick_supplier: bool = False  # platform staff choose whose item they add
    suppliers: list[dict[str, str]] = []
    note: str = ""

    def _on_denied(self) -> None:
        self.rows, self.total, self.can_edit = [], 0, False

    def _sort_keys(self) -> Collection[str]:
        return ()

    def _scope(self, *, edit: bool = False) -> tuple[Any, str | None]:
        p = current_principal()
        return p, supplier_scope(p, edit=edit)  # Forbidden: a role that may not read (or change) goods

    async def _reload(self) -> None:
        try:
            p, scope = self._scope()
        except Forbidden as exc:
            self.rows, self.total, self.note, self.can_edit = [], 0, exc.message, False
            return
        on_sale, q, offset = self._active(), self.q, self._offset()

        def read(s):
            names = {x.code: x.name for x in service.list_suppliers(s)}
            return names, service.page_goods(s, supplier_code=scope, q=q, on_sale=on_sale, offset=offset,
                                             limit=PAGE_SIZE)

        names, page = await run_db(read)
        self.rows, self.total = [_row(g, names) for g in page.rows], page.total
        self.can_edit = p.role in ("admin", "manager") or scope is not None
        self.pick_supplier = scope is None and self.can_edit
        self.suppliers = [{"code": c, "name": n} for c, n in sorted(names.items())] if self.pick_supplier else []
        self.note = f"仅显示「{names.get(scope, scope)}」的商品。" if scope is not None else ""

    def _editor(self) -> tuple[Any, str | None] | None:
        try:
            return self._scope(edit=True)
        except Forbidden:
            return None

    @rx.event
    @guarded(SECTION)
    async def create(self, form: dict[str, Any]):
        ed = self._editor()
        if ed is None:
            return rx.toast.error("只有管理员、经理或供货商可以新增商品")
        p, scope = ed

        def work(s):
            fields = goods_fields(form, creating=True)
            supplier = scope or fields.pop("supplier_code", "")
            fields.pop("supplier_code", None)
            if not supplier:
                raise ValueError("请选择供货商")
            return service.create_goods(s, actor=p.actor(), supplier_code=supplier, **fields)

        out = await self._submit(work, lambda g: f"已新增商品 {g.name}（{g.code}），请上传照片")
        if out is not None:
            self._created()
        return out

    @rx.event
    @guarded(SECTION)
    async def save_edit(self, form: dict[str, Any]):
        ed, code = self._editor(), self.edit_code
        if ed is None:
            return rx.toast.error("只有管理员、经理或该商品的供货商可以修改商品")
        p, scope = ed
        out = await self._submit(lambda s: service.update_goods(s, actor=p.actor(), code=code, supplier_code=scope,
                                                                **goods_fields(form, creating=False)),
                                 lambda g: f"已保存 {g.name}：{format_fen(g.price_fen)}，库存 {g.stock}")
        if out is not None:
            self.edit_code, self.edit = "", {}
        return out

    @rx.event
    @guarded(SECTION)
    async def set_on_sale(self, code: str, on_sale: bool):
        ed = self._editor()
        if ed is None:
            return rx.toast.error("只有管理员、经理或该商品的供货商可以上架或下架商品")
        p, scope = ed
        return await self._act(lambda s: service.update_goods(s, actor=p.actor(), code=str(code), supplier_code=scope,
                                                              on_sale=bool(on_sale)),
                               lambda g: f"{g.name} 已{'上架' if g.on_sale else '下架'}", missing="商品不存在")

    @rx.event
    @guarded(SECTION)
    async def upload_photo(self, files: list[rx.UploadFile]):
        ed, code = self._editor(), self.photo_code
        if ed is None:
            return rx.toast.error("只有管理员、经理或该商品的供货商可以上传商品照片")
        p, scope = ed
        return await self._upload(files, UPLOAD_ID, lambda s, data: service.set_goods_image(
            s, actor=p.actor(), code=code, data=data, supplier_code=scope),
            lambda g: f"已更新 {g.name} 的照片（{g.image_width}×{g.image_height}）")
