"""Goods catalogue routes (``/admin/goods``): platform staff see every supplier's goods and add them for
any supplier; a supplier account sees, adds and edits only its own (row scope by ``supplier_code``:
another supplier's item answers 404 ``GOODS_NOT_FOUND``, by code as by listing). A photo is an upload
(multipart ``file``) checked by content like a bouquet's (``UPLOAD_NOT_IMAGE``, ``UPLOAD_TOO_LARGE``,
``UPLOAD_TOO_MANY_PIXELS``, ``UPLOAD_BAD_IMAGE``) and served publicly to the mini-program at
``/mp/goods/{code}/image`` (content-addressed URL; see :mod:`gc_admin.core.photos`).

Shipping by sheet (``/admin/shipments/imports``): ``dry_run`` previews in the request; otherwise the
``orders.ship_import`` task ships (:mod:`.flows`) and the request waits for it — 202 past
``GC_TASKS_WAIT_SECONDS``, then ``GET /admin/shipments/imports/{import_id}`` (a supplier: its own imports only)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gc_admin.accounts.deps import require_staff
from gc_admin.core.errors import Forbidden, InvalidInput
from gc_admin.core.http import StrictModel
from gc_admin.core.params import Count, Fen, Id
from gc_admin.core.photos import PHOTO_RESPONSES, read_photo, serve_photo
from gc_admin.core.principal import Principal
from gc_admin.db import session_scope
from gc_admin.orders import service as orders
from gc_admin.orders.imports.sheets import sheet_report
from gc_admin.orders.suppliers import service as suppliers
from gc_admin.orders.suppliers import flows as ship_flows
from gc_admin.orders.suppliers import shipments
from gc_admin.orders.suppliers.models import Goods, ShipmentImport

admin = APIRouter(prefix="/admin", tags=["admin: goods"])
mp = APIRouter(prefix="/mp", tags=["mini-program: goods"])
Code = Annotated[str, Path(min_length=2, max_length=32, description="goods code")]

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
    raise Forbidden("没有权限查看实物商品" if not edit else "只有管理员、经理或该商品的供货商可以修改商品", code="FORBIDDEN")


class GoodsOut(BaseModel):
    id: int
    code: str
    supplier_code: str
    name: str
    photo_url: str
    image_url: str | None = Field(None, description="what the mini-program shows: the uploaded photo, else photo_url")
    image_width: int | None = None
    image_height: int | None = None
    price_fen: int
    stock: int
    exchange_products: list[str]
    on_sale: bool

    @classmethod
    def of(cls, g: Goods) -> GoodsOut:
        return cls(id=g.id or 0, code=g.code, supplier_code=g.supplier_code, name=g.name, photo_url=g.photo_url,
                   image_url=suppliers.image_url(g), image_width=g.image_width, image_height=g.image_height,
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


class GoodsPatch(StrictModel):
    name: str | None = Field(None, min_length=1, max_length=64)
    price_fen: Fen | None = None
    on_sale: bool | None = Field(None, strict=True)
    exchange_products: Annotated[list[Annotated[str, Field(max_length=32)]], Field(max_length=20)] | None = None
    stock_delta: int = Field(0, strict=True, ge=-1_000_000, le=1_000_000,
                             description="added to the stock (negative: taken off; never below zero)")


@admin.get("/goods/{code}", response_model=GoodsOut, summary="一件实物商品（供货商账号只能看自己的，否则 404）")
def get_goods(code: Code, p: Principal = Depends(require_staff("orders"))):
    scope = supplier_scope(p)
    with session_scope() as s:
        return GoodsOut.of(suppliers.get_goods(s, code=code, supplier_code=scope))


@admin.patch("/goods/{code}", response_model=GoodsOut,
             summary="修改实物商品：名称、价格、上架 / 下架、可兑换券种、库存增减（管理员/经理；供货商只能改自己的）")
def update_goods(code: Code, body: GoodsPatch, p: Principal = Depends(require_staff("orders"))):
    scope = supplier_scope(p, edit=True)
    changes = body.model_dump(exclude_none=True)
    delta = changes.pop("stock_delta", 0)
    with session_scope() as s:
        return GoodsOut.of(suppliers.update_goods(s, actor=p.actor(), code=code, supplier_code=scope,
                                                  stock_delta=delta, **changes))


@admin.post("/goods/{code}/image", response_model=GoodsOut,
            summary="上传实物商品照片（JPG / PNG / WebP；按内容检查类型、大小与像素）")
async def upload_goods_image(code: Code, file: UploadFile = File(..., description="the photo"),
                             p: Principal = Depends(require_staff("orders"))):
    scope = supplier_scope(p, edit=True)
    data = await read_photo(file)

    def work() -> GoodsOut:
        with session_scope() as s:
            return GoodsOut.of(suppliers.set_goods_image(s, actor=p.actor(), code=code, data=data, supplier_code=scope))

    return await run_in_threadpool(work)


@mp.get("/goods/{code}/image", summary="实物商品照片（公开；URL 带内容哈希，可长期缓存）", response_class=Response,
        responses=PHOTO_RESPONSES)
def goods_image(code: Code, request: Request):
    return serve_photo(lambda s: suppliers.goods_image(s, code=code), request.headers.get("if-none-match"))


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
    status: str = Field("done", description="applied: queued / running (the task has not finished it) / done / failed")
    error_code: str | None = None
    error: str | None = None
    rows: int
    to_ship: int = Field(description="dry run: rows that would ship; applied: rows shipped")
    skipped: int = Field(description="already shipped with the same tracking no. (a re-upload)")
    failed: int
    items: list[ShipRowOut]

    @classmethod
    def applied(cls, rec: ShipmentImport) -> ShipmentReport:
        return cls(dry_run=False, import_id=rec.id, status=rec.status, error_code=rec.error_code, error=rec.error,
                   rows=rec.rows, to_ship=rec.shipped, skipped=rec.skipped, failed=rec.failed,
                   items=[ShipRowOut(**r) for r in rec.report])


class ShipmentQueuedOut(BaseModel):
    import_id: int
    status: Literal["queued", "running"]


def _ship_scope(p: Principal) -> orders.Scope:
    scope = shipments.ship_scope(p.role, supplier_code=p.supplier_code)
    if scope is None:
        raise Forbidden("没有发货的权限", code="FORBIDDEN")
    return scope


@admin.post("/shipments/imports", response_model=ShipmentReport,
            summary="批量发货：上传发货表（订单号、快递公司、快递单号；CSV / XLSX）。dry_run=true 只预览，逐行报告；"
                    "否则由后台任务发货（请求等待其完成）；重复上传同一表格不会重复发货",
            responses={202: {"model": ShipmentQueuedOut,
                             "description": "the shipments import did not finish within GC_TASKS_WAIT_SECONDS: it goes "
                                            "on in the background; GET /admin/shipments/imports/{import_id} gives the "
                                            "report"}})
async def import_shipments(file: UploadFile = File(...), dry_run: bool = Form(True),
                           p: Principal = Depends(require_staff("orders"))):
    scope = _ship_scope(p)

    def preview(s, data: bytes) -> ShipmentReport:
        plan = shipments.plan(s, data=data, scope=scope)
        return ShipmentReport(dry_run=True, rows=len(plan.rows), to_ship=plan.count("ship"), skipped=plan.count("skip"),
                              failed=plan.count("error"), items=[ShipRowOut(**r.to_dict()) for r in plan.rows])

    def apply(data: bytes, filename: str) -> ShipmentReport | JSONResponse:
        rec = ship_flows.ship_file(actor=p.actor(), role=p.role, supplier_code=p.supplier_code, data=data,
                                   filename=filename)
        if rec.status not in ("done", "failed"):
            assert rec.id is not None
            return JSONResponse(ShipmentQueuedOut(import_id=rec.id, status=rec.status).model_dump(), status_code=202)
        return ShipmentReport.applied(rec)

    return await sheet_report(file, dry_run=dry_run, preview=preview, apply=apply, apply_in_unit=False)


@admin.get("/shipments/imports/{import_id}", response_model=ShipmentReport,
           summary="批量发货的报告（供货商账号只能看自己的，否则 404）")
def get_shipments_import(import_id: Id, p: Principal = Depends(require_staff("orders"))):
    scope = _ship_scope(p)
    with session_scope() as s:
        return ShipmentReport.applied(shipments.get_shipments(s, import_id=import_id, supplier=scope.supplier))


routers = (admin, mp)
