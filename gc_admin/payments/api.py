"""Payment routes: the staff money pages' API (``/admin``: ledger and its Excel export, refunds,
reconciliation), for admin and manager (:func:`gc_admin.payments.deps.money_staff`).

The WeChat Pay callbacks (``/pay/wechat/*``) and the refund actions change orders, so they are
routes of the orders feature (:mod:`gc_admin.orders.api`), which sits above this one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from gc_admin.core import export_jobs
from gc_admin.core.errors import InvalidInput
from gc_admin.core.http import PageOut, StrictModel
from gc_admin.core.params import Day, Id, Limit, Offset
from gc_admin.core.uploads import read_upload
from gc_admin.core.principal import Principal
from gc_admin.db import session_scope
from gc_admin.payments import reconcile, service
from gc_admin.payments.deps import money_staff
from gc_admin.payments.ledger import LedgerFilter, list_ledger
from gc_admin.payments.models import LEDGER_KINDS, REFUND_STATUSES

admin = APIRouter(prefix="/admin", tags=["admin: payments"])


# --- staff -------------------------------------------------------------------------------------------------

class LedgerRowOut(BaseModel):
    id: int
    kind: str
    kind_label: str
    amount_fen: int
    order_id: int | None = None
    order_no: str | None = None
    user_id: int | None = None
    provider: str
    provider_ref: str | None = None
    ref: str
    note: str
    occurred_at: str
    created_at: str


class LedgerOut(BaseModel):
    total: int
    net_fen: int
    items: list[LedgerRowOut]


def _filters(kind: str | None, provider: str | None, order_no: str | None, date_from: dt.date | None,
             date_to: dt.date | None) -> LedgerFilter:
    if date_from and date_to and date_from > date_to:
        raise InvalidInput("开始日期不能晚于结束日期", code="INVALID_RANGE")
    return LedgerFilter(kind=kind, provider=provider, order_no=order_no, date_from=date_from, date_to=date_to)


Kind = Literal[tuple(LEDGER_KINDS)]  # type: ignore[valid-type]


@admin.get("/ledger", response_model=LedgerOut, summary="流水：支付、退款、积分、储值卡（按类型、渠道、订单号、日期筛选）")
def ledger(kind: Kind | None = None, provider: str | None = Query(None, max_length=16),  # type: ignore[valid-type]
           order_no: str | None = Query(None, max_length=32), date_from: Day | None = None,
           date_to: Day | None = None, offset: Offset = 0,
           limit: Limit = 50, _p: Principal = Depends(money_staff)):
    with session_scope() as s:
        page = list_ledger(s, filters=_filters(kind, provider, order_no, date_from, date_to), offset=offset,
                                   limit=limit)
    return LedgerOut(total=page.total, net_fen=page.net_fen, items=[LedgerRowOut(**r.to_dict()) for r in page.rows])


class ExportQueuedOut(BaseModel):
    """An export still being built when the request's wait ran out: ``GET /admin/exports/{export_id}`` follows it,
    ``GET /admin/exports/{export_id}/file`` downloads it once done."""

    export_id: int
    status: str


@admin.get("/ledger.xlsx", summary="导出流水（Excel；由导出任务生成，超过等待时间时答 202 与 export_id）",
           response_class=Response,
           responses={200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}},
                      202: {"model": ExportQueuedOut, "description": "仍在生成：稍后用 GET /admin/exports/{export_id}/file 下载"}})
def ledger_export(kind: Kind | None = None,  # type: ignore[valid-type]
                  provider: str | None = Query(None, max_length=16),
                  order_no: str | None = Query(None, max_length=32), date_from: Day | None = None,
                  date_to: Day | None = None, p: Principal = Depends(money_staff)):
    _filters(kind, provider, order_no, date_from, date_to)  # an inverted range refused here, before any export
    filters = {"kind": kind, "provider": provider, "order_no": order_no,
               "date_from": date_from.isoformat() if date_from else None,
               "date_to": date_to.isoformat() if date_to else None}
    rec, data = export_jobs.export_file("ledger", principal=p, filters=filters)
    if data is None:
        return JSONResponse(ExportQueuedOut(export_id=rec.id or 0, status=rec.status).model_dump(), status_code=202)
    name = f"ledger-{dt.date.today().isoformat()}.xlsx"
    return Response(data, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


class RefundOut(BaseModel):
    """A refund as its order shows it."""

    id: int
    out_refund_no: str
    refund_id: str | None = None
    amount_fen: int
    coupons: int
    full: bool
    reason: str
    status: str
    status_label: str
    error: str | None = None
    created_at: str
    succeeded_at: str | None = None


class RefundRowOut(RefundOut):
    """A refund in the money staff's list: also which order, and who asked for it."""

    order_id: int
    actor_name: str


