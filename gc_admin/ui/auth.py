"""Staff sign-in state for the dashboard, and the server-side guard every handler calls.

The session token lives in a cookie (``SameSite=Strict``); only its hash is in the
database. The page's ``on_load`` guard decides what the browser shows, but it is not the
security boundary: a Reflex event can be sent without the page, so every handler that reads
or changes data calls :func:`require` itself, which re-reads the session from the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import reflex as rx

from gc_admin.accounts import service as accounts
from gc_admin.accounts.service import Principal
from gc_admin.config import get_settings
from gc_admin.core.errors import DomainError
from gc_admin.config import Settings
from gc_admin.core.roles import ROLE_LABELS, SECTIONS, may, sections_for
from gc_admin.db import session_scope

T = TypeVar("T")

COOKIE_NAME = "gc_staff_token"

#: Where sign-in may send the browser back to: the dashboard's own pages, nothing else.
RETURN_ROUTES = frozenset(s.route for s in SECTIONS)


def safe_next(nxt: object) -> str:
    """The page ``?next=`` names if it is one of the dashboard's sections, else home.

    Checking the shape of the value ("starts with / but not //") is not enough: browsers read
    ``/\\evil.example`` as ``//evil.example`` and drop tabs and newlines, so only a known route
    (with or without the trailing slash the prod server adds) is accepted.
    """
    if not isinstance(nxt, str):
        return "/"
    path = nxt[:-1] if len(nxt) > 1 and nxt.endswith("/") else nxt
    return path if path in RETURN_ROUTES else "/"


def staff_cookie(settings: Settings) -> rx.Cookie:
    """The session cookie: never sent cross-site, and only over HTTPS when the public URL is HTTPS."""
    return rx.Cookie("", name=COOKIE_NAME, same_site="strict", secure=settings.https,
                     max_age=settings.staff_session_hours * 3600)


async def run_db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking database work off the event loop, in its own unit of work."""

    def _work() -> T:
        with session_scope() as session:
            return fn(session, *args, **kwargs)

    return await asyncio.to_thread(_work)


class AuthState(rx.State):
    token: str = staff_cookie(get_settings())
    username: str = ""
    display_name: str = ""
    role: str = ""
    role_label: str = ""
    sections: list[str] = []
    checked: bool = False
    login_error: str = ""
    login_busy: bool = False

    @rx.var
    def signed_in(self) -> bool:
        return self.role != ""

    def _ip(self) -> str | None:
        try:
            return self.router.session.client_ip or None
        except Exception:  # pragma: no cover - router not populated in some unit tests
            return None

    async def _principal(self) -> Principal | None:
        token = self.token
        if not token:
            return None
        return await run_db(accounts.resolve_session, token, ip=self._ip())

    def _show(self, p: Principal | None) -> None:
        if p is None:
            self.username = self.display_name = self.role = self.role_label = ""
            self.sections = []
        else:
            self.username, self.display_name, self.role = p.username, p.display_name, p.role
            self.role_label = ROLE_LABELS.get(p.role, p.role)
            self.sections = [s.key for s in sections_for(p.role)]
        self.checked = True

    @rx.event
    async def guard(self, section: str):
        """on_load of every protected page: signed out -> /login; the page shows 无权访问 itself."""
        p = await self._principal()
        self._show(p)
        if p is None:
            path = self.router.url.path or "/"
            return rx.redirect(f"/login?next={quote(path)}")
        return None

    @rx.event
    async def login(self, form: dict[str, Any]):
        username = str(form.get("username", "")).strip()
        password = str(form.get("password", ""))
        if not username or not password:
            self.login_error = "请输入用户名和密码"
            return
        self.login_busy = True
        yield
        try:
            def _sign_in(session):
                principal = accounts.authenticate(session, username=username, password=password, ip=self._ip())
                token, _ = accounts.start_session(session, principal=principal, kind="web")
                return principal, token

            principal, token = await run_db(_sign_in)
        except DomainError as exc:
            self.login_error = exc.message
            self.login_busy = False
            return
        self.token = token
        self.login_error = ""
        self.login_busy = False
        self._show(principal)
        nxt = self.router.url.query_parameters.get("next", "/") if self.router.url else "/"
        yield rx.redirect(safe_next(nxt))

    @rx.event
    async def logout(self):
        token = self.token
        if token:
            p = await self._principal()
            await run_db(lambda s: accounts.end_session(s, token=token, principal=p))
        self.token = ""
        self._show(None)
        return rx.redirect("/login")

    @rx.event
    async def login_page_load(self):
        """On /login: an already signed-in staff member goes straight to the dashboard."""
        self.login_error = ""
        p = await self._principal()
        self._show(p)
        if p is not None:
            return rx.redirect("/")
        return None


async def require(state: rx.State, section: str) -> Principal | None:
    """The signed-in principal if they may use ``section``; ``None`` otherwise.

    Call at the top of every event handler that reads or changes data.
    """
    auth = await state.get_state(AuthState)
    p = await auth._principal()
    if p is None or not may(p.role, section):
        return None
    return p


async def denied(state: rx.State) -> Any:
    """What a handler returns when :func:`require` said no: a toast for a signed-in member
    without the role; nothing for a signed-out browser (the page guard redirects it)."""
    auth = await state.get_state(AuthState)
    if not auth.token:
        return None
    return rx.toast.error("没有权限执行此操作，或登录已失效")
