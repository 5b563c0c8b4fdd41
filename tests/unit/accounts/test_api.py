"""Staff sign-in over the API (``/api/v1/admin``): tokens, throttling, disabled accounts, ``/me``."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from gc_admin.accounts.models import LoginAttempt, StaffSession
from gc_admin.audit.models import AuditLog
from gc_admin.config import get_settings
from gc_admin.core.roles import sections_for
from gc_admin.core.security import hash_token
from gc_admin.db import session_scope
from tests.support import api_error, bearer, staff_token, wechat_sign_in

LOGIN = "/api/v1/admin/auth/login"
ME = "/api/v1/admin/me"


def _login(api, username: str, password: str = "secret2026"):
    return api.post(LOGIN, json={"username": username, "password": password})


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
    token = staff_token(api, "boss")
    resp = api.get(ME, headers=bearer(token))
    assert resp.status_code == 200, resp.text
    me = resp.json()
    assert (me["username"], me["display_name"], me["role"]) == ("boss", "王总", "admin")
    assert me["sections"] == [x.key for x in sections_for("admin")]
    assert {"home", "staff", "audit", "sms"} <= set(me["sections"])
    # the scheme is case-insensitive, the token is not
    assert api.get(ME, headers={"Authorization": f"bearer {token}"}).status_code == 200
    api_error(api.get(ME, headers=bearer(token[::-1])), 401, "UNAUTHORIZED")
    api_error(api.get(ME, headers={"Authorization": token}), 401, "UNAUTHORIZED")  # no scheme


def test_wrong_password_is_401_with_chinese_message(api, make_staff):
    make_staff("chen", "clerk")
    msg = api_error(_login(api, "chen", "wrong-password1"), 401, "BAD_CREDENTIALS")
    assert msg.startswith("用户名或密码错误")
    # an unknown username gets exactly the same answer
    assert api_error(_login(api, "nobody", "wrong-password1"), 401, "BAD_CREDENTIALS") == msg
    with session_scope() as s:
        attempts = s.exec(select(LoginAttempt).order_by(LoginAttempt.id)).all()
        sessions = s.exec(select(StaffSession)).all()
    assert [(a.username, a.success) for a in attempts] == [("chen", False), ("nobody", False)]
    assert sessions == []


def test_sixth_attempt_is_throttled_even_with_the_right_password(api, make_staff):
    make_staff("chen", "clerk")
    messages = [api_error(_login(api, "chen", f"wrong-{i}a"), 401, "BAD_CREDENTIALS") for i in range(5)]
    assert "再失败 2 次" in messages[2] and "再失败 1 次" in messages[3]
    msg = api_error(_login(api, "chen"), 429, "LOGIN_THROTTLED")
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
    assert api_error(_login(api, "nobody", "x"), 401, "BAD_CREDENTIALS") == disabled[0][1]["error"]["message"]
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
    staff_token(api, "boss")  # a live session exists; it must not leak into anonymous requests
    assert api_error(api.get(ME, headers=headers), 401, "UNAUTHORIZED") == "登录已失效，请重新登录"


def test_revoked_session_token_is_401(api, make_staff):
    from gc_admin.accounts.service import end_session

    make_staff("boss", "admin")
    token = staff_token(api, "boss")
    with session_scope() as s:
        end_session(s, token=token)
    api_error(api.get(ME, headers=bearer(token)), 401, "UNAUTHORIZED")


def test_mini_program_token_is_not_a_staff_token(api):
    mp_token = wechat_sign_in(api, "o-someone")["token"]
    api_error(api.get(ME, headers=bearer(mp_token)), 401, "UNAUTHORIZED")


# --- OpenAPI ----------------------------------------------------------------------------------------
