"""Coupon products (券种): create, update, list, look up, with Chinese validation."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.core.principal import Actor
from gc_admin.coupons.models import (
    CASHBACK_CATEGORIES,
    FUNDERS,
    KINDS,
    REDEMPTION_CODE,
    Coupon,
    Product,
    StockCode,
)
from gc_admin.db import insert_first
from gc_admin.programmes.models import Programme

APP_ID_RE = re.compile(r"^wx[0-9a-zA-Z]{16}$")
# A product code keeps the case it was created with (``BARS-X`` stays ``BARS-X``); it is unique and
# looked up without regard to case (``uq_product_code_ci``, :func:`code_is`).
PRODUCT_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{1,31}$")

# Fields a product update may change (code and kind are fixed once created).
EDITABLE = (
    "name", "face_fen", "percent_off", "cost_fen", "price_fen", "supplier", "programme_code", "funded_by",
    "jump_app_id", "jump_path", "use_window_days", "min_validity_days", "validity_days", "on_sale",
    "per_user_limit", "category",
)


def _bad(message: str, code: str = "INVALID_PRODUCT") -> InvalidInput:
    return InvalidInput(message, code=code)


def _int(value: Any, label: str, *, lo: int, hi: int, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{label}必须是整数")
    if not lo <= value <= hi:
        raise _bad(f"{label}必须在 {lo}–{hi} 之间")
    return value


# --- products --------------------------------------------------------------------------------

def _validate(session: Session, p: Product) -> None:
    """Check a product's fields together; raises :class:`InvalidInput` with the first problem."""
    if not p.name or len(p.name) > 64:
        raise _bad("券种名称不能为空，且不超过 64 个字")
    if p.kind not in KINDS:
        raise _bad(f"未知的券种类型：{p.kind}", "INVALID_KIND")
    _int(p.face_fen, "面值（分）", lo=0, hi=100_000_000)
    _int(p.cost_fen, "成本（分）", lo=0, hi=100_000_000)
    _int(p.price_fen, "售价（分）", lo=1, hi=100_000_000, optional=True)
    _int(p.percent_off, "折扣百分比", lo=1, hi=99, optional=True)
    if p.kind == "goods_discount":
        if (p.percent_off is None) == (p.face_fen == 0):
            raise _bad("实物抵扣/折扣券需填写抵扣金额或折扣百分比（二选一）")
    else:
        if p.percent_off is not None:
            raise _bad("只有实物抵扣/折扣券可以按百分比折扣")
        if p.face_fen <= 0:
            raise _bad("面值必须大于 0")
    if p.funded_by not in FUNDERS:
        raise _bad("出资方只能是保险公司或平台")
    if p.kind == "cashback":
        if p.category not in CASHBACK_CATEGORIES:
            raise _bad(f"返现券需选择类别：{'、'.join(CASHBACK_CATEGORIES.values())}")
    elif p.category is not None:
        raise _bad("只有返现券有类别")
    _int(p.use_window_days, "使用期限（天）", lo=1, hi=365)
    _int(p.min_validity_days, "最短剩余有效期（天）", lo=0, hi=365)
    _int(p.validity_days, "有效期（天）", lo=1, hi=3650)
    _int(p.per_user_limit, "每人限购", lo=1, hi=10_000, optional=True)
    if p.jump_app_id is not None and not APP_ID_RE.match(p.jump_app_id):
        raise _bad("跳转小程序 AppID 格式不正确（wx 开头，共 18 位）")
    if p.jump_path is not None and (p.jump_app_id is None or len(p.jump_path) > 255 or p.jump_path.startswith("http")):
        raise _bad("跳转路径需要同时填写跳转小程序 AppID，且是小程序内的页面路径")
    if (p.jump_app_id or p.jump_path) and p.kind != REDEMPTION_CODE:
        raise _bad("只有第三方兑换码可以设置跳转小程序")
    if len(p.supplier) > 64:
        raise _bad("供应商名称不超过 64 个字")
    if p.programme_code is not None:
        if session.exec(select(Programme.id).where(Programme.code == p.programme_code)).first() is None:
            raise _bad(f"项目 {p.programme_code} 不存在", "PROGRAMME_NOT_FOUND")


