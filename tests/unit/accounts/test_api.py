"""Staff automation API (``/api/v1/admin``): token sign-in, throttling, roles, SMS outbox, OpenAPI."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlmodel import select

from gc_admin.accounts.models import LoginAttempt, StaffSession
from gc_admin.audit.models import AuditLog
from gc_admin.config import get_settings
from gc_admin.core.roles import sections_for
from gc_admin.core.security import hash_token
from gc_admin.db import session_scope

LOGIN = "/api/v1/admin/auth/login"
ME = "/api/v1/admin/me"
OUTBOX = "/api/v1/admin/sms/outbox"
CJK = range(0x4E00, 0xA000)


def _chinese(text: str) -> bool:
    return any(ord(ch) in CJK for ch in text)


def _error(resp, status: int, code: str) -> str:
    """Assert the error envelope (exactly ``code`` and a Chinese ``message``) and return the message."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert _chinese(body["error"]["message"]), body
    return body["error"]["message"]


def _login(api, username: str, password: str = "secret2026"):
    return api.post(LOGIN, json={"username": username, "password": password})


def _token(api, username: str, password: str = "secret2026") -> str:
    resp = _login(api, username, password)
    assert resp.status_code == 200, resp.text
    return resp.json()["token"]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- sign-in -------------------------------------------------------------------------------------

def test_login_returns_token_expiry_and_sections(api, make_staff):
    make_staff("chen", "clerk", name="陈静")
    before = dt.datetime.now(dt.timezone.utc)
    resp = _login(api, " CHEN ")  # usernames are case- and space-insensitive
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"token", "expires_at", "user"}
    assert len(body["token"]) >= 32
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert expires.utcoffset() is not None  # ISO-8601 with offset
    hours = get_settings().staff_session_hours
    assert before + dt.timedelta(hours=hours) - dt.timedelta(seconds=5) <= expires
    assert expires <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=hours, seconds=5)
    user = body["user"]
    assert (user["username"], user["display_name"], user["role"], user["role_label"]) == ("chen", "陈静", "clerk", "内勤")
    assert user["sections"] == [x.key for x in sections_for("clerk")]  # roles.py is the single source of truth
    assert "staff" not in user["sections"] and "audit" not in user["sections"]
    # only the token's hash is stored, as an API session, and the sign-in is audited
    with session_scope() as s:
        sess = s.exec(select(StaffSession)).one()
        audit = s.exec(select(AuditLog).where(AuditLog.action == "staff.login")).one()
    assert sess.token_hash == hash_token(body["token"]) and sess.kind == "api" and sess.staff_id == user["id"]
    assert audit.actor_id == str(user["id"]) and audit.summary == "API登录"


def test_me_with_bearer(api, make_staff):
    make_staff("boss", "admin", name="王总")
    token = _token(api, "boss")
    resp = api.get(ME, headers=_auth(token))
    assert resp.status_code == 200, resp.text
    me = resp.json()
    assert (me["username"], me["display_name"], me["role"]) == ("boss", "王总", "admin")
    assert me["sections"] == [x.key for x in sections_for("admin")]
    assert {"home", "staff", "audit", "sms"} <= set(me["sections"])
    # the scheme is case-insensitive, the token is not
    assert api.get(ME, headers={"Authorization": f"bearer {token}"}).status_code == 200
    _error(api.get(ME, headers=_auth(token[::-1])), 401, "UNAUTHORIZED")
    _error(api.get(ME, headers={"Authorization": token}), 401, "UNAUTHORIZED")  # no scheme


def test_wrong_password_is_401_with_chinese_message(api, make_staff):
    make_staff("chen", "clerk")
    msg = _error(_login(api, "chen", "wrong-password1"), 401, "BAD_CREDENTIALS")
    assert msg.startswith("用户名或密码错误")
    # an unknown username gets exactly the same answer
    assert _error(_login(api, "nobody", "wrong-password1"), 401, "BAD_CREDENTIALS") == msg
    with session_scope() as s:
        attempts = s.exec(select(LoginAttempt).order_by(LoginAttempt.id)).all()
        sessions = s.exec(select(StaffSession)).all()
    assert [(a.username, a.success) for a in attempts] == [("chen", False), ("nobody", False)]
    assert sessions == []


def test_sixth_attempt_is_throttled_even_with_the_right_password(api, make_staff):
    make_staff("chen", "clerk")
    messages = [_error(_login(api, "chen", f"wrong-{i}a"), 401, "BAD_CREDENTIALS") for i in range(5)]
    assert "再失败 2 次" in messages[2] and "再失败 1 次" in messages[3]
    msg = _error(_login(api, "chen"), 429, "LOGIN_THROTTLED")
    assert "分钟后再试" in msg
    with session_scope() as s:
        assert s.exec(select(StaffSession)).all() == []
    # the lock is per username: another account (same address) still signs in
    make_staff("wang", "manager")
    assert _login(api, "wang").status_code == 200


