"""Staff API: token sign-in and the signed-in staff member (``/api/v1/admin``)."""

from __future__ import annotations


from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from gc_admin.accounts.service import authenticate, start_session
from gc_admin.core.clock import iso
from gc_admin.core.http import StrictModel, client_ip
from gc_admin.core.principal import Principal
from gc_admin.accounts.deps import require_staff
from gc_admin.core.roles import ROLE_LABELS, sections_for
from gc_admin.db import session_scope

router = APIRouter(prefix="/admin", tags=["admin: staff"])


class LoginBody(StrictModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


class StaffOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    role_label: str
    sections: list[str]
    programme_code: str | None = Field(None, description="insurer accounts: the programme they act for")


class StaffTokenOut(BaseModel):
    token: str
    expires_at: str
    user: StaffOut


def _staff_out(p: Principal) -> StaffOut:
    return StaffOut(id=p.id, username=p.username, display_name=p.display_name, role=p.role,
                    role_label=ROLE_LABELS[p.role], sections=[s.key for s in sections_for(p.role)],
                    programme_code=p.programme_code)


@router.post("/auth/login", response_model=StaffTokenOut, summary="员工登录，返回 Bearer token")
def login(body: LoginBody, request: Request) -> StaffTokenOut:
    with session_scope() as session:
        principal = authenticate(session, username=body.username, password=body.password, ip=client_ip(request))
        token, expires = start_session(session, principal=principal, kind="api")
    return StaffTokenOut(token=token, expires_at=iso(expires) or "", user=_staff_out(principal))


@router.get("/me", response_model=StaffOut, summary="当前员工")
def me(principal: Principal = Depends(require_staff("home"))) -> StaffOut:
    return _staff_out(principal)


