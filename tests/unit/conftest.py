"""Unit/API test fixtures: every test gets its own migrated database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gc_admin.audit.service import Actor
from tests.support import InProcessTransport, fresh_pg, fresh_sqlite, migrate, use_database

PG_URL = os.environ.get("GC_TEST_PG_URL")
SYSTEM = Actor("system", None, "测试")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test copies the file (fast and fully isolated)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_db(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    url = fresh_sqlite(sqlite_template, tmp_path)
    use_database(url)
    yield url


@pytest.fixture
def pg_db() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("GC_TEST_PG_URL is not set: PostgreSQL tests need a server")
    for url in fresh_pg(PG_URL):
        use_database(url)
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test on SQLite and (when configured) on PostgreSQL."""
    name = "sqlite_db" if request.param == "sqlite" else "pg_db"
    yield request.getfixturevalue(name)


@pytest.fixture
def db(sqlite_db: str) -> str:
    return sqlite_db


@pytest.fixture
def api(db: str) -> Iterator[TestClient]:
    """The HTTP API in-process, with the WeChat client routed into the mounted simulator."""
    from gc_admin.api import build_api
    from gc_admin.integrations import sims
    from gc_admin.integrations.wechat import client as wx

    sims.simulators.cache_clear()
    app = build_api()
    with TestClient(app, raise_server_exceptions=False) as tc:
        wx.set_transport(InProcessTransport(app))
        try:
            yield tc
        finally:
            wx.set_transport(None)


@pytest.fixture
def make_staff(db: str):
    from gc_admin.accounts.service import create_staff
    from gc_admin.db import session_scope

    def _make(username: str, role: str, password: str = "secret2026", **kw):
        with session_scope() as s:
            return create_staff(s, actor=SYSTEM, username=username, display_name=kw.pop("name", username), password=password,
                                role=role, **kw)

    return _make
