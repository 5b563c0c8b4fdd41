"""Flower routes: the bouquet catalogue for staff (``/admin/bouquets``), delivery slots and bouquet photos
for the mini-program (``/mp/flower/slots``, ``/mp/bouquets/{code}/image``). Thin: parse → one unit of work
calling :mod:`gc_admin.orders.flowers.service` → serialise.

Who: the catalogue is read by the 鲜花管理 section (admin, manager, clerk) and changed by admin and
manager (prices are money). A photo is an upload (multipart ``file``), checked by content before it is
stored (``UPLOAD_NOT_IMAGE``, ``UPLOAD_TOO_LARGE``, ``UPLOAD_TOO_MANY_PIXELS``, ``UPLOAD_BAD_IMAGE``).

The photo route is public: a mini-program's ``<image src>`` sends no Authorization header, and a
catalogue photo is no secret. It serves only the file the bouquet row names (content-addressed, under the
private upload directory), with its stored type, ``nosniff`` and a year's cache (its URL carries the hash).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Path, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gc_admin.accounts.deps import require_staff
from gc_admin.core.errors import Forbidden, InvalidInput
from gc_admin.core.http import PageOut, StrictModel
from gc_admin.core.params import Day, Limit, Offset
from gc_admin.core.photos import PHOTO_RESPONSES, read_photo, serve_photo
from gc_admin.core.principal import Principal
from gc_admin.core.regions import OUTSIDE_AREA, guangxi_city
from gc_admin.db import session_scope
from gc_admin.orders.flowers import service
from gc_admin.users.deps import require_user
from gc_admin.users.models import MpUser

admin = APIRouter(prefix="/admin", tags=["admin: flowers"])
mp = APIRouter(prefix="/mp", tags=["mini-program: flowers"])

CATALOGUE_MANAGERS = ("admin", "manager")
Code = Annotated[str, Path(min_length=1, max_length=32, description="bouquet code (any case)")]


class BouquetOut(BaseModel):
    code: str
    name: str
    description: str
    price_fen: int
    image_url: str | None = Field(None, description="the photo (null: none uploaded yet)")
    note: str = Field(description="shown with the photo: style and wrapping may differ")
    active: bool
    sort: int
    image_width: int | None = None
    image_height: int | None = None
    updated_at: str | None = None


class BouquetPageOut(PageOut[BouquetOut]):
    pass


def _price(default=...):
    return Field(default, strict=True, ge=100, le=service.PRICE_MAX_FEN, description="fen (¥1.00 – ¥1,000.00)")


class BouquetIn(StrictModel):
    code: str = Field(min_length=2, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]+$")
    name: str = Field(min_length=1, max_length=64)
    price_fen: int = _price()
    description: str = Field("", max_length=200)
    active: bool = Field(True, strict=True)
    sort: int = Field(0, strict=True, ge=0, le=9999)


class BouquetPatch(StrictModel):
    name: str | None = Field(None, min_length=1, max_length=64)
    price_fen: int | None = _price(None)
    description: str | None = Field(None, max_length=200)
    active: bool | None = Field(None, strict=True)
    sort: int | None = Field(None, strict=True, ge=0, le=9999)


class SlotOut(BaseModel):
    start: str
    end: str
    available: int = Field(description="places left in this slot (0: full)")


class SlotsOut(BaseModel):
    city: str
    date: str
    slots: list[SlotOut]


def _manager(p: Principal) -> None:
    if p.role not in CATALOGUE_MANAGERS:
        raise Forbidden("只有管理员或经理可以修改花束目录", code="FORBIDDEN")


# --- staff ---------------------------------------------------------------------------------------

@admin.get("/bouquets", response_model=BouquetPageOut, summary="花束目录（含未上架的）")
def list_bouquets(active: bool | None = None, q: str = Query("", max_length=32), offset: Offset = 0,
                  limit: Limit = 50, _p: Principal = Depends(require_staff("flowers"))):
    with session_scope() as s:
        page = service.list_bouquets(s, active=active, q=q, offset=offset, limit=limit)
        return BouquetPageOut(total=page.total, items=[service.bouquet_dict(b) for b in page.rows])


@admin.post("/bouquets", response_model=BouquetOut, status_code=201, summary="新建花束（管理员/经理；照片另传）")
def create_bouquet(body: BouquetIn, p: Principal = Depends(require_staff("flowers"))):
    _manager(p)
    with session_scope() as s:
        return service.bouquet_dict(service.create_bouquet(s, actor=p.actor(), **body.model_dump()))


@admin.patch("/bouquets/{code}", response_model=BouquetOut, summary="修改花束：名称、价格、说明、上架、排序（管理员/经理）")
def update_bouquet(code: Code, body: BouquetPatch, p: Principal = Depends(require_staff("flowers"))):
    _manager(p)
    with session_scope() as s:
        changes = body.model_dump(exclude_none=True)
        return service.bouquet_dict(service.update_bouquet(s, actor=p.actor(), code=code, **changes))


@admin.post("/bouquets/{code}/image", response_model=BouquetOut,
            summary="上传花束照片（JPG / PNG / WebP；按内容检查类型、大小与像素）")
async def upload_image(code: Code, file: UploadFile = File(..., description="the photo"),
                       p: Principal = Depends(require_staff("flowers"))):
    _manager(p)
    data = await read_photo(file)

    def work():
        with session_scope() as s:
            return service.bouquet_dict(service.set_image(s, actor=p.actor(), code=code, data=data))

    return await run_in_threadpool(work)


# --- mini-program ------------------------------------------------------------------------------------

@mp.get("/flower/slots", response_model=SlotsOut, summary="某城市某日可预约的鲜花配送时段（仅营业时间内、未来的整点时段）")
def slots(city: str = Query(..., max_length=16, description="one of the 14 Guangxi cities, with or without 市"),
          date: Day = Query(..., description="YYYY-MM-DD (Asia/Shanghai)"), _u: MpUser = Depends(require_user)):
    name = guangxi_city(city)
    if name is None:
        raise InvalidInput(f"抱歉，该城市不在鲜花配送范围内：{OUTSIDE_AREA}", code="CITY_NOT_SERVED")
    with session_scope() as s:
        found = service.day_slots(s, city=name, day=date)
    return SlotsOut(city=name, date=date.isoformat(), slots=[SlotOut(**x.to_dict()) for x in found])


@mp.get("/bouquets/{code}/image", summary="花束照片（公开；URL 带内容哈希，可长期缓存）", response_class=Response,
        responses=PHOTO_RESPONSES)
def bouquet_image(code: Code, request: Request):
    return serve_photo(lambda s: service.bouquet_image(s, code=code), request.headers.get("if-none-match"))


routers = (admin, mp)
