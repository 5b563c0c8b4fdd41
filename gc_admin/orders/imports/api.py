"""Third-party order import routes: the per-source column mapping (``GET/PUT /admin/order-sources/{source}/mapping``)
and the import itself (``POST /admin/orders/imports``: ``dry_run`` previews in the request, otherwise the good rows
are imported by the ``orders.import`` task the request waits for — 202 past ``GC_TASKS_WAIT_SECONDS``, then
``GET /admin/orders/imports/{import_id}``)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, File, Form, Path, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gc_admin.accounts.deps import require_staff
from gc_admin.core.errors import Forbidden
from gc_admin.core.http import StrictModel
from gc_admin.core.params import Id
from gc_admin.core.principal import Principal
from gc_admin.db import session_scope
from gc_admin.orders.imports import flows
from gc_admin.orders.imports import service as imports
from gc_admin.orders.imports.models import OrderImport, OrderSourceMapping
from gc_admin.orders.imports.sheets import sheet_report
from gc_admin.orders.suppliers.shipments import IMPORT_ROLES

admin = APIRouter(prefix="/admin", tags=["admin: order import"])

Source = Path(pattern=r"^[a-z][a-z0-9_-]{1,31}$", description="the channel's code, e.g. meituan")


def importer(p: Principal = Depends(require_staff("orders"))) -> Principal:
    if p.role not in IMPORT_ROLES:
        raise Forbidden("没有导入第三方订单的权限", code="FORBIDDEN")
    return p


class MappingIn(StrictModel):
    mapping: dict[str, str] = Field(description=f"our field -> the channel's column header; fields: {', '.join(imports.FIELDS)}")
    default_type: str = Field("goods", max_length=16, description="order type when the sheet has no type column")


class MappingOut(BaseModel):
    source: str
    mapping: dict[str, str]
    default_type: str
    fields: dict[str, str] = Field(description="our fields and their labels (required ones marked *)")

    @classmethod
    def of(cls, m: OrderSourceMapping) -> MappingOut:
        return cls(source=m.source, mapping=dict(m.mapping), default_type=m.default_type,
                   fields={f: label + ("*" if req else "") for f, (label, req) in imports.FIELDS.items()})


class ImportRowOut(BaseModel):
    line: int
    external_id: str
    outcome: str = Field(description="dry run: ok / duplicate / error; applied: imported / duplicate / error")
    message: str


class ImportOut(BaseModel):
    dry_run: bool
    import_id: int | None = None
    status: str = Field("done", description="applied: queued / running (the task has not finished it) / done / failed")
    error_code: str | None = None
    error: str | None = None
    source: str
    rows: int
    imported: int = Field(description="dry run: rows that would be imported")
    duplicates: int
    failed: int
    items: list[ImportRowOut]

    @classmethod
    def applied(cls, rec: OrderImport) -> ImportOut:
        return cls(dry_run=False, import_id=rec.id, status=rec.status, error_code=rec.error_code, error=rec.error,
                   source=rec.source, rows=rec.rows, imported=rec.imported, duplicates=rec.duplicates,
                   failed=rec.failed, items=[ImportRowOut(**r) for r in rec.report])


class ImportQueuedOut(BaseModel):
    import_id: int
    status: Literal["queued", "running"]


@admin.get("/order-sources/{source}/mapping", response_model=MappingOut, summary="第三方渠道的列映射")
def get_mapping(source: str = Source, _p: Principal = Depends(importer)):
    with session_scope() as s:
        return MappingOut.of(imports.get_mapping(s, source=source))


@admin.put("/order-sources/{source}/mapping", response_model=MappingOut, summary="保存第三方渠道的列映射（可修改）")
def put_mapping(body: MappingIn, source: str = Source, p: Principal = Depends(importer)):
    with session_scope() as s:
        return MappingOut.of(imports.save_mapping(s, actor=p.actor(), source=source, mapping=body.mapping,
                                                  default_type=body.default_type))


@admin.post("/orders/imports", response_model=ImportOut,
            summary="第三方订单导入（CSV / XLSX，按渠道的列映射）：dry_run=true 预览逐行结果；否则导入无误的行，"
                    "按渠道 + 渠道订单号去重，重复导入不会产生重复订单",
            responses={202: {"model": ImportQueuedOut,
                             "description": "the import did not finish within GC_TASKS_WAIT_SECONDS: it goes on in "
                                            "the background; GET /admin/orders/imports/{import_id} gives the report"}})
async def import_orders(file: UploadFile = File(...), source: str = Form(..., max_length=32),
                        dry_run: bool = Form(True), p: Principal = Depends(importer)):
    def preview(s, data: bytes) -> ImportOut:
        plan = imports.plan(s, source=source, data=data)
        return ImportOut(dry_run=True, source=source, rows=len(plan.rows), imported=plan.count("ok"),
                         duplicates=plan.count("duplicate"), failed=plan.count("error"),
                         items=[ImportRowOut(**r.to_dict()) for r in plan.rows])

    def apply(data: bytes, filename: str) -> ImportOut | JSONResponse:
        rec = flows.import_file(actor=p.actor(), source=source, data=data, filename=filename)
        if rec.status not in ("done", "failed"):
            assert rec.id is not None
            return JSONResponse(ImportQueuedOut(import_id=rec.id, status=rec.status).model_dump(), status_code=202)
        return ImportOut.applied(rec)

    return await sheet_report(file, dry_run=dry_run, preview=preview, apply=apply, apply_in_unit=False)


@admin.get("/orders/imports/{import_id}", response_model=ImportOut, summary="第三方订单导入的报告")
def get_import(import_id: Id, _p: Principal = Depends(importer)):
    with session_scope() as s:
        return ImportOut.applied(imports.get_import(s, import_id=import_id))


routers = (admin,)