class RefundsOut(PageOut[RefundRowOut]):
    pass


@admin.get("/refunds", response_model=RefundsOut, summary="退款记录")
def refunds(status: Literal[tuple(REFUND_STATUSES)] | None = None,  # type: ignore[valid-type]
            offset: Offset = 0, limit: Limit = 50,
            _p: Principal = Depends(money_staff)):
    with session_scope() as s:
        page = service.list_refunds(s, status=status, offset=offset, limit=limit)
    return RefundsOut(total=page.total, items=[RefundRowOut(**r.to_dict()) for r in page.rows])


class MismatchOut(BaseModel):
    kind: str
    kind_label: str
    entry: str
    key: str
    bill_fen: int | None = None
    ledger_fen: int | None = None
    provider_ref: str | None = None


class ReconciliationOut(BaseModel):
    id: int
    bill_date: str
    bill_rows: int
    ledger_rows: int
    matched: int
    ok: bool
    missing_in_ledger: int
    missing_in_bill: int
    amount_differs: int
    bill_net_fen: int
    ledger_net_fen: int
    created_at: str | None = None
    mismatches: list[MismatchOut]


class FetchBody(StrictModel):
    bill_date: Day


@admin.post("/reconciliations", response_model=ReconciliationOut, status_code=201,
            summary="导入微信支付交易账单（CSV）并与当日流水对账")
async def reconcile_upload(file: UploadFile = File(..., description="the trade bill CSV (交易账单)"),
                           bill_date: Day | None = Form(None, description="required for an empty bill"),
                           p: Principal = Depends(money_staff)):
    data = await read_upload(file)  # the upload cap (UPLOAD_TOO_LARGE); the bill is checked before parsing
    filename = (file.filename or "")[:255]

    def work() -> dict[str, Any]:
        with session_scope() as s:
            return reconcile.reconcile_trade_bill(s, data=data, actor=p.actor(), bill_date=bill_date,
                                                  filename=filename).to_dict()

    return await run_in_threadpool(work)


@admin.post("/reconciliations/fetch", response_model=ReconciliationOut, status_code=201,
            summary="从微信支付下载某日交易账单并对账")
def reconcile_fetch(body: FetchBody, p: Principal = Depends(money_staff)):
    with session_scope() as s:
        return reconcile.fetch_and_reconcile(s, bill_date=body.bill_date, actor=p.actor()).to_dict()


@admin.get("/reconciliations", response_model=list[ReconciliationOut], summary="对账记录")
def reconciliations(offset: Offset = 0, limit: Limit = 20,
                    _p: Principal = Depends(money_staff)):
    with session_scope() as s:
        return [r.to_dict() for r in reconcile.list_reconciliations(s, offset=offset, limit=limit)]


@admin.get("/reconciliations/{run_id}", response_model=ReconciliationOut, summary="一次对账的结果与差异明细")
def reconciliation(run_id: Id, _p: Principal = Depends(money_staff)):
    with session_scope() as s:
        return reconcile.get_reconciliation(s, run_id=run_id).to_dict()


routers = (admin,)
