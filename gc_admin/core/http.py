"""HTTP plumbing shared by every feature's API: the error envelope, auth dependencies and the
security headers every response carries.

Every error leaves as ``{"error": {"code": "...", "message": "<Chinese>"}}`` with a 4xx/5xx
status; nothing a client sends can produce a bare 500 page or a partial write (each route
runs its work in one ``session_scope`` that it opens itself, so the commit has happened
before the response is written).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import logging
import re
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, field_validator
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from gc_admin.core.errors import DomainError

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


T = TypeVar("T")


class PageOut(BaseModel, Generic[T]):
    """A page of a list: ``total`` rows match, ``items`` are this page's. An endpoint's model subclasses it
    (``class QueueOut(PageOut[QueueRowOut]): pass``), so its OpenAPI schema keeps the endpoint's own name."""

    total: int
    items: list[T]


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
    """The caller's address, as the throttles count it. Behind a reverse proxy listed in ``GC_TRUSTED_PROXIES``
    it is the last address in ``X-Forwarded-For`` that is not one of those proxies (the part a client cannot
    forge); otherwise the peer. Without it every caller behind nginx would share nginx's address."""
    from gc_admin.config import get_settings

    peer = request.client.host if request.client else None
    trusted = get_settings().trusted_proxies
    if peer is None or peer not in trusted:
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    while hops and hops[-1] in trusted:
        hops.pop()
    return hops[-1] if hops else peer


def bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


# --- security headers ------------------------------------------------------------------------

_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)

#: Pages: scripts only from this origin plus the inline scripts of the very page served (by
#: hash), so markup slipped into a page cannot run. ``'unsafe-eval'`` because Reflex runs the
#: events the server sends (every ``rx.toast`` a handler returns is a ``_call_function`` whose
#: body is a string) with ``eval``: that code comes from our own server over the websocket.
#: Styles inline too (Radix and Emotion set style attributes and <style> tags at run time);
#: nothing may frame the dashboard, and forms post only to it.
PAGE_POLICY: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'", "'unsafe-eval'"),
    "style-src": ("'self'", "'unsafe-inline'"),
    "img-src": ("'self'", "data:", "blob:"),
    "font-src": ("'self'", "data:"),
    "connect-src": ("'self'",),
    "object-src": ("'none'",),
    "base-uri": ("'self'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
}
#: Everything else (JSON, files, assets): nothing to run, nothing to frame. An uploaded image or
#: a download opened directly cannot execute anything either.
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'"


def inline_script_hashes(html: bytes) -> list[str]:
    """CSP ``'sha256-…'`` sources for every inline ``<script>`` in ``html``, in order, without repeats."""
    seen: dict[str, None] = {}
    for m in _INLINE_SCRIPT.finditer(html):
        digest = base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode()
        seen[f"'sha256-{digest}'"] = None
    return list(seen)


def page_policy(*, script_hashes: list[str], connect_src: tuple[str, ...] = (),
                extra: dict[str, tuple[str, ...]] | None = None) -> str:
    """The Content-Security-Policy of one HTML page."""
    directives = {k: list(v) for k, v in PAGE_POLICY.items()}
    directives["script-src"] += script_hashes
    directives["connect-src"] += list(connect_src)
    for key, sources in (extra or {}).items():
        directives.setdefault(key, []).extend(sources)
    return "; ".join(f"{k} {' '.join(dict.fromkeys(v))}" for k, v in directives.items())


def websocket_sources(api_url: str) -> tuple[str, ...]:
    """connect-src sources for the dashboard's websocket and API at ``api_url`` (beyond 'self')."""
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ()
    ws = "wss" if parts.scheme == "https" else "ws"
    return (f"{parts.scheme}://{parts.netloc}", f"{ws}://{parts.netloc}")


class SecurityHeadersMiddleware:
    """Pure ASGI middleware adding the security headers to every HTTP response: the API's and,
    since Reflex mounts itself inside the FastAPI app, the dashboard's pages, assets and events.

    ``Content-Security-Policy`` for an HTML page allows exactly that page's inline scripts (the
    body is read and hashed: Reflex's prerendered pages carry a few, different per page), so no
    ``'unsafe-inline'`` for scripts (see :data:`PAGE_POLICY`). A 304 gets no CSP: the browser would merge it into the cached
    page's headers. Headers a route set itself are kept.
    """

    def __init__(self, app: Any, *, https: bool = False, connect_src: tuple[str, ...] = (),
                 page_extra: dict[str, dict[str, tuple[str, ...]]] | None = None) -> None:
        self.app = app
        self.common = [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "same-origin"),
        ]
        if https:
            self.common.append(("strict-transport-security", "max-age=31536000"))
        self.connect_src = connect_src
        self.page_extra = page_extra or {}

    def _add(self, headers: MutableHeaders, items: list[tuple[str, str]]) -> None:
        for name, value in items:
            if name not in headers:
                headers[name] = value

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                self._add(headers, self.common)
                status = message["status"]
                is_html = headers.get("content-type", "").lower().startswith("text/html")
                if status != 304 and not is_html:
                    self._add(headers, [("content-security-policy", OTHER_POLICY)])
                message = {**message, "headers": headers.raw}
                if status != 304 and is_html:
                    held["start"], held["headers"] = message, headers
                    return
                await send(message)
                return
            if message["type"] == "http.response.pathsend" and "start" in held:
                # the server sends the file itself (granian's zero-copy extension): read it to hash
                headers = held["headers"]
                if "content-security-policy" not in headers:
                    body = await asyncio.to_thread(Path(message["path"]).read_bytes)
                    headers["content-security-policy"] = self._page_csp(scope["path"], body, headers)
                await send({**held["start"], "headers": headers.raw})
                await send(message)
                return
            if message["type"] == "http.response.body" and "start" in held:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = b"".join(chunks)
                headers = held["headers"]
                if "content-security-policy" not in headers:
                    headers["content-security-policy"] = self._page_csp(scope["path"], body, headers)
                await send({**held["start"], "headers": headers.raw})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _page_csp(self, path: str, body: bytes, headers: MutableHeaders) -> str:
        encoding = headers.get("content-encoding", "identity").lower()
        hashes: list[str] = []
        if encoding in ("identity", ""):
            hashes = inline_script_hashes(body)
        elif encoding == "gzip":
            hashes = inline_script_hashes(gzip.decompress(body)) if body else []
        else:
            log.warning("cannot read a %s-encoded page at %s: its inline scripts will be refused", encoding, path)
        return page_policy(script_hashes=hashes, connect_src=self.connect_src, extra=self.page_extra.get(path))