def test_disabled_account_answers_exactly_like_a_wrong_password(api, make_staff):
    """A disabled account's right password is not confirmed: same status, code and message as a
    wrong password, and it counts towards the same throttle."""
    from gc_admin.accounts import service

    user = make_staff("chen", "clerk")
    admin = make_staff("boss", "admin")
    make_staff("wang", "clerk")
    with session_scope() as s:
        service.set_enabled(s, actor=service.Principal(admin.id, "boss", "boss", "admin"), staff_id=user.id, enabled=False)

    def answer(resp):
        return resp.status_code, resp.json()

    disabled = [answer(_login(api, "chen")) for _ in range(6)]
    wrong = [answer(_login(api, "wang", "wrong-password1")) for _ in range(6)]
    assert disabled == wrong
    assert _error(_login(api, "nobody", "x"), 401, "BAD_CREDENTIALS") == disabled[0][1]["error"]["message"]
    assert disabled[0] == (401, {"error": {"code": "BAD_CREDENTIALS", "message": "用户名或密码错误"}})
    assert disabled[5][0] == 429 and disabled[5][1]["error"]["code"] == "LOGIN_THROTTLED"
    assert "ACCOUNT_DISABLED" not in str(disabled) and "停用" not in str(disabled)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer "}, {"Authorization": "Bearer garbage"},
     {"Authorization": "Basic Ym9zczpzZWNyZXQyMDI2"}, {"Authorization": "Bearer " + "x" * 500},
     {"Authorization": "garbage"}],
)
def test_me_without_a_valid_token_is_401(api, make_staff, headers):
    make_staff("boss", "admin")
    _token(api, "boss")  # a live session exists; it must not leak into anonymous requests
    assert _error(api.get(ME, headers=headers), 401, "UNAUTHORIZED") == "登录已失效，请重新登录"


def test_revoked_session_token_is_401(api, make_staff):
    from gc_admin.accounts.service import end_session

    make_staff("boss", "admin")
    token = _token(api, "boss")
    with session_scope() as s:
        end_session(s, token=token)
    _error(api.get(ME, headers=_auth(token)), 401, "UNAUTHORIZED")


def test_mini_program_token_is_not_a_staff_token(api):
    mint = api.post("/sim/wechat/_mint", json={"openid": "o-someone"}).json()
    mp_token = api.post("/api/v1/mp/auth/wechat", json={"code": mint["code"]}).json()["token"]
    _error(api.get(ME, headers=_auth(mp_token)), 401, "UNAUTHORIZED")


# --- SMS outbox ------------------------------------------------------------------------------------

def _send_code(api, phone: str) -> None:
    resp = api.post("/api/v1/mp/auth/sms/send", json={"phone": phone})
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("role", ["clerk", "service", "insurer", "supplier", "dispatcher"])
def test_outbox_is_forbidden_to_roles_without_the_section(api, make_staff, role):
    make_staff("someone", role)
    _send_code(api, "13812345678")
    assert _error(api.get(OUTBOX, headers=_auth(_token(api, "someone"))), 403, "FORBIDDEN") == "没有权限执行此操作"


