"""The API app as ``gc_admin.api.build_api`` wires it: the simulators are mounted only in dev/test on loopback
(or with explicit consent), never in prod; the OpenAPI document lists the v1 paths; the docs page renders."""

from __future__ import annotations

import dataclasses

import pytest

from gc_admin.config import get_settings
from tests.support import api_error


# --- simulators ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("host, allowed, mounted", [("0.0.0.0", False, False), ("192.168.1.20", False, False),
                                                    ("0.0.0.0", True, True), ("127.0.0.1", False, True)])
def test_simulators_beyond_loopback_are_mounted_only_with_consent(db, monkeypatch, host, allowed, mounted):
    import gc_admin.api as api_module
    from fastapi.testclient import TestClient

    s = dataclasses.replace(get_settings(), env="dev", host=host, allow_simulators=allowed)
    monkeypatch.setattr(api_module, "get_settings", lambda: s)
    with TestClient(api_module.build_api(), raise_server_exceptions=False) as tc:
        resp = tc.post("/sim/wechat/_mint", json={"openid": "o1", "phone": "13812345678"})
        if mounted:
            assert resp.status_code == 200, resp.text
        else:
            api_error(resp, 404, "NOT_FOUND")


def test_simulators_are_not_mounted_in_prod(db, monkeypatch):
    import gc_admin.api as api_module
    from fastapi.testclient import TestClient

    prod = dataclasses.replace(get_settings(), env="prod")
    monkeypatch.setattr(api_module, "get_settings", lambda: prod)
    with TestClient(api_module.build_api(), raise_server_exceptions=False) as tc:
        api_error(tc.post("/sim/wechat/_mint", json={"openid": "o1"}), 404, "NOT_FOUND")
        assert not any(p.startswith("/sim") for p in tc.get("/api/openapi.json").json()["paths"])
        assert tc.get("/api/v1/health").json()["status"] == "ok"


# --- OpenAPI ------------------------------------------------------------------------------------------

def test_openapi_lists_the_v1_paths(api):
    resp = api.get("/api/openapi.json")
    assert resp.status_code == 200
    spec = resp.json()
    assert spec["info"]["title"] == "gc_admin API"
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/admin/auth/login", "post"), ("/api/v1/admin/me", "get"), ("/api/v1/admin/sms/outbox", "get"),
        ("/api/v1/mp/auth/wechat", "post"), ("/api/v1/mp/auth/wechat/phone", "post"), ("/api/v1/mp/auth/sms/send", "post"),
        ("/api/v1/mp/auth/sms/login", "post"), ("/api/v1/mp/me", "get"), ("/api/v1/health", "get"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} missing from OpenAPI"
    assert not any(p.startswith("/sim") for p in paths)  # simulators are not part of the contract
    login_body = paths["/api/v1/admin/auth/login"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    ref = login_body["$ref"].rsplit("/", 1)[-1]
    schema = spec["components"]["schemas"][ref]
    assert set(schema["required"]) == {"username", "password"}
    assert schema.get("additionalProperties") is False  # unknown fields are documented as refused


def test_docs_page_is_html(api):
    resp = api.get("/api/docs")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "swagger" in resp.text.lower() and "/api/openapi.json" in resp.text
