"""``GET /api/v1/health``: what a load balancer and an operator ask of one worker.

``{"status", "worker", "database": {"kind", "ok"}, "redis": {"configured", "kind", "ok"}, "version"}``:
``status`` is ``ok``, ``degraded`` (Redis configured but not answering: the dashboard's sessions live there)
or ``down`` (the database does not answer: HTTP 503, so the balancer takes this host out). ``worker`` is
:func:`gc_admin.core.logs.worker_id` (host and pid): requests spread over workers show different ones.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
from typing import Any

from sqlalchemy import text

from gc_admin.config import get_settings
from gc_admin.core.logs import worker_id
from gc_admin.db import get_engine

log = logging.getLogger(__name__)
APP_VERSION = "1.0"


@functools.lru_cache(maxsize=1)
def version() -> str:
    try:
        reflex = importlib.metadata.version("reflex")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - reflex is a dependency
        reflex = "?"
    return f"{APP_VERSION} (reflex {reflex})"


@functools.lru_cache(maxsize=4)
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)


def _database() -> dict[str, Any]:
    engine = get_engine()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        ok = True
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable" to the balancer
        log.warning("health: database check failed: %s", type(exc).__name__)
        ok = False
    return {"kind": engine.dialect.name, "ok": ok}


def _redis_check(url: str) -> dict[str, Any]:
    if not url:
        return {"configured": False, "kind": None, "ok": None}
    try:
        ok = bool(_redis(url).ping())
    except Exception as exc:  # noqa: BLE001
        log.warning("health: redis check failed: %s", type(exc).__name__)
        ok = False
    return {"configured": True, "kind": "redis", "ok": ok}


def report() -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of a health check."""
    database = _database()
    redis_state = _redis_check(get_settings().redis_url)
    status = "down" if not database["ok"] else ("degraded" if redis_state["ok"] is False else "ok")
    body = {"status": status, "worker": worker_id(), "database": database, "redis": redis_state,
            "version": version()}
    return (503 if status == "down" else 200), body
