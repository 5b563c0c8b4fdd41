"""Shared test support (the fixtures built on it live in ``tests/unit/conftest.py``).

- databases: a migrated SQLite file or PostgreSQL schema per test;
- wiring: the app's WeChat and WeChat Pay clients routed into the simulators mounted in the same app
  (:func:`wired`), all in-process;
- :func:`race`: threads released at once by a barrier;
- factories and SQL: :func:`make_user` (a mini-program user), :func:`scalar`, :func:`rows`;
- HTTP answers: :func:`api_error` (the error envelope), staff and mini-program sign-in over the API;
- Reflex states: :func:`sign_in` (a real staff session), :func:`state_of`, :func:`drain`, :func:`toasts`,
  :func:`downloads` ... — a state is built the way Reflex's own unit tests build it
  (``rx.State(_reflex_internal_init=True)``), with the session token where the cookie would put it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import reflex as rx
import sqlalchemy as sa
from fastapi import FastAPI

from gc_admin import db
from gc_admin.config import get_settings
from gc_admin.core import tasks
from gc_admin.core.clock import utcnow
from gc_admin.core.principal import Actor
from gc_admin.users.models import MpUser

#: Who builds a test's world (audit rows name it).
SETUP = Actor("system", None, "测试")
#: Every staff account a test creates has this password unless it says otherwise.
PASSWORD = "secret2026"


def use_database(url: str) -> None:
    """Point the app at ``url`` (settings re-read, pooled connections dropped)."""
    os.environ["GC_DATABASE_URL"] = url
    get_settings.cache_clear()
    db.dispose_engines()
    tasks.reset()


def migrate(url: str) -> None:
    from gc_admin.cli import migrate as run

    run(url)


def run_queued() -> None:
    """Run the background tasks waiting in the queue, here and now, as a worker would (the periodic jobs are
    not run unless queued): e.g. the clerks' notice queued by a paid order."""
    import gc_admin.tasks  # noqa: F401  (every task registered)

    tasks.run_waiting()


def include_name(name, type_, parent_names) -> bool:
    """Schema comparisons skip procrastinate's tables (the task queue's own schema, applied by a migration)."""
    return not (type_ == "table" and (name or "").startswith("procrastinate_"))


def fresh_sqlite(template: Path, tmp: Path) -> str:
    target = tmp / "gc_test.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def pg_schema_url(base_url: str, schema: str) -> str:
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-csearch_path%3D{schema}"


