"""Operations: health, the request id, JSON logs that keep phones and tokens out, check-config."""

from __future__ import annotations

import io
import json
import logging
import os
import socket

import pytest

from gc_admin.config import ConfigError, get_settings, load_settings
from tests.support import use_database

REDIS_URL = os.environ.get("GC_TEST_REDIS_URL")


def test_health_reports_worker_database_and_redis(api):
    r = api.get("/api/v1/health")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["status"] == "ok" and body["worker"] == f"{socket.gethostname()}:{os.getpid()}"
    assert body["database"] == {"kind": "sqlite", "ok": True}
    assert body["redis"] == {"configured": False, "kind": None, "ok": None}
    assert body["version"].startswith("1.0")


@pytest.mark.skipif(not REDIS_URL, reason="GC_TEST_REDIS_URL is not set")
def test_health_pings_the_configured_redis(api, monkeypatch):
    monkeypatch.setenv("GC_REDIS_URL", REDIS_URL)
    get_settings.cache_clear()
    assert api.get("/api/v1/health").json()["redis"] == {"configured": True, "kind": "redis", "ok": True}
    monkeypatch.setenv("GC_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    get_settings.cache_clear()
    body = api.get("/api/v1/health").json()
    assert body["status"] == "degraded" and body["redis"]["ok"] is False
    get_settings.cache_clear()


def test_health_is_503_when_the_database_does_not_answer(api, db):
    use_database("postgresql+psycopg://nobody@127.0.0.1:1/none")  # connection refused
    try:
        r = api.get("/api/v1/health")
    finally:
        use_database(db)
    assert r.status_code == 503
    assert r.json()["status"] == "down" and r.json()["database"] == {"kind": "postgresql", "ok": False}


def test_request_id_in_and_out_and_on_every_log_record(api, caplog):
    caplog.set_level(logging.INFO, logger="gc_admin")
    given = "req-0123456789abcdef"
    r = api.get("/api/v1/health", headers={"X-Request-Id": given})
    assert r.headers["x-request-id"] == given
    access = [rec for rec in caplog.records if rec.name == "gc_admin.access" and "/api/v1/health" in rec.getMessage()]
    assert access and access[-1].request_id == given and " 200 " in access[-1].getMessage()
    made = api.get("/api/v1/health").headers["x-request-id"]
    assert len(made) == 32 and made != given
    # A header that could forge log lines or bloat them is replaced, not echoed.
    for bad in ("x" * 65, "a b\nforged", "short"):
        assert api.get("/api/v1/health", headers={"X-Request-Id": bad}).headers["x-request-id"] != bad
    # Errors carry it too (a client quotes it to support).
    assert api.get("/api/v1/no-such", headers={"X-Request-Id": given}).headers["x-request-id"] == given


def test_json_lines_mask_phones_and_tokens():
    from gc_admin.core.logs import configure

    out = io.StringIO()
    configure(fmt="json", stream=out)
    try:
        log = logging.getLogger("gc_admin.test")
        log.info("sign-in for %s with Authorization: Bearer %s", "13812345678",
                 "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl")
        log.warning("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIyIn0.c2lnbmF0dXJlMg leaked")
    finally:
        configure(fmt="text", stream=io.StringIO())
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [x["level"] for x in lines] == ["INFO", "WARNING"]
    assert lines[0]["msg"] == "sign-in for 138****5678 with Authorization: Bearer [redacted]"
    assert lines[1]["msg"] == "token [redacted] leaked"
    assert lines[0]["worker"] == f"{socket.gethostname()}:{os.getpid()}" and lines[0]["logger"] == "gc_admin.test"
    assert "13812345678" not in out.getvalue() and "eyJ" not in out.getvalue()


def test_several_workers_need_redis():
    with pytest.raises(ConfigError, match="GC_WORKERS=3 needs GC_REDIS_URL"):
        load_settings({"GC_WORKERS": "3"})
    s = load_settings({"GC_WORKERS": "3", "GC_REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert (s.workers, s.redis_url) == (3, "redis://127.0.0.1:6379/0")
    assert load_settings({}).workers is None and load_settings({"GC_WORKERS": "1"}).workers == 1
    with pytest.raises(ConfigError, match="GC_REDIS_URL must start with"):
        load_settings({"GC_REDIS_URL": "http://x"})
    assert load_settings({"GC_ENV": "prod", **_prod()}).log_format == "json"
    assert load_settings({}).log_format == "text"


def test_check_config_refuses_a_prod_start_with_workers_and_no_redis(monkeypatch, capsys):
    from gc_admin.cli import main

    for k, v in {**_prod(), "GC_ENV": "prod", "GC_WORKERS": "3"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("GC_REDIS_URL", raising=False)
    monkeypatch.delenv("REFLEX_REDIS_URL", raising=False)
    get_settings.cache_clear()
    try:
        assert main(["check-config"]) == 2
        assert "GC_WORKERS=3 needs GC_REDIS_URL" in capsys.readouterr().err
        monkeypatch.setenv("GC_REDIS_URL", "redis://127.0.0.1:6379/0")
        get_settings.cache_clear()
        assert main(["check-config"]) == 0
        out = capsys.readouterr().out
        assert "workers=3" in out and "redis=127.0.0.1:6379/0" in out
    finally:
        get_settings.cache_clear()


def _prod() -> dict[str, str]:
    from tests.unit.core.test_config import PROD_OK

    return {k: v for k, v in PROD_OK.items() if k != "GC_ENV"}


def test_the_caller_address_behind_a_trusted_proxy(monkeypatch):
    from starlette.requests import Request

    from gc_admin.core.http import client_ip

    def ip(peer: str, forwarded: str | None) -> str | None:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
        return client_ip(Request({"type": "http", "client": (peer, 1234), "headers": headers}))

    get_settings.cache_clear()
    assert ip("127.0.0.1", "203.0.113.9") == "127.0.0.1"  # no proxy trusted: a client could claim any address
    monkeypatch.setenv("GC_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.2")
    get_settings.cache_clear()
    try:
        assert ip("127.0.0.1", "203.0.113.9") == "203.0.113.9"
        assert ip("127.0.0.1", "6.6.6.6, 203.0.113.9, 10.0.0.2") == "203.0.113.9"  # forged left part ignored
        assert ip("127.0.0.1", None) == "127.0.0.1"
        assert ip("198.51.100.7", "203.0.113.9") == "198.51.100.7"  # not a proxy of ours
    finally:
        get_settings.cache_clear()
