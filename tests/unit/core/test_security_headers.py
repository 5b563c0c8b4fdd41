"""Security headers on every response: the API's and the dashboard's (pages, assets) alike."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gc_admin.config import get_settings

SCRIPT = b'window.__ctx = {"a": 1};'
PAGE = (b"<!DOCTYPE html><html><head><script>" + SCRIPT + b"</script>"
        b'<script type="module" src="/assets/app.js"></script></head><body>\xe7\x99\xbb\xe5\xbd\x95</body></html>')


def _sha(data: bytes) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode() + "'"


def _directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        name, *sources = part.split()
        out[name] = sources
    return out


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A built frontend like Reflex's: a prerendered page (and its gzip twin) and an asset."""
    (tmp_path / "login").mkdir()
    (tmp_path / "login" / "index.html").write_bytes(PAGE)
    (tmp_path / "login" / "index.html.gz").write_bytes(gzip.compress(PAGE))
    (tmp_path / "favicon.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    return tmp_path


def _client(monkeypatch, site: Path | None = None, **overrides) -> TestClient:
    """The API app as Reflex runs it: build_api() with the Reflex app (here its static
    frontend mount, as in ``reflex run --env prod``) mounted inside it."""
    import gc_admin.api as api_module
    from reflex.utils.precompressed_staticfiles import PrecompressedStaticFiles

    settings = dataclasses.replace(get_settings(), **overrides)
    monkeypatch.setattr(api_module, "get_settings", lambda: settings)
    app = api_module.build_api()

    @app.get("/_boom")
    def boom() -> None:
        raise RuntimeError("boom")

    if site is not None:
        app.mount("", PrecompressedStaticFiles(directory=site, html=True, encodings=["gzip"]))

    return TestClient(api_module.with_security_headers(app), raise_server_exceptions=False)


def test_the_app_wraps_its_whole_backend_in_the_headers():
    """Reflex applies the transformers in order: the API (which mounts the dashboard inside it),
    then the headers around all of it."""
    from gc_admin.api import with_security_headers
    from gc_admin.gc_admin import app

    assert list(app.api_transformer)[1:] == [with_security_headers]


COMMON = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "same-origin"}


def test_api_responses_carry_the_headers(db, monkeypatch):
    with _client(monkeypatch) as tc:
        for resp in (tc.get("/api/v1/health"), tc.get("/api/v1/no-such-route"),
                     tc.post("/api/v1/admin/auth/login", json={"username": "x", "password": "y"}),
                     tc.get("/_boom")):
            for name, value in COMMON.items():
                assert resp.headers.get(name) == value, (resp.request.url, name)
            assert resp.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
            assert "strict-transport-security" not in resp.headers  # served over plain http
        assert resp.status_code == 500 and resp.json()["error"]["code"] == "INTERNAL_ERROR"


def test_https_public_url_adds_hsts(db, monkeypatch, site):
    with _client(monkeypatch, site, public_url="https://admin.guncai.example") as tc:
        for path in ("/api/v1/health", "/login/", "/favicon.svg"):
            assert tc.get(path).headers["strict-transport-security"] == "max-age=31536000", path


@pytest.mark.parametrize("accept_encoding", ["identity", "gzip"])
def test_pages_allow_exactly_their_own_inline_scripts(db, monkeypatch, site, accept_encoding):
    with _client(monkeypatch, site, api_url="https://admin.guncai.example") as tc:
        resp = tc.get("/login/", headers={"Accept-Encoding": accept_encoding})
    assert resp.status_code == 200 and resp.content == PAGE
    assert resp.headers.get("content-encoding", "identity") == accept_encoding
    for name, value in COMMON.items():
        assert resp.headers[name] == value
    csp = _directives(resp.headers["content-security-policy"])
    # no 'unsafe-inline': only this page's own inline script ('unsafe-eval': Reflex evals the
    # events its server sends, e.g. every toast)
    assert csp["script-src"] == ["'self'", "'unsafe-eval'", _sha(SCRIPT)]
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert csp["default-src"] == ["'self'"] and csp["base-uri"] == ["'self'"]
    assert csp["connect-src"] == ["'self'", "https://admin.guncai.example", "wss://admin.guncai.example"]
    # the body is passed through untouched (a gzip page stays the sidecar file, byte for byte)
    sent = PAGE if accept_encoding == "identity" else (site / "login" / "index.html.gz").read_bytes()
    assert int(resp.headers["content-length"]) == len(sent)


def test_static_assets_carry_the_headers(db, monkeypatch, site):
    with _client(monkeypatch, site) as tc:
        resp = tc.get("/favicon.svg")
    assert resp.status_code == 200
    for name, value in COMMON.items():
        assert resp.headers[name] == value
    assert resp.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_not_modified_carries_no_policy_to_merge_into_the_cached_page(db, monkeypatch, site):
    with _client(monkeypatch, site) as tc:
        etag = tc.get("/login/").headers["etag"]
        resp = tc.get("/login/", headers={"If-None-Match": etag})
    assert resp.status_code == 304
    assert "content-security-policy" not in resp.headers
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_api_docs_may_load_swagger_from_its_cdn(db, monkeypatch):
    with _client(monkeypatch) as tc:
        resp = tc.get("/api/docs")
    assert resp.status_code == 200
    csp = _directives(resp.headers["content-security-policy"])
    assert "https://cdn.jsdelivr.net" in csp["script-src"] and "'unsafe-inline'" not in csp["script-src"]
    assert any(s.startswith("'sha256-") for s in csp["script-src"])  # its inline bootstrap script


def test_pages_sent_by_the_server_itself_are_hashed_too(site):
    """Granian offers ``http.response.pathsend``: Starlette's FileResponse then hands the server a
    path instead of a body. The page must still get its hashes (and be sent at all)."""
    import asyncio

    from reflex.utils.precompressed_staticfiles import PrecompressedStaticFiles

    from gc_admin.core.http import SecurityHeadersMiddleware

    app = SecurityHeadersMiddleware(PrecompressedStaticFiles(directory=site, html=True, encodings=["gzip"]))
    for accept in (b"identity", b"gzip"):
        sent: list[dict] = []
        scope = {"type": "http", "method": "GET", "path": "/login/", "raw_path": b"/login/", "query_string": b"",
                 "headers": [(b"host", b"testserver"), (b"accept-encoding", accept)], "http_version": "1.1",
                 "scheme": "http", "server": ("testserver", 80), "root_path": "",
                 "extensions": {"http.response.pathsend": {}}}

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        asyncio.run(app(scope, receive, send))
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
        headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
        assert _sha(SCRIPT) in _directives(headers["content-security-policy"])["script-src"], accept
        assert sent[1]["path"].endswith(".gz") == (accept == b"gzip")
