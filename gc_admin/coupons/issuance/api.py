"""Issuance routes: staff automation (``/admin/issuances``) and partners (``/partner/issuances``).
Thin: parse → one unit of work calling :mod:`gc_admin.coupons.issuance.service` (issuing:
:func:`gc_admin.coupons.issuance.flows.issue`, the ``coupons.issue_batch`` task, waited for) → serialise."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gc_admin.accounts.deps import require_staff
from gc_admin.core.http import StrictModel, client_ip
from gc_admin.core.principal import Principal
from gc_admin.coupons.issuance import flows, service
from gc_admin.db import session_scope
from gc_admin.partners.deps import require_partner
from gc_admin.partners.service import PartnerPrincipal

admin = APIRouter(prefix="/admin", tags=["admin: coupons"])
partner = APIRouter(prefix="/partner", tags=["partner"])


class IssuanceIn(StrictModel):
    batch_id: str = Field(min_length=1, max_length=64, description="the caller's idempotency key")
    product_code: str = Field(min_length=1, max_length=32)
    phones: list[str] = Field(min_length=1, max_length=200_000)
    per_phone: int = Field(1, ge=1, le=20)


class IssuanceRowOut(BaseModel):
    row: int
    phone: str
    status: Literal["issued", "invalid_phone", "duplicate", "no_stock"]
    coupon_ids: list[int] | None = None
    reason: str | None = None
    coupon_states: list[str] | None = None


class IssuanceOut(BaseModel):
    batch_id: str
    status: Literal["queued", "running", "done", "failed"] = Field(
        "done", description="queued / running: the batch is still being issued (no rows yet); GET it again later. "
                            "failed: it broke, nothing issued (error_code); POST the same batch again to retry it")
    error_code: str | None = Field(None, description="why a failed batch failed (ISSUANCE_ERROR)")
    product_code: str
    issued: int
    failed: int
    coupons: int
    replayed: bool = Field(description="true when this batch_id was already issued: nothing new was issued")
    rows: list[IssuanceRowOut]


class PreviewOut(BaseModel):
    product_code: str
    product_name: str
    requested: int
    valid: int
    invalid_phone: int
    duplicate: int
    per_phone: int
    would_issue: int
    coupons: int
    no_stock: int
    stock_available: int | None = None
    stock_after: int | None = None


def _issuance_out(result: service.IssuanceResult, states: dict[int, str] | None = None) -> IssuanceOut:
    rows = []
    for r in result.rows():
        if states is not None and r.get("coupon_ids"):
            r["coupon_states"] = [states.get(i, "") for i in r["coupon_ids"]]
        rows.append(IssuanceRowOut(**r))
    d = result.to_dict()
    return IssuanceOut(batch_id=d["batch_id"], status=result.status, error_code=result.error_code,
                       product_code=d["product_code"], issued=d["issued"], failed=d["failed"], coupons=d["coupons"],
                       replayed=d["replayed"], rows=rows)


class IssuanceQueuedOut(BaseModel):
    batch_id: str
    status: Literal["queued", "running"]


ACCEPTED = {202: {"model": IssuanceQueuedOut,
                  "description": "the batch was not issued within GC_TASKS_WAIT_SECONDS: it goes on in the background; "
                                 "GET .../issuances/{batch_id} gives its rows when done"}}


def _issued(result: service.IssuanceResult) -> Any:
    """The batch's result, or 202 while the ``coupons.issue_batch`` task has not issued it yet."""
    if not result.final:
        return JSONResponse(IssuanceQueuedOut(batch_id=result.batch_id, status=result.status).model_dump(),
                            status_code=202)
    return _issuance_out(result)


# --- admin -----------------------------------------------------------------------------------

# An insurer's staff act for their account's programme (``Principal.programme``): the service then
# accepts only that programme's insurer-funded products and the programme's own batch ids, exactly
# as for its partner keys below; an insurer account without a programme gets 403 NO_PROGRAMME.

@admin.post("/issuances/preview", response_model=PreviewOut, summary="发券预览（不发放）")
def preview(body: IssuanceIn, p: Principal = Depends(require_staff("issuance"))):
    with session_scope() as s:
        pv = service.preview_issuance(s, product_code=body.product_code, phones=body.phones, per_phone=body.per_phone,
                                      programme_code=p.programme())
    return PreviewOut(**pv.__dict__)


@admin.post("/issuances", response_model=IssuanceOut, summary="批量发券（按 batch_id 幂等；人保账号仅限本项目券种）",
            responses=ACCEPTED)
def issue(body: IssuanceIn, p: Principal = Depends(require_staff("issuance"))):
    """Issued by the ``coupons.issue_batch`` task (on a worker); this waits for its result."""
    return _issued(flows.issue(actor=p.actor(), source="staff", batch_id=body.batch_id, product_code=body.product_code,
                               phones=body.phones, per_phone=body.per_phone, programme_code=p.programme()))


@admin.get("/issuances/{batch_id}", response_model=IssuanceOut, summary="发券批次结果（人保账号仅限本项目的批次）")
def get_staff_issuance(batch_id: str = Path(max_length=64), p: Principal = Depends(require_staff("issuance"))):
    with session_scope() as s:
        result = service.get_issuance(s, source="staff", batch_id=batch_id, programme_code=p.programme())
        states = service.issuance_coupon_states(s, issuance_id=result.issuance_id)
    return _issuance_out(result, states)


# --- partner ---------------------------------------------------------------------------------

@partner.post("/issuances", response_model=IssuanceOut, summary="向会员手机号批量发券（本项目券种；按 batch_id 幂等）",
              responses=ACCEPTED)
def partner_issue(body: IssuanceIn, request: Request, who: PartnerPrincipal = Depends(require_partner("issuance:write"))):
    """Issued by the ``coupons.issue_batch`` task (on a worker); this waits for its result."""
    return _issued(flows.issue(actor=who.actor(client_ip(request)), source="partner", batch_id=body.batch_id,
                               product_code=body.product_code, phones=body.phones, per_phone=body.per_phone,
                               programme_code=who.programme_code))


@partner.get("/issuances/{batch_id}", response_model=IssuanceOut, summary="发券批次的逐行结果与券的当前状态")
def partner_get_issuance(batch_id: str = Path(max_length=64),
                         who: PartnerPrincipal = Depends(require_partner("issuance:read"))):
    with session_scope() as s:
        result = service.get_issuance(s, source="partner", batch_id=batch_id, programme_code=who.programme_code)
        states = service.issuance_coupon_states(s, issuance_id=result.issuance_id)
    return _issuance_out(result, states)


routers = (admin, partner)
