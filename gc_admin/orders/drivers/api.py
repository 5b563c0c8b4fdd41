"""Driver routes: the roster (``/admin/drivers``: 司机管理, dispatcher / manager / admin) and the driver
platform's status callback (``/driver/{platform}/callback``, signed; its own protocol, not the house
error envelope: 200 ``{"code": "OK"}`` when received — applied, duplicate or ignored as out of order —,
4xx ``{"code", "message"}`` when refused, so the platform retries or gives up as designed).

Dispatching itself is an order action (``POST /admin/orders/{id}/actions/assign_driver | hand_off |
arrive | start | set_fee``, :mod:`gc_admin.orders.api`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gc_admin.accounts.deps import require_staff
from gc_admin.core.http import PageOut, StrictModel
from gc_admin.core.params import Id, Limit, Offset
from gc_admin.core.principal import Principal
from gc_admin.db import session_scope
from gc_admin.orders.drivers import callbacks
from gc_admin.orders.drivers import service as roster
from gc_admin.orders.drivers.models import DRIVER_STATUSES

admin = APIRouter(prefix="/admin", tags=["admin: drivers"])
hooks = APIRouter(prefix="/driver", tags=["driver platform callbacks"])

MAX_CALLBACK_BYTES = 16 * 1024
staff = require_staff("drivers")


class DriverOut(BaseModel):
    id: int
    name: str
    phone: str
    phone_masked: str
    status: str
    status_label: str
    active: bool
    order_id: int | None = None
    updated_at: str


class DriversOut(PageOut[DriverOut]):
    pass


class DriverIn(StrictModel):
    name: str = Field(min_length=1, max_length=32)
    phone: str = Field(min_length=11, max_length=20)
    active: bool = Field(True, strict=True)


class DriverPatch(StrictModel):
    name: str | None = Field(None, min_length=1, max_length=32)
    phone: str | None = Field(None, min_length=11, max_length=20)
    status: Literal["available", "off"] | None = None
    active: bool | None = Field(None, strict=True)


def _out(d) -> DriverOut:
    return DriverOut(**roster._row(d).to_dict())


@admin.get("/drivers", response_model=DriversOut, summary="代驾司机名册（按状态、启用筛选；姓名或手机号搜索）")
def list_drivers(status: Literal[tuple(DRIVER_STATUSES)] | None = None,  # type: ignore[valid-type]
                 active: Annotated[bool | None, Query()] = None, q: str | None = Query(None, max_length=32),
                 offset: Offset = 0, limit: Limit = 50, _p: Principal = Depends(staff)):
    with session_scope() as s:
        page = roster.list_drivers(s, status=status, active=active, q=q, offset=offset, limit=limit)
    return DriversOut(total=page.total, items=[DriverOut(**r.to_dict()) for r in page.rows])


@admin.post("/drivers", response_model=DriverOut, status_code=201, summary="添加代驾司机")
def create_driver(body: DriverIn, p: Principal = Depends(staff)):
    with session_scope() as s:
        return _out(roster.create_driver(s, name=body.name, phone=body.phone, active=body.active, actor=p.actor()))


@admin.patch("/drivers/{driver_id}", response_model=DriverOut, summary="修改司机：姓名、手机号、空闲/休息、启用/停用")
def update_driver(driver_id: Id, body: DriverPatch, p: Principal = Depends(staff)):
    with session_scope() as s:
        return _out(roster.update_driver(s, driver_id=driver_id, actor=p.actor(), **body.model_dump(exclude_none=True)))


@hooks.post("/{platform}/callback", summary="第三方代驾平台状态回调（验签、防重放、按事件去重、乱序忽略）",
            responses={401: {}, 404: {}, 409: {}})
async def platform_callback(platform: Annotated[str, Path(max_length=16)], request: Request) -> JSONResponse:
    body = await request.body()
    if len(body) > MAX_CALLBACK_BYTES:
        return JSONResponse({"code": "PARAM_ERROR", "message": "body too large"}, status_code=413)
    headers = dict(request.headers)

    def work() -> tuple[int, dict]:
        with session_scope() as s:
            return callbacks.handle_callback(s, platform_code=platform, headers=headers, body=body)

    status, answer = await run_in_threadpool(work)
    return JSONResponse(answer, status_code=status)


routers = (admin, hooks)
