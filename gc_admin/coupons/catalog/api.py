"""Product routes (``/admin/products``): the catalogue for staff automation. Thin: parse → one unit of
work calling :mod:`gc_admin.coupons.catalog.service` → serialise.

A product is created with the shape it is answered with (API.md "Product"): the third-party mini-program
a redemption code opens is ``jump: {app_id, path}``. The flat ``jump_app_id`` / ``jump_path`` of the first
version are still taken (scripts written against it keep working); both forms at once must agree. The
code keeps the case it was sent in (``BARS-X``)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, model_validator

from gc_admin.accounts.deps import require_staff
from gc_admin.core.errors import Forbidden
from gc_admin.core.http import StrictModel
from gc_admin.core.principal import Principal
from gc_admin.coupons.catalog import service
from gc_admin.coupons.models import CASHBACK_CATEGORIES, FUNDERS, KINDS
from gc_admin.db import session_scope

admin = APIRouter(prefix="/admin", tags=["admin: coupons"])

PRODUCT_MANAGERS = ("admin", "manager")


class Jump(BaseModel):
    app_id: str
    path: str


class JumpIn(StrictModel):
    app_id: str = Field(max_length=32, description="the mini-program to open (wx + 16 characters)")
    path: str | None = Field(None, max_length=255, description="a page inside it")


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
    jump: JumpIn | None = Field(None, description="redemption codes: the mini-program 去使用 opens")
    jump_app_id: str | None = Field(None, max_length=32, description="deprecated: use jump.app_id")
    jump_path: str | None = Field(None, max_length=255, description="deprecated: use jump.path")
    use_window_days: int = Field(30, ge=1, le=3650)
    min_validity_days: int = Field(30, ge=0, le=3650)
    validity_days: int = Field(90, ge=1, le=3650)
    on_sale: bool = False
    per_user_limit: int | None = Field(None, ge=1, le=10000)
    category: Literal[tuple(CASHBACK_CATEGORIES)] | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _one_jump(self) -> ProductIn:
        if self.jump is not None:
            flat = (self.jump_app_id, self.jump_path)
            if flat != (None, None) and flat != (self.jump.app_id, self.jump.path):
                raise ValueError("jump 与 jump_app_id / jump_path 不一致，请只填写 jump")
        return self

    def fields(self) -> dict:
        """The service's keyword arguments (``jump`` as the flat columns it is stored in)."""
        out = self.model_dump(exclude={"jump"})
        if self.jump is not None:
            out.update(jump_app_id=self.jump.app_id, jump_path=self.jump.path)
        return out


@admin.get("/products", response_model=list[ProductOut], summary="券种列表")
def list_products(kind: str | None = Query(None, max_length=24), _p: Principal = Depends(require_staff("stock"))):
    with session_scope() as s:
        return [service.product_dict(p) for p in service.list_products(s, kind=kind)]


@admin.post("/products", response_model=ProductOut, status_code=201, summary="新建券种（管理员/经理）")
def create_product(body: ProductIn, p: Principal = Depends(require_staff("stock"))):
    if p.role not in PRODUCT_MANAGERS:
        raise Forbidden("只有管理员或经理可以新建券种", code="FORBIDDEN")
    with session_scope() as s:
        product = service.create_product(s, actor=p.actor(), **body.fields())
        return service.product_dict(product)


routers = (admin,)
