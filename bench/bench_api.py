"""A signed-in mini-program request (token check + DB read) against the app's trivial health
endpoint, both served in-process by the same FastAPI app: ``mp_me_vs_health: ratio``."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import rate


def main(scale: float = 1.0) -> None:
    from fastapi.testclient import TestClient

    from gc_admin.api import build_api
    from gc_admin.db import session_scope
    from gc_admin.users.models import MpUser
    from gc_admin.users.service import _grant
    from tests.support import migrate, use_database

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        use_database(url)
        migrate(url)
        with session_scope() as s:
            from gc_admin.core.clock import utcnow

            user = MpUser(phone="13800001111", created_at=utcnow())
            s.add(user)
            s.flush()
            token = _grant(user).token
        client = TestClient(build_api())
        seconds = max(1.0, 5.0 * scale)
        base = rate(client, "/api/v1/health", {}, seconds)
        ours = rate(client, "/api/v1/mp/me", {"Authorization": f"Bearer {token}"}, seconds)
        print(f"mp_me_vs_health: {base / ours:.2f}  (health {base:.0f} req/s, me {ours:.0f} req/s; ratio = time per request / baseline)")
