"""Staff API (``/api/v1/admin``): token sign-in, the signed-in staff member, and staff accounts
(``/staff``: admin only, as the 员工与权限 page — the same service functions, so the same rules and audit)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from gc_admin.accounts.models import StaffUser
from gc_admin.accounts.service import (
    authenticate,
    create_staff,
    get_staff,
    list_staff,
    reset_password,
    set_enabled,
    set_programme,
    set_role,
    start_session,
)
from gc_admin.core.clock import iso
from gc_admin.core.http import PageOut, StrictModel, client_ip
from gc_admin.core.params import Id, Limit, Offset
from gc_admin.core.phone import mask_phone
from gc_admin.core.principal import Principal
from gc_admin.accounts.deps import require_staff
from gc_admin.core.roles import ALL_ROLES, ROLE_LABELS, sections_for
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


# --- staff accounts (admin only: the 员工与权限 section) -------------------------------------------

class StaffAccountOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    role_label: str
    enabled: bool
    phone_masked: str
    programme_code: str | None = None
    created_at: str
    last_login_at: str | None = None


class StaffPageOut(PageOut[StaffAccountOut]):
    pass


class StaffCreateBody(StrictModel):
    username: str = Field(min_length=3, max_length=32)
    display_name: str = Field(min_length=1, max_length=32)
    password: str = Field(min_length=1, max_length=128)
    role: Literal[tuple(sorted(ALL_ROLES))]  # type: ignore[valid-type]
    phone: str | None = Field(None, max_length=20, description="for the new-order SMS")
    programme: str | None = Field(None, max_length=32, description="insurer accounts: the programme they act for")


class StaffPatchBody(StrictModel):
    """Any of: a new role, enabled / disabled, a new password (signs the account out everywhere), the programme
    (insurer accounts; ``""`` clears it). Applied together in one unit of work, each audited."""

    role: Literal[tuple(sorted(ALL_ROLES))] | None = None  # type: ignore[valid-type]
    enabled: bool | None = Field(None, strict=True)
    password: str | None = Field(None, min_length=1, max_length=128)
    programme: str | None = Field(None, max_length=32)


def _account_out(u: StaffUser) -> StaffAccountOut:
    assert u.id is not None
    return StaffAccountOut(id=u.id, username=u.username, display_name=u.display_name, role=u.role,
                           role_label=ROLE_LABELS[u.role], enabled=u.enabled, phone_masked=mask_phone(u.phone),
                           programme_code=u.programme_code, created_at=iso(u.created_at) or "",
                           last_login_at=iso(u.last_login_at))


@router.get("/staff", response_model=StaffPageOut, summary="员工账号列表（仅管理员）")
def staff_list(q: str = Query("", max_length=32), role: Literal[tuple(sorted(ALL_ROLES))] | None = None,  # type: ignore[valid-type]
               offset: Offset = 0, limit: Limit = 50, _p: Principal = Depends(require_staff("staff"))):
    with session_scope() as s:
        page = list_staff(s, q=q, role=role or "", offset=offset, limit=limit)
        return StaffPageOut(total=page.total, items=[_account_out(u) for u in page.rows])


@router.post("/staff", response_model=StaffAccountOut, status_code=201, summary="新建员工账号（仅管理员）")
def staff_create(body: StaffCreateBody, p: Principal = Depends(require_staff("staff"))):
    with session_scope() as s:
        user = create_staff(s, actor=p.actor(), username=body.username, display_name=body.display_name,
                            password=body.password, role=body.role, phone=body.phone, programme_code=body.programme)
        return _account_out(user)


@router.patch("/staff/{staff_id}", response_model=StaffAccountOut,
              summary="修改员工账号：角色、停用/启用、重置密码、所属项目（仅管理员）")
def staff_patch(staff_id: Id, body: StaffPatchBody, p: Principal = Depends(require_staff("staff"))):
    with session_scope() as s:
        user = get_staff(s, staff_id=staff_id)
        if body.role is not None:
            user = set_role(s, actor=p, staff_id=staff_id, role=body.role)
        if body.programme is not None:
            user = set_programme(s, actor=p, staff_id=staff_id, programme_code=body.programme)
        if body.enabled is not None:
            user = set_enabled(s, actor=p, staff_id=staff_id, enabled=body.enabled)
        if body.password is not None:
            user = reset_password(s, actor=p, staff_id=staff_id, new_password=body.password)
        return _account_out(user)
