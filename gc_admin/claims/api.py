"""Claim routes: the mini-program (``/mp/claims``: file, list, one, options) and staff review
(``/admin/claims``). Thin: parse → service/flow → serialise.

``POST /mp/claims`` is multipart: the form fields of :class:`gc_admin.claims.service.ClaimForm`
(``items`` a JSON list of item codes) and 1–6 ``images``. Each image is read with a cap (never more
than the limit plus one chunk is held) and checked by content; OCR runs afterwards, off the request
path (a background task after the response, and the ``claims.ocr`` job for anything left).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from gc_admin.claims import flows, service
from gc_admin.claims.images import ImageRefused
from gc_admin.claims.models import STATUSES
from gc_admin.config import get_settings
from gc_admin.core.errors import InvalidInput
from gc_admin.core.params import Id, MpLimit, Offset
from gc_admin.db import session_scope
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
    images: Annotated[list[UploadFile], File(description="1–6 张 JPG/PNG/WebP 支付截图")],
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
    claim_id, created = await run_in_threadpool(flows.submit, user_id=user.id or 0, form=form, raw_images=raw)
    body = await run_in_threadpool(flows.claim_view, claim_id)
    if created and get_settings().claims.ocr_after_response:
        from gc_admin.claims.ocr import process_claim_images

        background.add_task(process_claim_images, claim_id)
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


routers = (mp,)
