"""Coupon routes: staff automation (``/admin``), partners (``/partner``), the mini-program (``/mp``).

Thin: parse → one unit of work calling ``gc_admin.coupons.service`` → serialise.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from gc_admin.accounts.service import Principal
from gc_admin.core.clock import iso
from gc_admin.core.errors import Forbidden, InvalidInput
from gc_admin.core.http import StrictModel, client_ip
from gc_admin.partners.deps import require_partner
from gc_admin.accounts.deps import require_staff
from gc_admin.users.deps import require_user
from gc_admin.core.params import Day, Id, Limit, Offset
from gc_admin.core.phone import normalize_phone
from gc_admin.core.uploads import read_upload
from gc_admin.coupons import service
from gc_admin.coupons.models import CASHBACK_CATEGORIES, FUNDERS, KINDS
from gc_admin.db import session_scope
from gc_admin.partners.service import PartnerPrincipal
from gc_admin.users.models import MpUser
from gc_admin.users.service import user_actor

admin = APIRouter(prefix="/admin", tags=["admin: coupons"])
partner = APIRouter(prefix="/partner", tags=["partner"])
mp = APIRouter(prefix="/mp", tags=["mini-program: coupons"])

PRODUCT_MANAGERS = ("admin", "manager")


# --- shapes ----------------------------------------------------------------------------------

class Jump(BaseModel):
    app_id: str
    path: str


class ProductOut(BaseModel):
    code: str
    name: str
    kind: str
    face_fen: int
    cost_fen: int
    percent_off: int | None = None
    supplier: str
    programme: str | None = None
    funded_by: str
    use_window_days: int
    min_validity_days: int
    validity_days: int
    category: str | None = None
    per_user_limit: int | None = None
    jump: Jump | None = None
    on_sale: bool
    price_fen: int | None = None


class ProductIn(StrictModel):
    code: str = Field(min_length=2, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")
    name: str = Field(min_length=1, max_length=64)
    kind: Literal[tuple(KINDS)]  # type: ignore[valid-type]
    face_fen: int = Field(0, ge=0, le=10**9)
    cost_fen: int = Field(0, ge=0, le=10**9)
    percent_off: int | None = Field(None, ge=1, le=99)
    price_fen: int | None = Field(None, ge=0, le=10**9)
    supplier: str = Field("", max_length=64)
    programme_code: str | None = Field(None, max_length=32)
    funded_by: Literal[tuple(FUNDERS)] = "insurer"  # type: ignore[valid-type]
    jump_app_id: str | None = Field(None, max_length=32)
    jump_path: str | None = Field(None, max_length=255)
    use_window_days: int = Field(30, ge=1, le=3650)
    min_validity_days: int = Field(30, ge=0, le=3650)
    validity_days: int = Field(90, ge=1, le=3650)
    on_sale: bool = False
    per_user_limit: int | None = Field(None, ge=1, le=10000)
    category: Literal[tuple(CASHBACK_CATEGORIES)] | None = None  # type: ignore[valid-type]


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


class StockCodesOut(BaseModel):
    total: int
    items: list[StockCodeOut]


class ExpiryOut(BaseModel):
    discarded: int
    discarded_face_fen: int
    discarded_cost_fen: int
    expired_coupons: int
    expired_cost_fen: int


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


class CouponProduct(BaseModel):
    code: str
    name: str
    kind: str
    face_fen: int
    percent_off: int | None = None
    category: str | None = None


class CouponOut(BaseModel):
    id: int
    product: CouponProduct
    status: Literal["available", "reserved", "used", "expired", "revoked"] = Field(
        description="revoked (已退回): taken back by a refund of the order that bought it")
    issued_at: str
    expires_at: str
    use_by: str | None = None
    revealed_at: str | None = None
    used_at: str | None = None


class CouponsOut(BaseModel):
    items: list[CouponOut]


class UseOut(BaseModel):
    code: str = Field(description="the redemption code, to copy to the clipboard")
    use_by: str
    jump: Jump | None = None


class MemberCouponOut(BaseModel):
    id: int
    product_code: str
    product_name: str
    status: str
    code_masked: str
    issued_at: str
    expires_at: str
    used_at: str | None = None


class MemberCouponsOut(BaseModel):
    phone: str
    items: list[MemberCouponOut]


def _issuance_out(result: service.IssuanceResult, states: dict[int, str] | None = None) -> IssuanceOut:
    rows = []
    for r in result.rows():
        if states is not None and r.get("coupon_ids"):
            r["coupon_states"] = [states.get(i, "") for i in r["coupon_ids"]]
        rows.append(IssuanceRowOut(**r))
    d = result.to_dict()
    return IssuanceOut(batch_id=d["batch_id"], product_code=d["product_code"], issued=d["issued"], failed=d["failed"],
                       coupons=d["coupons"], replayed=d["replayed"], rows=rows)


async def _read_upload(file: UploadFile) -> bytes:
    """The upload's bytes, refusing more than any upload may be (``UPLOAD_TOO_LARGE``) without reading it all."""
    return await read_upload(file)