def _clean_text(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def create_product(
    session: Session,
    *,
    actor: Actor,
    code: str,
    name: str,
    kind: str,
    face_fen: int = 0,
    cost_fen: int = 0,
    percent_off: int | None = None,
    price_fen: int | None = None,
    supplier: str = "",
    programme_code: str | None = None,
    funded_by: str = "insurer",
    jump_app_id: str | None = None,
    jump_path: str | None = None,
    use_window_days: int = 30,
    min_validity_days: int = 30,
    validity_days: int = 90,
    on_sale: bool = False,
    per_user_limit: int | None = None,
    category: str | None = None,
) -> Product:
    """Create a product; codes (``tpp_tongdui_50``, ``BARS-X``) keep their case and are unique without regard to it."""
    code = (code or "").strip()
    if not PRODUCT_CODE_RE.match(code):
        raise _bad("券种编码需 2–32 位，以字母或数字开头，只含字母、数字、_ 或 -", "INVALID_PRODUCT_CODE")
    now = utcnow()
    product = Product(
        code=code, name=(name or "").strip(), kind=kind, face_fen=face_fen, cost_fen=cost_fen, percent_off=percent_off,
        price_fen=price_fen, supplier=(supplier or "").strip(), programme_code=_clean_text(programme_code),
        funded_by=funded_by, jump_app_id=_clean_text(jump_app_id), jump_path=_clean_text(jump_path),
        use_window_days=use_window_days, min_validity_days=min_validity_days, validity_days=validity_days,
        on_sale=bool(on_sale), per_user_limit=per_user_limit, category=_clean_text(category), created_at=now,
        updated_at=now,
    )
    _validate(session, product)

    def taken() -> None:
        existing = session.exec(select(Product.code).where(code_is(code))).first()
        if existing is not None:
            raise Conflict(f"券种编码 {existing} 已存在", code="PRODUCT_EXISTS")

    insert_first(session, product, taken=taken)  # a twin's code first: PRODUCT_EXISTS
    record(session, actor=actor, action="product.created", target_type="product", target_id=product.id,
           summary=f"创建券种 {product.name}（{code}）", after=_snapshot(product))
    return product


def update_product(session: Session, *, actor: Actor, code: str, **changes: Any) -> Product:
    """Change a product's editable fields (not ``code`` or ``kind``); audited with before/after."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise _bad(f"不能修改的字段：{'、'.join(sorted(unknown))}", "FIELD_NOT_EDITABLE")
    product = get_product_by_code(session, code)
    before = _snapshot(product)
    for field, value in changes.items():
        if field in ("name", "supplier"):
            value = (value or "").strip()
        elif field in ("programme_code", "jump_app_id", "jump_path", "category"):
            value = _clean_text(value)
        elif field == "on_sale":
            value = bool(value)
        setattr(product, field, value)
    _validate(session, product)
    after = _snapshot(product)
    if after == before:
        return product
    product.updated_at = utcnow()
    session.add(product)
    session.flush()
    diff_before = {k: v for k, v in before.items() if after[k] != v}
    diff_after = {k: after[k] for k in diff_before}
    record(session, actor=actor, action="product.updated", target_type="product", target_id=product.id,
           summary=f"修改券种 {product.name}（{product.code}）：{'、'.join(diff_after)}", before=diff_before, after=diff_after)
    return product


def code_is(code: str | None) -> Any:
    """The SQL condition "this product's code is ``code``", without regard to case."""
    return func.lower(col(Product.code)) == (code or "").strip().lower()


def get_product_by_code(session: Session, code: str) -> Product:
    """The product with ``code`` (any case), or :class:`NotFound` (券种不存在)."""
    product = session.exec(select(Product).where(code_is(code))).first()
    if product is None:
        raise NotFound("券种不存在", code="PRODUCT_NOT_FOUND")
    return product


get_by_code = get_product_by_code


def list_products(
    session: Session, *, kind: str | None = None, programme_code: str | None = None, on_sale: bool | None = None
) -> list[Product]:
    """Products filtered by kind / programme / on sale, by code."""
    q = select(Product)
    if kind:
        q = q.where(Product.kind == kind)
    if programme_code:
        q = q.where(Product.programme_code == programme_code)
    if on_sale is not None:
        q = q.where(Product.on_sale == on_sale)
    return list(session.exec(q.order_by(col(Product.code))).all())


def in_programme(product: Product, programme_code: str) -> bool:
    """Whether a programme's side (its insurer's staff, its partner keys) may act on ``product``:
    the programme's own products that the insurer funds. A platform-funded product (a promotion the
    platform pays for) is never the insurer's to issue, whatever programme it is attached to."""
    return product.programme_code == programme_code and product.funded_by == "insurer"


def programme_products(session: Session, *, programme_code: str) -> list[Product]:
    """The products :func:`in_programme` lets ``programme_code``'s side act on, by code."""
    q = select(Product).where(Product.programme_code == programme_code, Product.funded_by == "insurer")
    return list(session.exec(q.order_by(col(Product.code))).all())


def issuable_products(session: Session, *, programme_code: str | None) -> list[Product]:
    """Products a staff member may issue: every product for platform staff (``None``); for an
    insurer's staff, their programme's insurer-funded products (:func:`in_programme`)."""
    if programme_code is None:
        return list_products(session)
    return programme_products(session, programme_code=programme_code)


def code_products(session: Session) -> list[Product]:
    """Products with code stock (the import form's and the code list's choices)."""
    return list_products(session, kind=REDEMPTION_CODE)


def product_usage(session: Session, *, product_id: int) -> dict[str, int]:
    """How many stock codes and coupons a product has (for 'can this be changed' hints)."""
    codes = session.exec(select(func.count()).select_from(StockCode).where(StockCode.product_id == product_id)).one()
    coupons = session.exec(select(func.count()).select_from(Coupon).where(Coupon.product_id == product_id)).one()
    return {"codes": int(codes), "coupons": int(coupons)}


def product_dict(p: Product) -> dict[str, Any]:
    """The API's Product shape (API.md "Core shapes")."""
    return {
        "code": p.code, "name": p.name, "kind": p.kind, "face_fen": p.face_fen, "cost_fen": p.cost_fen,
        "percent_off": p.percent_off, "supplier": p.supplier, "programme": p.programme_code,
        "funded_by": p.funded_by, "use_window_days": p.use_window_days, "min_validity_days": p.min_validity_days,
        "validity_days": p.validity_days, "category": p.category, "per_user_limit": p.per_user_limit,
        "jump": {"app_id": p.jump_app_id, "path": p.jump_path or ""} if p.jump_app_id else None,
        "on_sale": p.on_sale, "price_fen": p.price_fen,
    }


def _snapshot(p: Product) -> dict[str, Any]:
    return {field: getattr(p, field) for field in ("code", "kind", *EDITABLE)}
