"""FastAPI dependency: the signed-in staff member behind a bearer token (every admin route)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request

from gc_admin.accounts.service import resolve_session
from gc_admin.core.errors import Forbidden, Unauthorized
from gc_admin.core.http import bearer, client_ip
from gc_admin.core.principal import Principal
from gc_admin.core.roles import may
from gc_admin.db import session_scope


def require_staff(section: str) -> Callable[..., Any]:
    """Dependency: the staff principal behind the bearer token, allowed to use ``section``."""
    def dep(request: Request) -> Principal:
        with session_scope() as session:
            principal = resolve_session(session, bearer(request), ip=client_ip(request))
        if principal is None:
            raise Unauthorized("登录已失效，请重新登录", code="UNAUTHORIZED")
        if not may(principal.role, section):
            raise Forbidden("没有权限执行此操作", code="FORBIDDEN")
        return principal

    return dep
