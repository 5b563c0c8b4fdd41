"""FastAPI dependency: the partner behind ``X-Api-Key`` holding a scope (every /partner route)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request

from gc_admin.core.errors import Forbidden, Unauthorized
from gc_admin.db import session_scope
from gc_admin.partners.service import authenticate


def require_partner(scope: str) -> Callable[..., Any]:
    """Dependency: the partner behind ``X-Api-Key``, holding ``scope``."""
    def dep(request: Request):
        with session_scope() as session:
            partner = authenticate(session, request.headers.get("x-api-key"))
        if partner is None:
            raise Unauthorized("API 密钥无效或已吊销", code="INVALID_API_KEY")
        if scope not in partner.scopes:
            raise Forbidden(f"该密钥没有 {scope} 权限", code="SCOPE_MISSING")
        return partner

    return dep