# --- admin -----------------------------------------------------------------------------------

@admin.get("/products", response_model=list[ProductOut], summary="券种列表")
def list_products(kind: str | None = Query(None, max_length=24), _p: Principal = Depends(require_staff("stock"))):
    with session_scope() as s:
        return [service.product_dict(p) for p in service.list_products(s, kind=kind)]


@admin.post("/products", response_model=ProductOut, status_code=201, summary="新建券种（管理员/经理）")
def create_product(body: ProductIn, p: Principal = Depends(require_staff("stock"))):
    if p.role not in PRODUCT_MANAGERS:
        raise Forbidden("只有管理员或经理可以新建券种", code="FORBIDDEN")
    with session_scope() as s:
        product = service.create_product(s, actor=p.actor(), **body.model_dump())
        return service.product_dict(product)


@admin.post("/stock/imports", response_model=ImportOut, summary="导入兑换码（CSV / XLSX），返回导入报告")
async def import_stock(
    file: UploadFile = File(..., description="CSV or XLSX with columns code, expires_at[, face_fen, cost_fen, batch_ref]"),
    product_code: str = Form(..., max_length=32),
    expires_at: Day | None = Form(None, description="expiry for files without the column (YYYY-MM-DD)"),
    batch_ref: str | None = Form(None, max_length=64),
    p: Principal = Depends(require_staff("stock")),
):
    data = await _read_upload(file)
    filename = (file.filename or "")[:255]

    def work() -> dict[str, Any]:
        with session_scope() as s:
            return service.import_codes(s, actor=p.actor(), product_code=product_code, data=data, filename=filename,
                                        expires_at=expires_at, batch_ref=batch_ref).to_dict()

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


# An insurer's staff act for their account's programme (``Principal.programme``): the service then
# accepts only that programme's insurer-funded products and the programme's own batch ids, exactly
# as for its partner keys below; an insurer account without a programme gets 403 NO_PROGRAMME.

@admin.post("/issuances/preview", response_model=PreviewOut, summary="发券预览（不发放）")
def preview(body: IssuanceIn, p: Principal = Depends(require_staff("issuance"))):
    with session_scope() as s:
        pv = service.preview_issuance(s, product_code=body.product_code, phones=body.phones, per_phone=body.per_phone,
                                      programme_code=p.programme())
    return PreviewOut(**pv.__dict__)


@admin.post("/issuances", response_model=IssuanceOut, summary="批量发券（按 batch_id 幂等；人保账号仅限本项目券种）")
def issue(body: IssuanceIn, p: Principal = Depends(require_staff("issuance"))):
    with session_scope() as s:
        result = service.issue_batch(s, actor=p.actor(), source="staff", batch_id=body.batch_id,
                                     product_code=body.product_code, phones=body.phones, per_phone=body.per_phone,
                                     programme_code=p.programme())
    return _issuance_out(result)


