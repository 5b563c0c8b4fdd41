"""Stock routes (``/admin/stock/...``): code import and its report, the summary, the code list, the
expiry run. Thin: parse → one unit of work calling :mod:`gc_admin.coupons.stock.service` (the import:
:func:`gc_admin.coupons.stock.flows.import_file`) → serialise."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from gc_admin.accounts.deps import require_staff
from gc_admin.core.clock import iso
from gc_admin.core.http import PageOut
from gc_admin.core.params import Day, Id, Limit, Offset
from gc_admin.core.principal import Principal
from gc_admin.core.uploads import read_upload
from gc_admin.coupons.stock import flows, service
from gc_admin.db import session_scope

admin = APIRouter(prefix="/admin", tags=["admin: coupons"])


class InvalidRow(BaseModel):
    row: int
    reason: str


class ImportOut(BaseModel):
    import_id: int
    product_code: str
    filename: str
    status: str
    error: str | None = None
    rows: int
    imported: int
    in_stock: int
    duplicate_in_file: int
    duplicate_existing: int
    invalid: list[InvalidRow]
    invalid_count: int
    discarded_near_expiry: int
    face_fen_total: int
    cost_fen_total: int
    discarded_cost_fen: int
    created_at: str


class SummaryOut(BaseModel):
    product_code: str
    product_name: str
    state: str
    bucket: str
    count: int
    face_fen: int
    cost_fen: int


class StockCodeOut(BaseModel):
    id: int
    code_masked: str
    product_code: str
    state: str
    expires_at: str
    face_fen: int
    cost_fen: int
    import_id: int | None = None
    coupon_id: int | None = None
    phone_masked: str


class StockCodesOut(PageOut[StockCodeOut]):
    pass


class ExpiryOut(BaseModel):
    discarded: int
    discarded_face_fen: int
    discarded_cost_fen: int
    expired_coupons: int
    expired_cost_fen: int


class ImportQueuedOut(BaseModel):
    import_id: int
    status: Literal["queued", "running"]


@admin.post("/stock/imports", response_model=ImportOut, summary="导入兑换码（CSV / XLSX），返回导入报告",
            responses={202: {"model": ImportQueuedOut,
                             "description": "the import did not finish within GC_TASKS_WAIT_SECONDS: it goes on in "
                                            "the background; GET /admin/stock/imports/{import_id} gives the report"}})
async def import_stock(
    file: UploadFile = File(..., description="CSV or XLSX with columns code, expires_at[, face_fen, cost_fen, batch_ref]"),
    product_code: str = Form(..., max_length=32),
    expires_at: Day | None = Form(None, description="expiry for files without the column (YYYY-MM-DD)"),
    batch_ref: str | None = Form(None, max_length=64),
    p: Principal = Depends(require_staff("stock")),
):
    """The import runs as the ``coupons.import`` task (on a worker); this waits for its report."""
    data = await read_upload(file)  # refuses more than any upload may be (UPLOAD_TOO_LARGE) unread
    filename = (file.filename or "")[:255]

    def work() -> Any:
        report = flows.import_file(actor=p.actor(), product_code=product_code, data=data, filename=filename,
                                   expires_at=expires_at, batch_ref=batch_ref)
        if not report.final:
            return JSONResponse(ImportQueuedOut(import_id=report.import_id, status=report.status).model_dump(),
                                status_code=202)
        return report.to_dict()

    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(work)


@admin.get("/stock/imports/{import_id}", response_model=ImportOut, summary="导入报告")
def get_import(import_id: Id, _p: Principal = Depends(require_staff("stock"))):
    with session_scope() as s:
        return service.get_import(s, import_id=import_id).to_dict()


@admin.get("/stock/imports/{import_id}/report.csv", summary="下载导入报告（CSV，不含券码）",
           response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def import_report(import_id: Id, _p: Principal = Depends(require_staff("stock"))):
    with session_scope() as s:
        report = service.get_import(s, import_id=import_id)
    return Response(service.import_report_csv(report), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="import-{import_id}-report.csv"'})


@admin.get("/stock/summary", response_model=list[SummaryOut], summary="库存统计：券种 × 状态 × 有效期区间")
def stock_summary(product_code: str | None = Query(None, max_length=32), _p: Principal = Depends(require_staff("stock"))):
    with session_scope() as s:
        return [SummaryOut(**r.__dict__) for r in service.stock_summary(s, product_code=product_code)]


@admin.get("/stock/codes", response_model=StockCodesOut, summary="券码列表（券码脱敏）")
def stock_codes(
    product_code: str | None = Query(None, max_length=32),
    state: Literal["in_stock", "issued", "discarded", "expired"] | None = None,
    offset: Offset = 0,
    limit: Limit = 50,
    _p: Principal = Depends(require_staff("stock")),
):
    with session_scope() as s:
        page = service.list_stock_codes(s, product_code=product_code, state=state, offset=offset, limit=limit)
        items = [StockCodeOut(id=r.id, code_masked=r.code_masked, product_code=r.product_code, state=r.state,
                              expires_at=iso(r.expires_at) or "", face_fen=r.face_fen, cost_fen=r.cost_fen,
                              import_id=r.import_id, coupon_id=r.coupon_id, phone_masked=r.phone_masked)
                 for r in page.rows]
    return StockCodesOut(total=page.total, items=items)


@admin.post("/stock/expiry", response_model=ExpiryOut, summary="执行过期处理：临期库存弃票、过期未使用的券置为过期")
def run_expiry(p: Principal = Depends(require_staff("stock"))):
    with session_scope() as s:
        r = service.run_expiry(s, actor=p.actor())
    return ExpiryOut(discarded=r.discarded, discarded_face_fen=r.discarded_face_fen,
                     discarded_cost_fen=r.discarded_cost_fen, expired_coupons=r.expired_coupons,
                     expired_cost_fen=r.expired_cost_fen)


routers = (admin,)