def scratch_pg(admin_url: str, *, url: str, create: str, drop: str) -> Iterator[str]:
    """Run ``create`` (DDL, on ``admin_url``), migrate ``url`` and yield it; afterwards dispose of the
    app's engines and run ``drop``."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(create))
    try:
        migrate(url)
        yield url
    finally:
        db.dispose_engines()
        with admin.connect() as c:
            c.execute(sa.text(drop))
        admin.dispose()


def fresh_pg(base_url: str) -> Iterator[str]:
    """A new, migrated PostgreSQL schema for one test; dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield from scratch_pg(base_url, url=pg_schema_url(base_url, schema), create=f'CREATE SCHEMA "{schema}"',
                          drop=f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class InProcessTransport(httpx.BaseTransport):
    """A sync httpx transport that serves requests from an ASGI app in-process (no socket).

    ``httpx.ASGITransport`` is async-only, so each request runs it to completion in a fresh event
    loop. (Starlette's ``TestClient`` would also bridge, but in starlette 1.10 it switches to the
    ``httpx2`` package whenever that is installed, and then its requests are not ``httpx`` ones.)
    """

    def __init__(self, app: FastAPI) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def run() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return asyncio.run(run())


@dataclasses.dataclass
class Wired:
    app: FastAPI
    state: Any  # the app's WeChat Pay simulator (integrations.wechatpay.simulator.WxPaySimState)
    transport: InProcessTransport
    delivered: list[int]  # the status of every notify the simulator delivered into the app

    def post(self, path: str, headers: Mapping[str, str], body: bytes) -> httpx.Response:
        with httpx.Client(transport=self.transport, base_url="http://testserver") as c:
            return c.post(path, headers=dict(headers), content=body)


@contextlib.contextmanager
def wired(app: FastAPI | None = None) -> Iterator[Wired]:
    """The app's WeChat, WeChat Pay and Alipay clients, and the WeChat Pay simulator's notify delivery, all into
    ``app`` in-process (a new app when none is given): tests pay, get notified and refund through the real
    client, routes and protocol."""
    from gc_admin.api import build_api
    from gc_admin.integrations import sims
    from gc_admin.integrations.alipay import setup as alipay
    from gc_admin.integrations.wechat import client as wx
    from gc_admin.integrations.wechatpay import setup

    if app is None:
        sims.simulators.cache_clear()
        app = build_api()
    transport = InProcessTransport(app)
    setup.set_transport(transport)
    wx.set_transport(transport)
    alipay.set_transport(transport)
    state = sims.simulators().wxpay
    delivered: list[int] = []

    def deliver(url: str, headers: Mapping[str, str], body: bytes) -> int:
        with httpx.Client(transport=transport) as c:
            status = c.post(url, headers=dict(headers), content=body).status_code
        delivered.append(status)
        return status

    state.deliver = deliver
    try:
        yield Wired(app=app, state=state, transport=transport, delivered=delivered)
    finally:
        setup.set_transport(None)
        wx.set_transport(None)
        alipay.set_transport(None)


def race(n: int, work: Callable[[int], Any], *, timeout: float = 120) -> list[Any]:
    """Run ``work(i)`` in n threads released at once by a barrier (each opens its own unit of work);
    returns their results, or the exceptions they raised. On SQLite the threads share the test's
    database file, so the race is as real as on PostgreSQL."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()  # before taking a connection, so every thread starts together
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a racing thread hung"
    return results


def statuses(answers: list[Any]) -> Counter:
    """How many racing HTTP answers had each status (an error as ``(status, code)``); no exception allowed."""
    assert not [a for a in answers if isinstance(a, Exception)], answers
    return Counter(a.status_code if a.status_code < 300 else (a.status_code, a.json()["error"]["code"])
                   for a in answers)


def only_one_created(results: list[Any], code: str) -> None:
    """Exactly one racer created the thing; every other got the Conflict ``code`` with a Chinese message."""
    from gc_admin.core.errors import Conflict

    assert len([r for r in results if not isinstance(r, Exception)]) == 1, results
    assert Counter(r.code if isinstance(r, Conflict) else repr(r) for r in results if isinstance(r, Exception)) == {
        code: len(results) - 1}, results
    assert all(CJK.search(r.message) for r in results if isinstance(r, Conflict))


# --- SQL and factories -------------------------------------------------------------------------------

@contextlib.contextmanager
def refused(error: type[Exception], code: str) -> Iterator[Any]:
    """The block must raise ``error`` (a ``DomainError``) with ``code``: ``with refused(Conflict, "USERNAME_TAKEN"): …``.
    Yields pytest's ``ExceptionInfo`` for further checks (its message)."""
    with pytest.raises(error) as err:
        yield err
    assert err.value.code == code, (err.value.code, code)


def scalar(sql: str, **params: Any) -> Any:
    with db.session_scope() as s:
        return s.execute(sa.text(sql), params).scalar_one()


def rows(sql: str, **params: Any) -> list[tuple]:
    with db.session_scope() as s:
        return [tuple(r) for r in s.execute(sa.text(sql), params).all()]


def make_user(phone: str | None = "13812345678", *, openid: str | None = None, **fields: Any) -> MpUser:
    """A mini-program user, in its own unit of work (``fields``: city, nickname, ...)."""
    with db.session_scope() as s:
        user = MpUser(phone=phone, openid=openid, created_at=utcnow(), **fields)
        s.add(user)
        s.flush()
        s.refresh(user)
        return user


# --- the HTTP API ------------------------------------------------------------------------------------

CJK = re.compile(r"[\u4e00-\u9fff]")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_error(resp: httpx.Response, status: int, code: str) -> str:
    """Assert the error envelope — exactly ``status``, ``{"error": {...}}`` with exactly ``code`` and a Chinese
    ``message`` — and return the message."""
    assert resp.status_code == status, f"{resp.status_code}: {resp.text[:500]}"
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert CJK.search(body["error"]["message"]), body
    return body["error"]["message"]


def staff_token(api: Any, username: str, password: str = PASSWORD) -> str:
    """A staff member signs in over the API (``POST /api/v1/admin/auth/login``)."""
    resp = api.post("/api/v1/admin/auth/login", json={"username": username, "password": password})
    assert resp.status_code == 200, resp.text
    return resp.json()["token"]


def staff_headers(api: Any, username: str, password: str = PASSWORD) -> dict[str, str]:
    return bearer(staff_token(api, username, password))


def sms_code(phone: str = "13812345678") -> str:
    """The latest sign-in code as the phone received it (staff's outbox masks it)."""
    from gc_admin.integrations.sms.service import messages_to

    with db.session_scope() as s:
        sent = messages_to(s, phone=phone)
    assert sent, f"no SMS recorded for {phone}"
    m = re.search(r"验证码为 (\d{6})", sent[0].content)
    assert m, sent[0].content
    return m.group(1)


def send_sms_code(api: Any, phone: str = "13812345678") -> None:
    """A mini-program user asks for a sign-in code (``POST /api/v1/mp/auth/sms/send``)."""
    resp = api.post("/api/v1/mp/auth/sms/send", json={"phone": phone})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"sent": True, "cooldown_seconds": 60}