@admin.get("/issuances/{batch_id}", response_model=IssuanceOut, summary="发券批次结果（人保账号仅限本项目的批次）")
def get_staff_issuance(batch_id: str = Path(max_length=64), p: Principal = Depends(require_staff("issuance"))):
    with session_scope() as s:
        result = service.get_issuance(s, source="staff", batch_id=batch_id, programme_code=p.programme())
        states = service.issuance_coupon_states(s, issuance_id=result.issuance_id)
    return _issuance_out(result, states)


# --- partner ---------------------------------------------------------------------------------

@partner.post("/issuances", response_model=IssuanceOut, summary="向会员手机号批量发券（本项目券种；按 batch_id 幂等）")
def partner_issue(body: IssuanceIn, request: Request, who: PartnerPrincipal = Depends(require_partner("issuance:write"))):
    with session_scope() as s:
        result = service.issue_batch(s, actor=who.actor(client_ip(request)), source="partner", batch_id=body.batch_id,
                                     product_code=body.product_code, phones=body.phones, per_phone=body.per_phone,
                                     programme_code=who.programme_code)
    return _issuance_out(result)


@partner.get("/issuances/{batch_id}", response_model=IssuanceOut, summary="发券批次的逐行结果与券的当前状态")
def partner_get_issuance(batch_id: str = Path(max_length=64),
                         who: PartnerPrincipal = Depends(require_partner("issuance:read"))):
    with session_scope() as s:
        result = service.get_issuance(s, source="partner", batch_id=batch_id, programme_code=who.programme_code)
        states = service.issuance_coupon_states(s, issuance_id=result.issuance_id)
    return _issuance_out(result, states)


@partner.get("/members/{phone}/coupons", response_model=MemberCouponsOut, summary="会员在本项目下的券（券码脱敏）")
def member_coupons(phone: str = Path(max_length=20), who: PartnerPrincipal = Depends(require_partner("members:read"))):
    norm = normalize_phone(phone)
    if norm is None:
        raise InvalidInput("手机号格式不正确", code="INVALID_PHONE")
    with session_scope() as s:
        mine = {p.code for p in service.programme_products(s, programme_code=who.programme_code)}
        items = [MemberCouponOut(id=c.id, product_code=c.product_code, product_name=c.product_name, status=c.status,
                                 code_masked=c.code_masked, issued_at=iso(c.issued_at) or "",
                                 expires_at=iso(c.expires_at) or "", used_at=iso(c.used_at))
                 for c in service.user_coupons_for_staff(s, phone=norm) if c.product_code in mine]
    return MemberCouponsOut(phone=norm, items=items)


# --- mini-program ----------------------------------------------------------------------------

@mp.get("/coupons", response_model=CouponsOut, summary="我的礼券（不含兑换码）")
def my_coupons(status: Literal["available", "used", "expired", "revoked"] | None = None,
               user: MpUser = Depends(require_user)):
    with session_scope() as s:
        items = [c.to_dict() for c in service.list_user_coupons(s, user=user, status=status)]
    # The hottest mini-program read: the service builds exactly the documented shape, so it is
    # serialised directly instead of being validated again against CouponsOut (test_coupons_api
    # checks the shape against the schema).
    return Response(json.dumps({"items": items}, ensure_ascii=False, separators=(",", ":")),
                    media_type="application/json")


@mp.get("/coupons/{coupon_id}", response_model=CouponOut, summary="一张我的券（他人的券与不存在的券同样返回 404）")
def my_coupon(coupon_id: Id, user: MpUser = Depends(require_user)):
    with session_scope() as s:
        return service.get_user_coupon(s, user=user, coupon_id=coupon_id).to_dict()


@mp.post("/coupons/{coupon_id}/use", response_model=UseOut,
         summary="去使用：显示兑换码（复制到剪贴板）并跳转；视为已使用，可重复查看同一券码")
def use(request: Request, coupon_id: Id, user: MpUser = Depends(require_user)):
    with session_scope() as s:
        result = service.use_coupon(s, user=user, coupon_id=coupon_id, actor=user_actor(user, client_ip(request)))
    return result.to_dict()


routers = (admin, partner, mp)
