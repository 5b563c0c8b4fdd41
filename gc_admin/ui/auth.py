"""Staff sign-in state for the dashboard, and the server-side guard every handler calls.

The session token lives in a cookie (``SameSite=Strict``); only its hash is in the
database. The page's ``on_load`` guard decides what the browser shows, but it is not the
security boundary: a Reflex event can be sent without the page, so every handler that reads
or changes data calls :func:`require` itself, which re-reads the session from the database.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import reflex as rx

from gc_admin.accounts import service as accounts
from gc_admin.config import get_settings
from gc_admin.core.errors import DomainError
from gc_admin.core.principal import Principal
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


#: The attribute a guarded (or explicitly public) handler function carries; tests/unit/ui check that
#: every event handler of every dashboard state has it.
GUARD_ATTR = "__gc_guard__"


def public(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a handler that needs no section (sign-in, the page guard, UI-only toggles that read
    and change no data): the exception to :func:`guarded`, stated where a reviewer sees it."""
    setattr(fn, GUARD_ATTR, "public")
    return fn


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
    @public
    async def guard(self, section: str):
        """on_load of every protected page: signed out -> /login; the page shows 无权访问 itself."""
        p = await self._principal()
        self._show(p)
        if p is None:
            path = self.router.url.path or "/"
            return rx.redirect(f"/login?next={quote(path)}")
        return None

    @rx.event
    @public
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
    @public
    async def logout(self):
        token = self.token
        if token:
            p = await self._principal()
            await run_db(lambda s: accounts.end_session(s, token=token, principal=p))
        self.token = ""
        self._show(None)
        return rx.redirect("/login")

    @rx.event
    @public
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


# --- @guarded: the role check no handler can forget ----------------------------------------------

_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("gc_guarded_principal", default=None)



def current_principal() -> Principal:
    """The principal :func:`guarded` admitted to the running handler (only inside one)."""
    p = _current.get()
    if p is None:
        raise RuntimeError("current_principal() outside a @guarded event handler")
    return p


def guarded(section: str | None = None, *, background: bool = False,
            quiet: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a Reflex event handler (under ``@rx.event``) so that it runs only for a signed-in
    staff member whose role may use ``section`` — checked on the server, against the database, at
    every event (:func:`require`). Anyone else gets :func:`denied` and the handler does not run; a
    state may define ``_on_denied(self)`` to clear what it shows first. Inside the handler,
    :func:`current_principal` is the admitted member.

    Works for plain and async-generator handlers; ``background=True`` for
    ``@rx.event(background=True)`` handlers (the check then runs inside ``async with self``).
    ``section=None`` takes the state class's ``SECTION`` (for handlers a mixin shares, such as
    paging); a state without one is refused. ``quiet=True`` refuses without the toast (a timer's
    handler, such as the sidebar badge's tick, must not toast a refusal every few seconds).
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        async def admit(state: rx.State) -> tuple[Principal | None, Any]:
            p = await require(state, section or getattr(type(state), "SECTION", ""))
            if p is not None:
                return p, None
            clear = getattr(state, "_on_denied", None)
            if clear is not None:
                clear()
            return None, None if quiet else await denied(state)

        async def check(state: rx.State) -> tuple[Principal | None, Any]:
            if not background:
                return await admit(state)
            async with state:
                return await admit(state)

        if inspect.isasyncgenfunction(fn):
            @functools.wraps(fn)
            async def gen_wrapper(self, *args: Any, **kwargs: Any):
                p, refusal = await check(self)
                if p is None:
                    yield refusal  # as the preamble it replaces did (``yield await denied(self)``), even None
                    return
                gen = fn(self, *args, **kwargs)
                try:
                    while True:
                        _current.set(p)  # set at every step: the consumer may resume us in another context
                        try:
                            event = await gen.__anext__()
                        except StopAsyncIteration:
                            break
                        yield event
                finally:
                    _current.set(None)
                    await gen.aclose()

            wrapper: Callable[..., Any] = gen_wrapper
        else:
            @functools.wraps(fn)
            async def coro_wrapper(self, *args: Any, **kwargs: Any):
                p, refusal = await check(self)
                if p is None:
                    return refusal
                token = _current.set(p)
                try:
                    return await fn(self, *args, **kwargs)
                finally:
                    _current.reset(token)

            wrapper = coro_wrapper
        setattr(wrapper, GUARD_ATTR, section or "SECTION")
        return wrapper

    return decorate
