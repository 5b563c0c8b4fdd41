"""Suppliers and their goods: the catalogue (row-scoped by supplier), stock taken and given back by
conditional UPDATEs, the link of a supplier account to its supplier.

Plain functions, session first, keyword-only; they never commit."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from gc_admin.accounts.models import StaffUser
from gc_admin.audit.service import record
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.core.money import format_fen
from gc_admin.core.principal import Actor
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
                price_fen=price_fen, stock=stock, exchange_products=sorted(set(exchange_products or [])),
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


def get_goods(session: Session, *, code: str) -> Goods:
    row = session.exec(select(Goods).where(col(Goods.code) == code)
                       .execution_options(populate_existing=True)).first()
    if row is None:
        raise NotFound("商品不存在", code="GOODS_NOT_FOUND")
    return row


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
