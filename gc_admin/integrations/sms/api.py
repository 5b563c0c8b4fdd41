"""The SMS outbox for staff automation (dev/demo only): ``GET /api/v1/admin/sms/outbox``.

Login codes are masked here as on the 短信记录 page (the service's :func:`list_outbox`): the
code is for the user. Scripts that play the user in dev read it from the phone's side,
``GET /sim/sms/_inbox?phone=``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from gc_admin.config import get_settings
from gc_admin.core.clock import iso
from gc_admin.core.errors import NotFound
from gc_admin.core.http import PageOut
from gc_admin.accounts.deps import require_staff
from gc_admin.core.params import Limit, Offset
from gc_admin.core.principal import Principal
from gc_admin.db import session_scope
from gc_admin.integrations.sms.service import list_outbox

router = APIRouter(prefix="/admin/sms", tags=["admin: sms"])


class SmsOut(BaseModel):
    id: int
    phone: str
    template: str
    content: str
    provider: str
    status: str
    created_at: str


class OutboxOut(PageOut[SmsOut]):
    pass


@router.get("/outbox", response_model=OutboxOut, summary="短信发件箱（仅开发/演示环境；验证码已隐藏）")
def outbox(
    phone: str = Query("", max_length=11),
    offset: Offset = 0,
    limit: Limit = 50,
    _p: Principal = Depends(require_staff("sms")),
) -> OutboxOut:
    if not get_settings().simulators_enabled:
        raise NotFound("接口不存在", code="NOT_FOUND")
    with session_scope() as session:
        page = list_outbox(session, phone=phone, offset=offset, limit=limit)
        items = [SmsOut(id=m.id or 0, phone=m.phone, template=m.template, content=m.content, provider=m.provider,
                        status=m.status, created_at=iso(m.created_at) or "") for m in page.rows]
    return OutboxOut(total=page.total, items=items)
