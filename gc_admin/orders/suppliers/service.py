"""Suppliers and their goods: the catalogue (row-scoped by supplier), stock taken and given back by
conditional UPDATEs, the link of a supplier account to its supplier, goods photos.

Row scope: every function that reads or changes one item by code takes ``supplier_code`` — ``None`` for
platform staff (any supplier's goods), a code for a supplier account — and answers another supplier's
item with the same ``GOODS_NOT_FOUND`` as a missing one.

Photos go through the bouquets' machinery (:mod:`gc_admin.core.photos`: checked by content, stored by
hash under ``GC_UPLOAD_DIR/goods``, served publicly at ``/api/v1/mp/goods/{code}/image?v=<hash>``).

Plain functions, session first, keyword-only; they never commit."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from gc_admin.accounts.models import StaffUser
from gc_admin.audit.service import record
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.core.money import format_fen
from gc_admin.core.photos import PhotoStore, StoredImage, photo_change
from gc_admin.core.principal import Actor
from gc_admin.db import Page, paginate
from gc_admin.orders.suppliers.models import Goods, Supplier

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,31}$")


def _code(value: Any, label: str) -> str:
    code = str(value or "").strip().lower()
    if not CODE_RE.match(code):
        raise InvalidInput(f"{label}需 2–32 位小写字母、数字、_ -", code="INVALID_CODE")
    return code


def create_supplier(session: Session, *, actor: Actor, code: str, name: str) -> Supplier:
    code = _code(code, "供货商编码")
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise InvalidInput("供货商名称不能为空，且不超过 64 个字", code="INVALID_NAME")
    if session.get(Supplier, code) is not None:
        raise Conflict("供货商编码已存在", code="SUPPLIER_EXISTS")
    row = Supplier(code=code, name=name, created_at=utcnow())
    session.add(row)
    session.flush()
    record(session, actor=actor, action="supplier.created", target_type="supplier", target_id=code,
           summary=f"新增供货商 {name}（{code}）", after={"code": code, "name": name})
    return row


def link_staff(session: Session, *, actor: Actor, staff_id: int, supplier_code: str | None) -> StaffUser:
    """Make a supplier account act for ``supplier_code`` (None: for nobody — it then sees no orders)."""
    user = session.get(StaffUser, staff_id)
    if user is None:
        raise NotFound("账号不存在", code="STAFF_NOT_FOUND")
    if user.role != "supplier":
        raise InvalidInput("只有供货商账号可以关联供货商", code="NOT_A_SUPPLIER")
    if supplier_code is not None and session.get(Supplier, supplier_code) is None:
        raise NotFound("供货商不存在", code="SUPPLIER_NOT_FOUND")
    before = user.supplier_code
    user.supplier_code = supplier_code
    user.updated_at = utcnow()
    session.add(user)
    session.flush()
    record(session, actor=actor, action="staff.supplier_linked", target_type="staff", target_id=staff_id,
           summary=f"账号 {user.username} 关联供货商 {supplier_code or '（无）'}",
           before={"supplier_code": before}, after={"supplier_code": supplier_code})
    return user


def create_goods(session: Session, *, actor: Actor, supplier_code: str, code: str, name: str, price_fen: int,
                 stock: int = 0, photo_url: str = "", exchange_products: list[str] | None = None,
                 on_sale: bool = True) -> Goods:
    """A new item of ``supplier_code``'s catalogue (``GOODS_EXISTS`` if the code is taken)."""
    if session.get(Supplier, supplier_code) is None:
        raise NotFound("供货商不存在", code="SUPPLIER_NOT_FOUND")
    code = _code(code, "商品编码")
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise InvalidInput("商品名称不能为空，且不超过 64 个字", code="INVALID_NAME")
    for v, label in ((price_fen, "价格（分）"), (stock, "库存")):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InvalidInput(f"{label}需为不小于 0 的整数", code="INVALID_GOODS")
    if session.exec(select(Goods.id).where(col(Goods.code) == code)).first() is not None:
        raise Conflict("商品编码已存在", code="GOODS_EXISTS")
    now = utcnow()
    row = Goods(code=code, supplier_code=supplier_code, name=name, photo_url=(photo_url or "")[:255],
                price_fen=price_fen, stock=stock, exchange_products=_exchange(exchange_products or []),
                on_sale=on_sale, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    record(session, actor=actor, action="goods.created", target_type="goods", target_id=row.id,
           summary=f"新增实物 {name}（{code}），{format_fen(price_fen)}，库存 {stock}",
           after={"code": code, "supplier_code": supplier_code, "price_fen": price_fen, "stock": stock,
                  "exchange_products": row.exchange_products})
    return row


def list_goods(session: Session, *, supplier_code: str | None = None, on_sale_only: bool = False) -> list[Goods]:
    """The catalogue; ``supplier_code``: only that supplier's items (a supplier account's view)."""
    stmt = select(Goods)
    if supplier_code is not None:
        stmt = stmt.where(col(Goods.supplier_code) == supplier_code)
    if on_sale_only:
        stmt = stmt.where(col(Goods.on_sale).is_(True))
    return list(session.exec(stmt.order_by(col(Goods.id))).all())


def get_goods(session: Session, *, code: str, supplier_code: str | None = None) -> Goods:
    """The item with ``code`` (any case); ``supplier_code``: only if it is that supplier's (else the same
    ``GOODS_NOT_FOUND`` as a missing code)."""
    stmt = select(Goods).where(col(Goods.code) == str(code or "").strip().lower())
    if supplier_code is not None:
        stmt = stmt.where(col(Goods.supplier_code) == supplier_code)
    row = session.exec(stmt.execution_options(populate_existing=True)).first()
    if row is None:
        raise NotFound("商品不存在", code="GOODS_NOT_FOUND")
    return row


def list_suppliers(session: Session) -> list[Supplier]:
    return list(session.exec(select(Supplier).order_by(col(Supplier.code))).all())


def page_goods(session: Session, *, supplier_code: str | None = None, q: str = "", on_sale: bool | None = None,
               offset: int = 0, limit: int = 20) -> Page[Goods]:
    """A page of the catalogue (the 商品管理 page), newest first; ``supplier_code``: that supplier's only."""
    stmt = select(Goods)
    if supplier_code is not None:
        stmt = stmt.where(col(Goods.supplier_code) == supplier_code)
    if on_sale is not None:
        stmt = stmt.where(col(Goods.on_sale).is_(on_sale))
    term = (q or "").strip()[:32]
    if term:
        stmt = stmt.where(or_(col(Goods.name).contains(term), col(Goods.code).contains(term.lower())))
    return paginate(session, stmt, order=(col(Goods.id).desc(),), offset=offset, limit=limit)


def _exchange(products: Any) -> list[str]:
    if not isinstance(products, (list, tuple)) or len(products) > 20:
        raise InvalidInput("可兑换券种需为不超过 20 个券种编码", code="INVALID_GOODS")
    out = sorted({str(p).strip() for p in products if str(p).strip()})
    if any(len(p) > 32 for p in out):
        raise InvalidInput("券种编码不超过 32 个字符", code="INVALID_GOODS")
    return out


GOODS_EDITABLE = ("name", "price_fen", "on_sale", "exchange_products")
GOODS_LABELS = {"name": "名称", "price_fen": "价格", "on_sale": "上架", "exchange_products": "可兑换券种",
                "stock": "库存"}


def update_goods(session: Session, *, actor: Actor, code: str, supplier_code: str | None = None,
                 stock_delta: int = 0, **changes: Any) -> Goods:
    """Change an item's name, price, 上架 / 下架 or exchange products, and add to / take from its stock
    (``stock_delta``: a conditional UPDATE, never below zero — orders take stock concurrently); audited
    with before / after. A new price applies to orders placed from now on."""
    unknown = set(changes) - set(GOODS_EDITABLE)
    if unknown:
        raise InvalidInput(f"不能修改的字段：{'、'.join(sorted(unknown))}", code="FIELD_NOT_EDITABLE")
    g = get_goods(session, code=code, supplier_code=supplier_code)
    clean: dict[str, Any] = {}
    for field, value in changes.items():
        if field == "name":
            value = " ".join(str(value or "").split())
            if not value or len(value) > 64:
                raise InvalidInput("商品名称不能为空，且不超过 64 个字", code="INVALID_NAME")
        elif field == "price_fen":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100_000_000:
                raise InvalidInput("价格（分）需为 0–100000000 的整数", code="INVALID_GOODS")
        elif field == "on_sale":
            if not isinstance(value, bool):
                raise InvalidInput("是否上架需为 是 / 否", code="INVALID_GOODS")
        elif field == "exchange_products":
            value = _exchange(value)
        clean[field] = value
    if isinstance(stock_delta, bool) or not isinstance(stock_delta, int) or abs(stock_delta) > 1_000_000:
        raise InvalidInput("库存增减需为 -1000000 至 1000000 的整数", code="INVALID_GOODS")
    before = {f: getattr(g, f) for f in clean if getattr(g, f) != clean[f]}
    after = {f: clean[f] for f in before}
    now = utcnow()
    if stock_delta:
        res = session.execute(update(Goods).where(col(Goods.id) == g.id, col(Goods.stock) + stock_delta >= 0)
                              .values(stock=col(Goods.stock) + stock_delta, updated_at=now)
                              .returning(Goods.stock).execution_options(synchronize_session=False)).first()
        if res is None:
            raise Conflict(f"库存不足：当前库存 {get_goods(session, code=g.code).stock}，不能减少 {-stock_delta}",
                           code="GOODS_OUT_OF_STOCK")
        before["stock"], after["stock"] = int(res[0]) - stock_delta, int(res[0])
    if clean:
        session.execute(update(Goods).where(col(Goods.id) == g.id).values(**clean, updated_at=now)
                        .execution_options(synchronize_session=False))
    g = get_goods(session, code=g.code)
    if before:
        record(session, actor=actor, action="goods.updated", target_type="goods", target_id=g.id,
               summary=f"修改实物 {g.name}（{g.code}）：{'、'.join(GOODS_LABELS[k] for k in before)}",
               before=before, after=after)
    return g


# --- photos ------------------------------------------------------------------------------------------

PHOTOS = PhotoStore("goods")


def image_url(g: Goods) -> str | None:
    """Where the mini-program loads the item's photo: the uploaded one (its hash in the URL: a new photo is a
    new URL), else an outside address given over the API, else ``None``."""
    if g.image_sha256:
        return f"/api/v1/mp/goods/{g.code}/image?v={g.image_sha256[:12]}"
    return g.photo_url or None


def set_goods_image(session: Session, *, actor: Actor, code: str, data: bytes,
                    supplier_code: str | None = None) -> Goods:
    """Check an uploaded photo (refused files raise ``UPLOAD_*`` and store nothing), store it and make it
    the item's photo; audited."""
    g = get_goods(session, code=code, supplier_code=supplier_code)
    image, before = PHOTOS.attach(session, g, data, now=utcnow())
    record(session, actor=actor, action="goods.image_set", target_type="goods", target_id=g.id,
           **photo_change(image, before, f"实物 {g.name}（{g.code}）"))
    return g


def goods_image(session: Session, *, code: str) -> StoredImage:
    """The uploaded photo of an item, or ``GOODS_IMAGE_NOT_FOUND``."""
    g = get_goods(session, code=code)
    return PHOTOS.stored(g.image_sha256, g.image_type, missing=NotFound("该商品还没有照片", code="GOODS_IMAGE_NOT_FOUND"))


def take_stock(session: Session, *, code: str, quantity: int) -> None:
    """Take ``quantity`` of an item's stock, or ``GOODS_OUT_OF_STOCK``: one conditional UPDATE, so two
    buyers of the last one cannot both get it."""
    res = session.execute(update(Goods).where(col(Goods.code) == code, col(Goods.stock) >= quantity)
                          .values(stock=col(Goods.stock) - quantity, updated_at=utcnow())
                          .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise Conflict("该商品库存不足", code="GOODS_OUT_OF_STOCK")


def give_back_stock(session: Session, *, code: str, quantity: int) -> None:
    session.execute(update(Goods).where(col(Goods.code) == code)
                    .values(stock=col(Goods.stock) + quantity, updated_at=utcnow())
                    .execution_options(synchronize_session=False))
