"""Schemathesis over the whole HTTP API (admin, mini-program, partner, pay): no request gets a 5xx.

Every operation of the app's own OpenAPI document is called in-process (ASGI) with requests generated
from its schema — valid ones and ones that break it (Schemathesis' examples, coverage and fuzzing
phases) — and the only check is ``not_a_server_error``: whatever a client sends is answered with a
4xx or a success, never a 500 or 502. The callers are real: a staff admin's token for ``/admin``, a
mini-program user's token for ``/mp``, a partner API key with every scope for ``/partner``, all made
through the services on a migrated SQLite database that has a catalogue, stock and a paid order.

Bounded so it runs in about a minute on a small machine: at most 100 generated cases per operation
(plus the coverage phase's boundary cases; 100 is what it takes to find ``offset=2**63`` on an
unbounded ``offset``), a fixed seed and ``derandomize`` (CI sees the same cases on every run), no
example database, no deadline, no stateful phase. The module's operations share one database, so
what one creates the next can find.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from gc_admin.api import build_api
from gc_admin.db import session_scope
from tests.support import fresh_sqlite, use_database

# deeper runs by hand: GC_FUZZ_EXAMPLES=1000 GC_FUZZ_SEED=7 pytest tests/unit/core/test_schemathesis.py
MAX_EXAMPLES = int(os.environ.get("GC_FUZZ_EXAMPLES", "100"))
SEED = int(os.environ.get("GC_FUZZ_SEED", "20261122"))

CONFIG = schemathesis.Config.from_dict({
    "seed": SEED,
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    "phases": {"stateful": {"enabled": False}},
})
schema = schemathesis.openapi.from_dict(build_api().openapi(), config=CONFIG)


@pytest.fixture(scope="module")
def world(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One database and one app for the module: the app, its ASGI client, and each caller's headers by path prefix."""
    from gc_admin.accounts import service as accounts
    from gc_admin.audit.service import SYSTEM
    from gc_admin.integrations import sims
    from gc_admin.partners import service as partners
    from gc_admin.users import service as users
    from gc_admin.users.models import MpUser
    from schemathesis.python.asgi import get_client
    from tests.support import wired
    from tests.unit.orders.support import buy, pay, shop

    url = fresh_sqlite(sqlite_template, tmp_path_factory.mktemp("schemathesis"))
    use_database(url)
    sims.simulators.cache_clear()
    app = build_api()
    with wired(app) as w, get_client(app) as client:
        shop()
        with session_scope() as s:
            accounts.create_staff(s, actor=SYSTEM, username="fuzz_admin", display_name="fuzz", password="secret2026",
                                  role="admin")
        with session_scope() as s:
            admin = accounts.authenticate(s, username="fuzz_admin", password="secret2026", ip="10.0.0.1")
            staff_token, _ = accounts.start_session(s, principal=admin, kind="api")
        with session_scope() as s:
            _, api_key = partners.create_key(s, actor=admin, partner_name="人保俱乐部", programme_code="picc_gx",
                                             scopes=list(partners.SCOPES))
        minted = client.post("/sim/wechat/_mint", json={"openid": "o-fuzz", "phone": "13812345678"}).json()
        with session_scope() as s:
            grant = users.wechat_login(s, code=minted["code"], ip="10.0.0.2")
        with session_scope() as s:
            me = s.get(MpUser, grant.user.id)
            grant = users.bind_phone(s, user=me, phone_code=minted["phone_code"], ip="10.0.0.2")
        pay(w, buy(grant.user, 1))  # a paid order, its coupon and ledger rows: lists and lookups have rows
        yield {
            "url": url, "app": app, "client": client,
            "headers": {  # /api/v1/pay/* (WeChat Pay's callbacks) and /api/v1/health take none
                "/api/v1/admin/": {"Authorization": f"Bearer {staff_token}"},
                "/api/v1/mp/": {"Authorization": f"Bearer {grant.token}"},
                "/api/v1/partner/": {"X-Api-Key": api_key},
            },
        }


@pytest.fixture
def api(world: dict[str, Any]) -> dict[str, Any]:
    use_database(world["url"])  # the module's database, whatever a test in between pointed the app at
    return world


def _headers(api: dict[str, Any], path: str) -> dict[str, str]:
    return next((h for prefix, h in api["headers"].items() if path.startswith(prefix)), {})


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case, api) -> None:
    case.call_and_validate(app=api["app"], session=api["client"], headers=_headers(api, case.path),
                           checks=[not_a_server_error])