def test_outbox_needs_a_token(api):
    _error(api.get(OUTBOX), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_outbox_lists_messages_newest_first(api, make_staff, role):
    make_staff("boss", role)
    token = _token(api, "boss")
    _send_code(api, "13812345678")
    _send_code(api, "13987654321")
    resp = api.get(OUTBOX, headers=_auth(token))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["total"] == 2
    assert [m["phone"] for m in body["items"]] == ["13987654321", "13812345678"]
    for m in body["items"]:
        assert m["template"] == "login_code" and m["provider"] == "outbox" and m["status"] == "recorded"
        assert "登录验证码" in m["content"] and dt.datetime.fromisoformat(m["created_at"]).utcoffset() is not None
    # filters and paging
    only = api.get(OUTBOX, params={"phone": "1381234"}, headers=_auth(token)).json()
    assert only["total"] == 1 and only["items"][0]["phone"] == "13812345678"
    page = api.get(OUTBOX, params={"limit": 1, "offset": 1}, headers=_auth(token)).json()
    assert page["total"] == 2 and [m["phone"] for m in page["items"]] == ["13812345678"]
    _error(api.get(OUTBOX, params={"limit": 0}, headers=_auth(token)), 422, "VALIDATION_ERROR")
    _error(api.get(OUTBOX, params={"limit": 201}, headers=_auth(token)), 422, "VALIDATION_ERROR")
    _error(api.get(OUTBOX, params={"offset": -1}, headers=_auth(token)), 422, "VALIDATION_ERROR")
    _error(api.get(OUTBOX, params={"phone": "1" * 12}, headers=_auth(token)), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_outbox_masks_login_codes_even_in_dev(api, make_staff, role):
    """The code is for the user: staff see ``******`` (the phone's side, /sim/sms/_inbox, gets it whole)."""
    from gc_admin.integrations.sms.service import messages_to

    make_staff("boss", role)
    _send_code(api, "13812345678")
    with session_scope() as s:
        whole = messages_to(s, phone="13812345678")[0].content
    code = whole.split("验证码为 ")[1][:6]
    assert code.isdigit()
    resp = api.get(OUTBOX, headers=_auth(_token(api, "boss")))
    assert resp.status_code == 200, resp.text
    assert resp.json()["items"][0]["content"] == whole.replace(code, "******")
    assert code not in resp.text
    inbox = api.get("/sim/sms/_inbox", params={"phone": "13812345678"}).json()
    assert inbox["items"][0]["content"] == whole


def test_a_message_that_should_hold_a_code_but_does_not_match_is_hidden():
    from gc_admin.integrations.sms.service import HIDDEN, staff_text

    assert staff_text("login_code", "您的验证码 123456") == HIDDEN
    assert staff_text("new_order", "【滚财车主权益】新订单 GC2026（代驾），请及时处理。").endswith("请及时处理。")
    assert staff_text("login_code", "【滚财车主权益】您的登录验证码为 ******，5 分钟内有效，请勿告诉他人。") == (
        "【滚财车主权益】您的登录验证码为 ******，5 分钟内有效，请勿告诉他人。")  # prod rows: masked when recorded


@pytest.fixture
def api_any(any_db):
    """Like ``api`` but on SQLite and (when configured) PostgreSQL."""
    from fastapi.testclient import TestClient

    from gc_admin.api import build_api
    from gc_admin.integrations import sims

    sims.simulators.cache_clear()
    with TestClient(build_api(), raise_server_exceptions=False) as tc:
        yield tc


def _staff(username: str, role: str) -> None:
    """``make_staff`` without the SQLite-only ``db`` fixture (for ``any_db`` tests)."""
    from gc_admin.accounts.service import create_staff
    from gc_admin.audit.service import SYSTEM

    with session_scope() as s:
        create_staff(s, actor=SYSTEM, username=username, display_name=username, password="secret2026", role=role)


def test_outbox_phone_filter_ignores_non_digits(api_any):
    _staff("boss", "admin")
    token = _token(api_any, "boss")
    _send_code(api_any, "13812345678")
    # a NUL byte used to reach PostgreSQL and fail the query with a 500
    for q in ("138\x001234", "138-1234", "１３８"):
        resp = api_any.get(OUTBOX, params={"phone": q}, headers=_auth(token))
        assert resp.status_code == 200, (q, resp.text)
    assert api_any.get(OUTBOX, params={"phone": "138\x001234"}, headers=_auth(token)).json()["total"] == 1
    assert api_any.get(OUTBOX, params={"phone": "138-1234"}, headers=_auth(token)).json()["total"] == 1


def test_outbox_is_404_outside_dev_and_test(api, make_staff, monkeypatch):
    import gc_admin.integrations.sms.api as sms_api

    make_staff("boss", "admin")
    make_staff("chen", "clerk")
    admin, clerk = _token(api, "boss"), _token(api, "chen")
    _send_code(api, "13812345678")
    assert api.get(OUTBOX, headers=_auth(admin)).json()["total"] == 1  # there is something to leak
    prod = dataclasses.replace(get_settings(), env="prod")
    assert not prod.simulators_enabled
    monkeypatch.setattr(sms_api, "get_settings", lambda: prod)
    resp = api.get(OUTBOX, headers=_auth(admin))
    assert _error(resp, 404, "NOT_FOUND") == "接口不存在"
    assert "items" not in resp.text
    _error(api.get(OUTBOX, headers=_auth(clerk)), 403, "FORBIDDEN")  # roles are still checked first


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
            _error(resp, 404, "NOT_FOUND")


def test_simulators_are_not_mounted_in_prod(db, monkeypatch):
    import gc_admin.api as api_module
    from fastapi.testclient import TestClient

    prod = dataclasses.replace(get_settings(), env="prod")
    monkeypatch.setattr(api_module, "get_settings", lambda: prod)
    with TestClient(api_module.build_api(), raise_server_exceptions=False) as tc:
        _error(tc.post("/sim/wechat/_mint", json={"openid": "o1"}), 404, "NOT_FOUND")
        assert not any(p.startswith("/sim") for p in tc.get("/api/openapi.json").json()["paths"])
        assert tc.get("/api/v1/health").json() == {"ok": True}


# --- OpenAPI ----------------------------------------------------------------------------------------

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
