"""Coupon holders' routes: the mini-program's 我的礼券 (``/mp/coupons``) and a partner's view of a
member's coupons (``/partner/members/{phone}/coupons``). Thin: parse → one unit of work calling
:mod:`gc_admin.coupons.wallet.service` → serialise."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from gc_admin.core.clock import iso
from gc_admin.core.errors import InvalidInput
from gc_admin.core.http import client_ip
from gc_admin.core.params import Id
from gc_admin.core.phone import normalize_phone
from gc_admin.coupons.catalog.api import Jump
from gc_admin.coupons.catalog.service import programme_products
from gc_admin.coupons.wallet import service
from gc_admin.db import read_connection, session_scope
from gc_admin.partners.deps import require_partner
from gc_admin.partners.service import PartnerPrincipal
from gc_admin.users.deps import require_user, token_holder
from gc_admin.users.models import MpUser
from gc_admin.users.service import user_actor

partner = APIRouter(prefix="/partner", tags=["partner"])
mp = APIRouter(prefix="/mp", tags=["mini-program: coupons"])


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


# --- partner ---------------------------------------------------------------------------------

@partner.get("/members/{phone}/coupons", response_model=MemberCouponsOut, summary="会员在本项目下的券（券码脱敏）")
def member_coupons(phone: str = Path(max_length=20), who: PartnerPrincipal = Depends(require_partner("members:read"))):
    norm = normalize_phone(phone)
    if norm is None:
        raise InvalidInput("手机号格式不正确", code="INVALID_PHONE")
    with session_scope() as s:
        mine = {p.code for p in programme_products(s, programme_code=who.programme_code)}
        items = [MemberCouponOut(id=c.id, product_code=c.product_code, product_name=c.product_name, status=c.status,
                                 code_masked=c.code_masked, issued_at=iso(c.issued_at) or "",
                                 expires_at=iso(c.expires_at) or "", used_at=iso(c.used_at))
                 for c in service.user_coupons_for_staff(s, phone=norm) if c.product_code in mine]
    return MemberCouponsOut(phone=norm, items=items)


# --- mini-program ----------------------------------------------------------------------------

@mp.get("/coupons", response_model=CouponsOut, summary="我的礼券（不含兑换码）")
def my_coupons(request: Request, status: Literal["available", "used", "expired", "revoked"] | None = None):
    # The read an insurer campaign sends tens of thousands of users to: the token's user and the coupons
    # are read on one pooled connection with Core statements (no ORM session, one thread hop), and the
    # service writes the documented shape as JSON text, served as is instead of being validated again
    # against CouponsOut (test_coupons_api checks the shape against the schema).
    with read_connection() as conn:
        holder = token_holder(conn, request)
        body = service.user_coupons_json(conn, user_id=holder.id, phone=holder.phone, status=status)
    return Response(body, media_type="application/json")


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


routers = (partner, mp)
