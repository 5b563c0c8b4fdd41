"""Claim routes: the mini-program (``/mp/claims``: file, list, one, options) and staff review
(``/admin/claims``). Thin: parse → service/flow → serialise.

``POST /mp/claims`` is multipart: the form fields of :class:`gc_admin.claims.service.ClaimForm`
(``items`` a JSON list of item codes) and 1–6 ``images``. ``real_name`` is required for an Alipay
payout too (beyond API.md): Alipay refuses a transfer to a login id without the holder's real name. Each image is read with a cap (never more
than the limit plus one chunk is held) and checked by content; OCR runs off the request path: the
``claims.ocr`` task queued with the claim (and, with GC_CLAIMS_OCR_AFTER_RESPONSE=1, also a background task
in the web process after the response).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from gc_admin.accounts.deps import require_staff
from gc_admin.accounts.service import resolve_session
from gc_admin.claims import flows, review, service
from gc_admin.claims.images import ImageRefused
from gc_admin.claims.models import STATUSES
from gc_admin.claims.storage import get_storage
from gc_admin.config import get_settings
from gc_admin.core.clock import iso
from gc_admin.core.errors import Forbidden, InvalidInput, Unauthorized
from gc_admin.core.http import StrictModel, bearer, client_ip
from gc_admin.core.roles import may
from gc_admin.core.params import Day, Id, IdField, Limit, MpLimit, Offset
from gc_admin.core.principal import Principal
from gc_admin.db import session_scope
from gc_admin.ui.auth import COOKIE_NAME
from gc_admin.users.deps import require_user
from gc_admin.users.models import MpUser

mp = APIRouter(prefix="/mp", tags=["mini-program: claims"])

_CHUNK = 256 * 1024


async def _read_capped(file: UploadFile, n: int, cap: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while chunk := await file.read(_CHUNK):
        total += len(chunk)
        if total > cap:
            raise ImageRefused(f"第 {n} 张图片超过 {cap // 1024 // 1024} MB，请压缩或截图后再上传",
                               code="IMAGE_TOO_LARGE", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _items(raw: str) -> tuple[str, ...]:
    if not raw:
        return ()
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidInput("items 需为保养项目代码的 JSON 列表，如 [\"oil\"]", code="INVALID_ITEMS") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 20:
        raise InvalidInput("items 需为保养项目代码的 JSON 列表，如 [\"oil\"]", code="INVALID_ITEMS")
    return tuple(value)


@mp.get("/claims/options", summary="返现申请表单选项：类别、充电运营商、保养项目、收款方式")
def claim_options(user: MpUser = Depends(require_user)) -> dict[str, Any]:  # noqa: ARG001
    with session_scope() as session:
        return service.options(session)


@mp.post("/claims", status_code=201, summary="提交返现申请（multipart，1–6 张支付凭证）",
         responses={200: {"description": "the same client_ref again: the first claim"}})
async def submit_claim(
    background: BackgroundTasks,
    category: Annotated[str, Form(max_length=16)],
    amount_paid_fen: Annotated[int, Form(ge=1, le=service.AMOUNT_MAX_FEN)],
    payout_method: Annotated[str, Form(max_length=8)],
    client_ref: Annotated[str, Form(min_length=1, max_length=64)],
    images: Annotated[list[UploadFile], File(description="1–6 张 JPG/PNG/WebP/HEIC 支付截图")],
    station: Annotated[str, Form(max_length=100)] = "",
    items: Annotated[str, Form(max_length=500, description="JSON list of maintenance item codes")] = "",
    alipay_account: Annotated[str, Form(max_length=64)] = "",
    contact_phone: Annotated[str, Form(max_length=20)] = "",
    real_name: Annotated[str, Form(max_length=40)] = "",
    bank_card_no: Annotated[str, Form(max_length=40)] = "",
    bank_name: Annotated[str, Form(max_length=40)] = "",
    user: MpUser = Depends(require_user),
) -> Any:
    form = service.ClaimForm(category=category, amount_paid_fen=amount_paid_fen, station=station,
                             payout_method=payout_method, client_ref=client_ref, items=_items(items),
                             alipay_account=alipay_account, contact_phone=contact_phone, real_name=real_name,
                             bank_card_no=bank_card_no, bank_name=bank_name)
    if not 1 <= len(images) <= 6:
        raise InvalidInput("请上传 1–6 张支付凭证图片", code="INVALID_IMAGES")
    cap = get_settings().claims.image_max_bytes
    raw = [await _read_capped(f, n, cap) for n, f in enumerate(images, start=1)]
    body, created = await run_in_threadpool(flows.submit, user=user, form=form, raw_images=raw)
    if created and get_settings().claims.ocr_after_response:
        from gc_admin.claims.ocr import process_claim_images

        background.add_task(process_claim_images, body["id"])
        return JSONResponse(body, status_code=201, background=background)
    return JSONResponse(body, status_code=201 if created else 200)


@mp.get("/claims", summary="我的返现申请")
def my_claims(user: MpUser = Depends(require_user), status: str | None = None, offset: Offset = 0,
              limit: MpLimit = 20) -> dict[str, Any]:
    if status is not None and status not in STATUSES:
        raise InvalidInput("未知的申请状态", code="INVALID_STATUS")
    with session_scope() as session:
        rows = service.list_user_claims(session, user=user, status=status, offset=offset, limit=limit)
        return {"items": [service.claim_view(session, c) for c in rows]}


@mp.get("/claims/{claim_id}", summary="我的一条返现申请及审核结果")
def my_claim(claim_id: Id, user: MpUser = Depends(require_user)) -> dict[str, Any]:
    with session_scope() as session:
        return service.claim_view(session, service.get_user_claim(session, user=user, claim_id=claim_id))



# --- staff ------------------------------------------------------------------------------------------

admin = APIRouter(prefix="/admin", tags=["admin: claims"])
staff = require_staff("claims")


class ApproveBody(StrictModel):
    note: str = Field("", max_length=200)


class RejectBody(StrictModel):
    reason: str = Field(min_length=1, max_length=200, description="a code from /admin/claims/options or free text")


class PayoutBody(StrictModel):
    reference: str | None = Field(None, max_length=64, description="a manual transfer's reference; none: Alipay")


class BulkBody(StrictModel):
    claim_ids: list[IdField] = Field(min_length=1, max_length=review.BULK_MAX)


@admin.get("/claims/options", summary="审核选项：驳回原因列表、充电运营商")
def review_options(principal: Principal = Depends(staff)) -> dict[str, Any]:  # noqa: ARG001
    with session_scope() as session:
        return {"reject_reasons": service.reject_reasons(session), "ev_operators": service.ev_operators(session)}


@admin.get("/claims", summary="返现审核队列")
def queue(principal: Principal = Depends(staff), status: str | None = None, category: str | None = None,
          city: str | None = Query(None, max_length=16), q: str | None = Query(None, max_length=20),
          date_from: Day | None = Query(None, alias="from"), date_to: Day | None = Query(None, alias="to"),
          min_fen: Annotated[int | None, Query(ge=0, le=10**9)] = None,
          max_fen: Annotated[int | None, Query(ge=0, le=10**9)] = None, flagged: bool | None = None,
          offset: Offset = 0, limit: Limit = 50) -> dict[str, Any]:
    f = review.QueueFilter(status=status, category=category, city=city, q=q, date_from=date_from, date_to=date_to,
                           min_fen=min_fen, max_fen=max_fen, flagged=flagged)
    with session_scope() as session:
        page = review.list_queue(session, filters=f, offset=offset, limit=limit)
        return {"total": page.total, "items": [review.row_view(c) for c in page.rows]}


@admin.get("/claims/{claim_id}", summary="一条返现申请：图片与识别结果、异常、重复、历史")
def claim_detail(claim_id: Id, principal: Principal = Depends(staff)) -> dict[str, Any]:  # noqa: ARG001
    with session_scope() as session:
        return review.detail(session, claim_id=claim_id)


def _reviewer(request: Request) -> Principal:
    """The staff member behind the bearer token, or behind the dashboard's session cookie (an ``<img>``
    on the review page sends no header; the cookie is ``SameSite=Strict``, and this is a read)."""
    if bearer(request) is None and request.cookies.get(COOKIE_NAME):
        with session_scope() as session:
            principal = resolve_session(session, request.cookies[COOKIE_NAME], ip=client_ip(request))
        if principal is None:
            raise Unauthorized("登录已失效，请重新登录", code="UNAUTHORIZED")
        if not may(principal.role, "claims"):
            raise Forbidden("没有权限执行此操作", code="FORBIDDEN")
        return principal
    return staff(request)


@admin.get("/claims/{claim_id}/images/{n}", summary="凭证图片（仅审核人员；Bearer 或后台会话 Cookie）",
           response_class=Response)
def claim_image(claim_id: Id, n: Id,  # the image number (1-6; another is a 404)
                principal: Principal = Depends(_reviewer)) -> Response:  # noqa: ARG001
    with session_scope() as session:
        img = review.image_of(session, claim_id=claim_id, n=n)
        key, content_type = img.storage_key, img.content_type
    return Response(get_storage().get(key), media_type=content_type,
                    headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
                             "Content-Disposition": f'inline; filename="claim-{claim_id}-{n}"'})


@admin.post("/claims/{claim_id}/lease", summary="开始审核（占用，其他人不能同时审核）")
def lease(claim_id: Id, principal: Principal = Depends(staff)) -> dict[str, Any]:
    with session_scope() as session:
        claim = review.take_lease(session, claim_id=claim_id, principal=principal)
        return {"claim_id": claim_id, "leased_by": claim.lease_staff_name, "until": iso(claim.lease_until)}


@admin.post("/claims/{claim_id}/release", summary="结束审核（释放占用）")
def release(claim_id: Id, principal: Principal = Depends(staff)) -> dict[str, Any]:
    with session_scope() as session:
        review.release_lease(session, claim_id=claim_id, principal=principal)
    return {"claim_id": claim_id, "released": True}


@admin.post("/claims/bulk/approve", summary="批量通过（仅无异常提示的申请）")
def bulk_approve(body: BulkBody, principal: Principal = Depends(staff)) -> dict[str, Any]:
    results = flows.bulk_approve(claim_ids=body.claim_ids, principal=principal)
    return {"approved": sum(1 for r in results if r["ok"]), "results": results}


@admin.post("/claims/{claim_id}/approve", summary="审核通过（支付宝收款的申请随即打款）")
def approve(claim_id: Id, body: ApproveBody | None = None, principal: Principal = Depends(staff)) -> dict[str, Any]:
    return flows.approve(claim_id=claim_id, principal=principal, note=(body.note if body else ""))


@admin.post("/claims/{claim_id}/reject", summary="驳回（券退回用户）")
def reject(claim_id: Id, body: RejectBody, principal: Principal = Depends(staff)) -> dict[str, Any]:
    with session_scope() as session:
        d = review.reject(session, claim_id=claim_id, principal=principal, reason=body.reason)
    return {"claim_id": d.claim_id, "status": d.status}


@admin.post("/claims/{claim_id}/payout", summary="打款：填写人工转账流水号，或（不填）通过支付宝打款/重试")
def payout(claim_id: Id, body: PayoutBody | None = None, principal: Principal = Depends(staff)) -> dict[str, Any]:
    return flows.payout_now(claim_id=claim_id, principal=principal, reference=body.reference if body else None)


@admin.post("/claims/{claim_id}/reveal", summary="查看完整收款账号（记录操作日志）")
def reveal(claim_id: Id, principal: Principal = Depends(staff)) -> dict[str, str]:
    with session_scope() as session:
        return review.reveal_account(session, claim_id=claim_id, principal=principal)


routers = (mp, admin)
