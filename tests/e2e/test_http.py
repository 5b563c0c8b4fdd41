"""The HTTP API of the running app (as the mini-program and scripts reach it)."""

from __future__ import annotations

import re

import httpx


def test_openapi_and_docs_are_served(app_server):
    spec = httpx.get(app_server.url("/api/openapi.json"), timeout=30).json()
    for path in ("/api/v1/mp/auth/wechat", "/api/v1/mp/auth/sms/login", "/api/v1/admin/auth/login",
                 "/api/v1/admin/sms/outbox"):
        assert path in spec["paths"]
    docs = httpx.get(app_server.url("/api/docs"), timeout=30)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_cors_allows_only_the_configured_origin(app_server):
    evil = httpx.options(app_server.url("/api/v1/mp/me"), headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}, timeout=30)
    assert evil.headers.get("access-control-allow-origin") is None
    ours = httpx.options(app_server.url("/api/v1/mp/me"), headers={
        "Origin": app_server.base_url, "Access-Control-Request-Method": "GET"}, timeout=30)
    assert ours.headers.get("access-control-allow-origin") == app_server.base_url


def test_sms_login_end_to_end(app_server):
    phone = "13977770001"
    with httpx.Client(base_url=app_server.base_url, timeout=30) as c:
        assert c.post("/api/v1/mp/auth/sms/send", json={"phone": phone}).status_code == 200
        admin = {"Authorization": f"Bearer {app_server.staff_token()}"}
        outbox = c.get("/api/v1/admin/sms/outbox", params={"phone": phone}, headers=admin).json()
        assert "验证码为 ******" in outbox["items"][0]["content"]  # staff never see the code
        inbox = c.get("/sim/sms/_inbox", params={"phone": phone}).json()  # the phone does
        code = re.search(r"验证码为 (\d{6})", inbox["items"][0]["content"]).group(1)
        grant = c.post("/api/v1/mp/auth/sms/login", json={"phone": phone, "code": code}).json()
        me = c.get("/api/v1/mp/me", headers={"Authorization": f"Bearer {grant['token']}"}).json()
        assert me["phone"] == phone
        bad = c.post("/api/v1/mp/auth/sms/login", json={"phone": phone, "code": code})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "SMS_CODE_INVALID"


def test_wechat_login_goes_through_the_real_client_over_loopback(app_server):
    with httpx.Client(base_url=app_server.base_url, timeout=30) as c:
        minted = c.post("/sim/wechat/_mint", json={"openid": "e2e-openid-1", "phone": "13977770002"}).json()
        grant = c.post("/api/v1/mp/auth/wechat", json={"code": minted["code"]}).json()
        assert grant["user"]["phone"] is None
        auth = {"Authorization": f"Bearer {grant['token']}"}
        bound = c.post("/api/v1/mp/auth/wechat/phone", json={"phone_code": minted["phone_code"]}, headers=auth)
        assert bound.status_code == 200, bound.text
        assert bound.json()["user"]["phone"] == "13977770002"
        again = c.post("/api/v1/mp/auth/wechat", json={"code": minted["code"]})
        assert again.status_code == 401 and again.json()["error"]["message"].startswith("微信登录凭证无效")


def test_bad_input_gets_the_envelope_not_a_500(app_server):
    with httpx.Client(base_url=app_server.base_url, timeout=30) as c:
        r = c.post("/api/v1/admin/auth/login", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "BAD_JSON"
        r = c.post("/api/v1/mp/auth/sms/send", json={"phone": "12345"})
        assert r.status_code == 422 and "手机号" in r.json()["error"]["message"]
        r = c.get("/api/v1/nope")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
