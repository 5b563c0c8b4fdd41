"""Mini-program sign-in and profile (``/api/v1/mp``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from gc_admin.core.clock import iso
from gc_admin.core.http import StrictModel, client_ip
from gc_admin.users.deps import require_user
from gc_admin.db import session_scope
from gc_admin.users import service
from gc_admin.users.models import MpUser

router = APIRouter(prefix="/mp", tags=["mini-program: users"])


class UserOut(BaseModel):
    id: int
    phone: str | None = Field(description="11-digit phone; null until bound")
    nickname: str
    created_at: str


class TokenOut(BaseModel):
    token: str
    expires_at: str
    user: UserOut


def user_out(u: MpUser) -> UserOut:
    assert u.id is not None
    return UserOut(id=u.id, phone=u.phone, nickname=u.nickname, created_at=iso(u.created_at) or "")


def _token_out(g: service.TokenGrant) -> TokenOut:
    return TokenOut(token=g.token, expires_at=iso(g.expires_at) or "", user=user_out(g.user))


class WechatLoginBody(StrictModel):
    code: str = Field(min_length=1, max_length=128, description="the code from wx.login()")


class WechatPhoneBody(StrictModel):
    phone_code: str = Field(min_length=1, max_length=128, description="the code from getPhoneNumber")


class SmsSendBody(StrictModel):
    phone: str = Field(min_length=1, max_length=20)


class SmsLoginBody(StrictModel):
    phone: str = Field(min_length=1, max_length=20)
    code: str = Field(min_length=4, max_length=8, pattern=r"^[0-9]+$")  # ASCII: \d would take "１２３４"


class SmsSentOut(BaseModel):
    sent: bool
    cooldown_seconds: int


@router.post("/auth/wechat", response_model=TokenOut, summary="微信登录（code2Session）")
def auth_wechat(body: WechatLoginBody, request: Request) -> TokenOut:
    with session_scope() as session:
        grant = service.wechat_login(session, code=body.code, ip=client_ip(request))
    return _token_out(grant)


@router.post("/auth/wechat/phone", response_model=TokenOut, summary="绑定微信手机号；已发放到该手机号的券归属本人")
def auth_wechat_phone(body: WechatPhoneBody, request: Request, user: MpUser = Depends(require_user)) -> TokenOut:
    with session_scope() as session:  # bind_phone re-reads the account, locked (a twin may have merged it away)
        grant = service.bind_phone(session, user=user, phone_code=body.phone_code, ip=client_ip(request))
    return _token_out(grant)


@router.post("/auth/sms/send", response_model=SmsSentOut, summary="发送登录验证码（按手机号与 IP 限频）")
def auth_sms_send(body: SmsSendBody, request: Request) -> SmsSentOut:
    with session_scope() as session:
        msg = service.send_login_code(session, phone=body.phone, ip=client_ip(request))
    service.raise_if_not_sent(msg)  # after the commit: a refused code still counts toward the limits
    return SmsSentOut(sent=True, cooldown_seconds=int(service.SMS_COOLDOWN.total_seconds()))


@router.post("/auth/sms/login", response_model=TokenOut, summary="短信验证码登录")
def auth_sms_login(body: SmsLoginBody, request: Request) -> TokenOut:
    with session_scope() as session:
        grant = service.sms_login(session, phone=body.phone, code=body.code, ip=client_ip(request))
    return _token_out(grant)


@router.get("/me", response_model=UserOut, summary="当前用户")
def me(user: MpUser = Depends(require_user)) -> UserOut:
    return user_out(user)