def sms_sign_in(api: Any, phone: str = "13812345678") -> dict[str, Any]:
    """A mini-program user signs in with an SMS code; returns the grant (token, user)."""
    send_sms_code(api, phone)
    resp = api.post("/api/v1/mp/auth/sms/login", json={"phone": phone, "code": sms_code(phone)})
    assert resp.status_code == 200, resp.text
    return resp.json()


def sms_user(api: Any, phone: str) -> dict[str, str]:
    """The headers of a mini-program user signed in with an SMS code (no WeChat identity)."""
    return bearer(sms_sign_in(api, phone)["token"])


def mint(api: Any, openid: str, phone: str | None = None) -> dict[str, str]:
    """The WeChat simulator mints a ``wx.login`` code (and a phone code when ``phone`` is given)."""
    resp = api.post("/sim/wechat/_mint", json={"openid": openid, **({"phone": phone} if phone else {})})
    assert resp.status_code == 200, resp.text
    return resp.json()


def wechat_sign_in(api: Any, openid: str) -> dict[str, Any]:
    """A mini-program user signs in with WeChat; returns the grant (token, user)."""
    resp = api.post("/api/v1/mp/auth/wechat", json={"code": mint(api, openid)["code"]})
    assert resp.status_code == 200, resp.text
    return resp.json()


def wechat_user(api: Any, openid: str, phone: str | None) -> dict[str, str]:
    """The headers of a WeChat user who bound ``phone`` (none when ``phone`` is None)."""
    minted = mint(api, openid, phone)
    resp = api.post("/api/v1/mp/auth/wechat", json={"code": minted["code"]})
    assert resp.status_code == 200, resp.text
    headers = bearer(resp.json()["token"])
    if phone:
        bound = api.post("/api/v1/mp/auth/wechat/phone", json={"phone_code": minted["phone_code"]}, headers=headers)
        assert bound.status_code == 200, bound.text
    return headers


# --- Reflex states -----------------------------------------------------------------------------------

