"""Goods catalogue routes (``/admin/goods``): platform staff see every supplier's goods and add them for
any supplier; a supplier account sees and adds only its own (row scope by ``supplier_code``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gc_admin.accounts.deps import require_staff
from gc_admin.core.errors import Forbidden, InvalidInput
from gc_admin.core.http import StrictModel
from gc_admin.core.params import Count, Fen
from gc_admin.core.principal import Principal
from gc_admin.core.uploads import read_upload
from gc_admin.orders import service as orders
from gc_admin.orders.suppliers import shipments
from gc_admin.db import session_scope
from gc_admin.orders.suppliers import service as suppliers
from gc_admin.orders.suppliers.models import Goods

admin = APIRouter(prefix="/admin", tags=["admin: goods"])

CATALOGUE_ROLES = ("admin", "manager", "clerk", "service")  # every supplier's goods
EDIT_ROLES = ("admin", "manager")  # add goods for any supplier (a supplier: for itself)


def supplier_scope(p: Principal, *, edit: bool = False) -> str | None:
    """``None``: every supplier; a code: only that supplier's rows; otherwise 403."""
    if p.role == "supplier":
        if not p.supplier_code:
            raise Forbidden("该供货商账号尚未关联供货商，请联系管理员", code="FORBIDDEN")
        return p.supplier_code
    if p.role in (EDIT_ROLES if edit else CATALOGUE_ROLES):
        return None
    raise Forbidden("没有权限查看实物商品", code="FORBIDDEN")


class GoodsOut(BaseModel):
    id: int
    code: str
    supplier_code: str
    name: str
    photo_url: str
    price_fen: int
    stock: int
    exchange_products: list[str]
    on_sale: bool

    @classmethod
    def of(cls, g: Goods) -> GoodsOut:
        return cls(id=g.id or 0, code=g.code, supplier_code=g.supplier_code, name=g.name, photo_url=g.photo_url,
                   price_fen=g.price_fen, stock=g.stock, exchange_products=list(g.exchange_products or []),
                   on_sale=g.on_sale)


class GoodsList(BaseModel):
    items: list[GoodsOut]


class GoodsBody(StrictModel):
    code: str = Field(max_length=32)
    name: str = Field(max_length=64)
    supplier_code: str | None = Field(None, max_length=32, description="platform staff: whose goods; a supplier: its own")
    price_fen: Fen
    stock: Count = 0
    photo_url: str = Field("", max_length=255)
    exchange_products: Annotated[list[Annotated[str, Field(max_length=32)]], Field(max_length=20)] = []
    on_sale: bool = Field(True, strict=True)


@admin.get("/goods", response_model=GoodsList, summary="实物商品目录（供货商账号只看到自己的商品）")
def list_goods(p: Principal = Depends(require_staff("orders"))):
    scope = supplier_scope(p)
    with session_scope() as s:
        return GoodsList(items=[GoodsOut.of(g) for g in suppliers.list_goods(s, supplier_code=scope)])


@admin.post("/goods", response_model=GoodsOut, status_code=201, summary="新增实物商品（编码、名称、图片、价格、库存、可兑换的券种）")
def create_goods(body: GoodsBody, p: Principal = Depends(require_staff("orders"))):
    scope = supplier_scope(p, edit=True)
    supplier = scope or body.supplier_code
    if scope is not None and body.supplier_code not in (None, scope):
        raise Forbidden("只能为本供货商添加商品", code="FORBIDDEN")
    if not supplier:
        raise InvalidInput("请选择供货商", code="SUPPLIER_REQUIRED")
    with session_scope() as s:
        g = suppliers.create_goods(s, actor=p.actor(), supplier_code=supplier, code=body.code, name=body.name,
                                   price_fen=body.price_fen, stock=body.stock, photo_url=body.photo_url,
                                   exchange_products=body.exchange_products, on_sale=body.on_sale)
        return GoodsOut.of(g)


class ShipRowOut(BaseModel):
    line: int
    order_no: str
    carrier: str
    tracking_no: str
    outcome: str = Field(description="dry run: ship / skip / error; applied: shipped / skip / error / failed")
    message: str
    order_id: int | None = None


class ShipmentReport(BaseModel):
    dry_run: bool
    import_id: int | None = None
    rows: int
    to_ship: int = Field(description="dry run: rows that would ship; applied: rows shipped")
    skipped: int = Field(description="already shipped with the same tracking no. (a re-upload)")
    failed: int
    items: list[ShipRowOut]


def _ship_scope(p: Principal) -> orders.Scope:
    scope = orders.scope_for(p.role, supplier_code=p.supplier_code)
    if not scope.visible or not scope.can_act or (scope.types is not None and "goods" not in scope.types):
        raise Forbidden("没有发货的权限", code="FORBIDDEN")
    return scope


@admin.post("/shipments/imports", response_model=ShipmentReport,
            summary="批量发货：上传发货表（订单号、快递公司、快递单号；CSV / XLSX）。dry_run=true 只预览，逐行报告；"
                    "重复上传同一表格不会重复发货")
async def import_shipments(file: UploadFile = File(...), dry_run: bool = Form(True),
                           p: Principal = Depends(require_staff("orders"))):
    scope = _ship_scope(p)
    data = await read_upload(file)
    filename = (file.filename or "")[:255]

    def work() -> ShipmentReport:
        with session_scope() as s:
            if dry_run:
                plan = shipments.plan(s, data=data, scope=scope)
                return ShipmentReport(dry_run=True, rows=len(plan.rows), to_ship=plan.count("ship"),
                                      skipped=plan.count("skip"), failed=plan.count("error"),
                                      items=[ShipRowOut(**r.to_dict()) for r in plan.rows])
            rec = shipments.apply(s, data=data, filename=filename, scope=scope, actor=p.actor())
            return ShipmentReport(dry_run=False, import_id=rec.id, rows=rec.rows, to_ship=rec.shipped,
                                  skipped=rec.skipped, failed=rec.failed, items=[ShipRowOut(**r) for r in rec.report])

    return await run_in_threadpool(work)


routers = (admin,)
