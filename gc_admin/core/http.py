"""HTTP plumbing shared by every feature's API: the error envelope and auth dependencies.

Every error leaves as ``{"error": {"code": "...", "message": "<Chinese>"}}`` with a 4xx/5xx
status; nothing a client sends can produce a bare 500 page or a partial write (each route
runs its work in one ``session_scope`` that it opens itself, so the commit has happened
before the response is written).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from gc_admin.core.errors import DomainError, Forbidden, Unauthorized
from gc_admin.core.roles import may
from gc_admin.db import session_scope

log = logging.getLogger("gc_admin.api")

_STATUS_CODES = {
    400: ("BAD_REQUEST", "请求不正确"),
    401: ("UNAUTHORIZED", "请先登录"),
    403: ("FORBIDDEN", "没有权限执行此操作"),
    404: ("NOT_FOUND", "接口不存在"),
    405: ("METHOD_NOT_ALLOWED", "不支持该请求方法"),
    413: ("PAYLOAD_TOO_LARGE", "上传内容过大"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "不支持的内容类型"),
    429: ("RATE_LIMITED", "请求过于频繁，请稍后再试"),
}


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, strings are stripped, NUL characters refused
    (PostgreSQL cannot store them: they would turn a bad request into a 500)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("不能包含空字符 (NUL)")
        return value


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "请求体"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_req: Request, exc: DomainError):
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "BAD_JSON", "请求体不是合法的 JSON")
        details = [{"field": _field(tuple(e.get("loc", ()))), "type": e.get("type"), "reason": e.get("msg")} for e in errors]
        first = details[0]["field"] if details else ""
        return error_response(422, "VALIDATION_ERROR", f"请求参数不正确：{first}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException):
        code, message = _STATUS_CODES.get(exc.status_code, ("HTTP_ERROR", "请求失败"))
        if isinstance(exc.detail, str) and exc.status_code not in _STATUS_CODES:
            message = exc.detail
        return error_response(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception):
        log.exception("unhandled error on %s %s", req.method, req.url.path)
        return error_response(500, "INTERNAL_ERROR", "服务器内部错误，请稍后再试")


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require_staff(section: str) -> Callable[..., Any]:
    """Dependency: the staff principal behind the bearer token, allowed to use ``section``."""
    from gc_admin.accounts.service import Principal, resolve_session

    def dep(request: Request) -> Principal:
        with session_scope() as session:
            principal = resolve_session(session, bearer(request), ip=client_ip(request))
        if principal is None:
            raise Unauthorized("登录已失效，请重新登录", code="UNAUTHORIZED")
        if not may(principal.role, section):
            raise Forbidden("没有权限执行此操作", code="FORBIDDEN")
        return principal

    return dep


def require_user(request: Request):
    """Dependency: the signed-in mini-program user (a detached row; routes re-load to change it)."""
    from gc_admin.users.service import user_from_token

    with session_scope() as session:
        user = user_from_token(session, bearer(request))
    if user is None:
        raise Unauthorized("登录已失效，请重新登录", code="UNAUTHORIZED")
    return user


def require_partner(scope: str) -> Callable[..., Any]:
    """Dependency: the partner behind ``X-Api-Key``, holding ``scope``."""
    from gc_admin.partners.service import authenticate

    def dep(request: Request):
        with session_scope() as session:
            partner = authenticate(session, request.headers.get("x-api-key"))
        if partner is None:
            raise Unauthorized("API 密钥无效或已吊销", code="INVALID_API_KEY")
        if scope not in partner.scopes:
            raise Forbidden(f"该密钥没有 {scope} 权限", code="SCOPE_MISSING")
        return partner

    return dep
