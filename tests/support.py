"""Shared test plumbing: isolated databases (SQLite per test, PostgreSQL schema per test)."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncio

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from gc_admin import db
from gc_admin.config import get_settings


def use_database(url: str) -> None:
    """Point the app at ``url`` (settings re-read, pooled connections dropped)."""
    os.environ["GC_DATABASE_URL"] = url
    get_settings.cache_clear()
    db.dispose_engines()


def migrate(url: str) -> None:
    from gc_admin.cli import migrate as run

    run(url)


def fresh_sqlite(template: Path, tmp: Path) -> str:
    target = tmp / "gc_test.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def pg_schema_url(base_url: str, schema: str) -> str:
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-csearch_path%3D{schema}"


def fresh_pg(base_url: str) -> Iterator[str]:
    """A new, migrated PostgreSQL schema for one test; dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = pg_schema_url(base_url, schema)
    try:
        migrate(url)
        yield url
    finally:
        db.dispose_engines()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


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