#: What a handler toasts when the session's role may not do it (or the session is gone).
DENIED = "没有权限执行此操作，或登录已失效"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def sign_in(username: str, password: str = PASSWORD) -> str:
    """A real web session of ``username``: its token, as the session cookie holds it."""
    from gc_admin.accounts import service as accounts

    with db.session_scope() as s:
        p = accounts.authenticate(s, username=username, password=password, ip="10.0.0.9")
        token, _ = accounts.start_session(s, principal=p, kind="web")
    return token


async def state_of(cls: type[rx.State], token: str = "") -> Any:
    """A fresh browser tab's ``cls`` state, with the session cookie set to ``token``."""
    from gc_admin.ui.auth import AuthState

    root = rx.State(_reflex_internal_init=True)
    (await root.get_state(AuthState)).token = token
    return await root.get_state(cls)


async def drain(gen: Any) -> list[Any]:
    """Run an event handler that yields (async generator) or returns (coroutine); collect what it emits."""
    if hasattr(gen, "__anext__"):
        return [x async for x in gen]
    return [await gen]


def flat(events: list[Any]) -> list[Any]:
    out = []
    for e in events:
        out += e if isinstance(e, list) else [e]
    return out


def toast(spec: Any) -> tuple[str, str]:
    """(kind, message) of an ``rx.toast.*`` event returned by a handler."""
    assert isinstance(spec, rx.event.EventSpec), spec
    js = spec.args[0][1]._js_expr
    m = re.search(r'\["(success|error|info|warning)"\]\((".*?")[,)]', js)
    assert m, js
    return m.group(1), json.loads(m.group(2))


def toasts(events: list[Any]) -> list[tuple[str, str]]:
    """(kind, message) of every toast among the events."""
    return [toast(e) for e in flat(events)
            if isinstance(e, rx.event.EventSpec) and e.args and "toast" in str(e.args[0][1]._js_expr)]


def downloads(events: list[Any]) -> list[tuple[str, str, bytes]]:
    """(filename, mime type, bytes) of every ``rx.download(data=...)`` among the events."""
    out = []
    for e in flat(events):
        if isinstance(e, rx.event.EventSpec) and e.handler.fn.__qualname__ == "_download":
            args = {k._js_expr: json.loads(str(v)) for k, v in e.args}
            head, body = args["url"].split(",", 1)
            out.append((args["filename"], head.removeprefix("data:").split(";")[0], base64.b64decode(body)))
    return out


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def exported(events: list[Any]) -> tuple[str, Any]:
    """(filename, rows as a polars frame) of the one Excel export among the events."""
    import polars as pl

    [(name, mime, data)] = downloads(events)
    assert mime == XLSX and name.endswith(".xlsx")
    return name, pl.read_excel(io.BytesIO(data))


def downloaded(spec: Any) -> tuple[str, bytes]:
    """(filename, bytes) of the one ``rx.download(data=...)`` event a handler returned."""
    [(name, _mime, data)] = downloads([spec])
    return name, data


def redirect_path(spec: Any) -> str:
    assert isinstance(spec, rx.event.EventSpec), spec
    assert spec.handler.fn.__qualname__ == "_redirect", spec
    args = {k._js_expr: v for k, v in spec.args}
    return args["path"]._var_value


def upload_file(data: bytes, name: str = "upload.csv") -> rx.UploadFile:
    """What Reflex hands an upload handler (``rx.upload_files``): its own file over the bytes, read to EOF."""
    return rx.UploadFile(file=io.BytesIO(data), path=Path(name), size=len(data))


async def upload_chunks(data: bytes, filename: str, chunk: int = 4096) -> Any:
    """What Reflex hands a chunked (background) upload handler: a real ``UploadChunkIterator`` over the bytes."""
    from reflex_components_core.core._upload import UploadChunk, UploadChunkIterator

    it = UploadChunkIterator(maxsize=len(data) // chunk + 2)
    for off in range(0, len(data), chunk):
        await it.push(UploadChunk(filename=filename, offset=off, content_type="text/csv", data=data[off:off + chunk]))
    await it.finish()
    return it
