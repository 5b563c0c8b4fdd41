"""券库存 page, 券种管理 tab: the products (券种); admin and manager create them and switch 上架/下架.

Every handler that reads or changes data is :func:`~gc_admin.ui.auth.guarded` by the stock section
(the page gate is not the security boundary); only admin and manager may change products.
"""

from __future__ import annotations

from typing import Any, ClassVar

import reflex as rx

from gc_admin.core.errors import DomainError
from gc_admin.core.money import format_fen, parse_yuan
from gc_admin.coupons.catalog import service as catalog
from gc_admin.coupons.models import CASHBACK_CATEGORIES, FUNDERS, KINDS, REDEMPTION_CODE
from gc_admin.programmes.service import list_programmes
from gc_admin.ui.auth import current_principal, guarded, public, run_db
from gc_admin.ui.paging import CreateMixin, RowsMixin

SECTION = "stock"
PRODUCT_EDITORS = frozenset({"admin", "manager"})
#: Events sent after a product is created, so the other lists that offer products reload (the 券库存
#: import form and code list register theirs in :mod:`gc_admin.coupons.stock.state`; the catalogue
#: sits below stock and does not import it).
ON_PRODUCT_CREATED: list[Any] = []


def _product_view(p: Any, programmes: dict[str, str] | None = None) -> dict[str, str]:
    if p.kind == "goods_discount" and p.percent_off:
        value = f"优惠 {p.percent_off}%"
    else:
        value = format_fen(p.face_fen)
    kind = KINDS.get(p.kind, p.kind)
    if p.category:
        kind += f" · {CASHBACK_CATEGORIES.get(p.category, p.category)}"
    return {
        "code": p.code, "name": p.name, "kind": kind, "value": value, "cost": format_fen(p.cost_fen),
        "price": format_fen(p.price_fen) if p.price_fen else "—", "supplier": p.supplier or "—",
        "programme": (programmes or {}).get(p.programme_code or "", p.programme_code or "—"),
        "programme_code": p.programme_code or "", "funded_by": FUNDERS.get(p.funded_by, p.funded_by),
        "on_sale": "1" if p.on_sale else "", "validity": (f"剩余 ≥{p.min_validity_days} 天可发 · 使用期 {p.use_window_days} 天"
                                                         if p.kind == REDEMPTION_CODE else f"发放后 {p.validity_days} 天"),
    }


def _opt_int(form: dict[str, Any], key: str, label: str) -> int | None:
    raw = str(form.get(key, "") or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{label}需填写整数") from None


def _opt_yuan(form: dict[str, Any], key: str, label: str) -> int | None:
    raw = str(form.get(key, "") or "").strip()
    if not raw:
        return None
    try:
        return parse_yuan(raw)
    except ValueError:
        raise ValueError(f"{label}需填写金额（元），最多两位小数，例如 50 或 12.50") from None


def product_fields(form: dict[str, Any]) -> dict[str, Any]:
    """The create form (yuan, text) -> :func:`catalog.create_product` keyword arguments; ``ValueError`` in Chinese."""
    kind = str(form.get("kind", "") or "")
    if kind not in KINDS:
        raise ValueError("请选择券种类型")
    programme = str(form.get("programme_code", "") or "")
    category = str(form.get("category", "") or "")
    fields: dict[str, Any] = {
        "code": str(form.get("code", "")), "name": str(form.get("name", "")), "kind": kind,
        "face_fen": _opt_yuan(form, "face", "面值") or 0, "cost_fen": _opt_yuan(form, "cost", "成本") or 0,
        "percent_off": _opt_int(form, "percent_off", "折扣百分比"), "price_fen": _opt_yuan(form, "price", "售价"),
        "supplier": str(form.get("supplier", "") or ""),
        "programme_code": None if programme in ("", "none") else programme,
        "funded_by": str(form.get("funded_by", "") or "insurer"),
        "category": category if kind == "cashback" and category not in ("", "none") else None,
        "on_sale": str(form.get("on_sale", "")).lower() in ("on", "true", "1"),
        "per_user_limit": _opt_int(form, "per_user_limit", "每人限购"),
    }
    for key, label, default in (("use_window_days", "使用期限（天）", 30), ("min_validity_days", "最短剩余有效期（天）", 30),
                                ("validity_days", "有效期（天）", 90)):
        value = _opt_int(form, key, label)
        fields[key] = default if value is None else value
    if kind == REDEMPTION_CODE:
        fields["jump_app_id"] = str(form.get("jump_app_id", "") or "").strip() or None
        fields["jump_path"] = str(form.get("jump_path", "") or "").strip() or None
    return fields


class ProductsState(CreateMixin, RowsMixin, rx.State):
    SECTION: ClassVar[str] = SECTION  # RowsMixin.load checks it
    programmes: list[dict[str, str]] = []
    can_edit: bool = False
    new_kind: str = REDEMPTION_CODE

    def _on_denied(self) -> None:
        self.rows, self.programmes, self.can_edit = [], [], False

    async def _reload(self) -> None:
        def _work(s):
            return catalog.list_products(s), list_programmes(s)

        products, programmes = await run_db(_work)
        self.can_edit = current_principal().role in PRODUCT_EDITORS
        self.rows = [_product_view(x, {g.code: g.name for g in programmes}) for x in products]
        self.programmes = [{"code": g.code, "name": f"{g.name}（{g.code}）"} for g in programmes]

    def _fresh_form(self) -> None:
        self.new_kind = REDEMPTION_CODE

    @rx.event
    @public
    def set_new_kind(self, value: str):
        self.new_kind = value

    @rx.event
    @guarded(SECTION)
    async def create(self, form: dict[str, Any]):
        p = current_principal()
        if p.role not in PRODUCT_EDITORS:
            return rx.toast.error("只有管理员或经理可以新建券种")
        try:
            fields = product_fields({**form, "kind": self.new_kind})
        except ValueError as exc:
            self.form_error = str(exc)
            return None
        try:
            product = await run_db(lambda s: catalog.create_product(s, actor=p.actor(), **fields))
        except DomainError as exc:
            self.form_error = exc.message
            return None
        self._created()
        await self._reload()
        return [rx.toast.success(f"已创建券种 {product.name}（{product.code}）"), *ON_PRODUCT_CREATED]

    @rx.event
    @guarded(SECTION)
    async def set_on_sale(self, code: str, on_sale: bool):
        p = current_principal()
        if p.role not in PRODUCT_EDITORS:
            return rx.toast.error("只有管理员或经理可以上架或下架券种")
        return await self._act(
            lambda s: catalog.update_product(s, actor=p.actor(), code=code, on_sale=bool(on_sale)),
            lambda product: f"{product.name} 已{'上架' if product.on_sale else '下架'}")
