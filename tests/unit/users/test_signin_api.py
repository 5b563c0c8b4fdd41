"""Mini-program sign-in over HTTP (``/api/v1/mp``): SMS codes, WeChat code2Session + phone binding.

Runs on SQLite and, with ``GC_TEST_PG_URL``, on PostgreSQL. WeChat calls go through the real
client into the simulator mounted in the same app.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, update
from sqlmodel import col, select

from gc_admin.audit.models import AuditLog
from gc_admin.core.clock import utcnow
from gc_admin.db import session_scope
from gc_admin.integrations.sms.models import SmsMessage
from gc_admin.users.models import MpUser, SmsLoginCode
from tests.support import api_error, bearer, mint, send_sms_code, sms_code, sms_sign_in, wechat_sign_in

SEND = "/api/v1/mp/auth/sms/send"
SMS_LOGIN = "/api/v1/mp/auth/sms/login"
WX_LOGIN = "/api/v1/mp/auth/wechat"
WX_PHONE = "/api/v1/mp/auth/wechat/phone"
ME = "/api/v1/mp/me"

pytestmark = pytest.mark.usefixtures("any_db")  # every test on SQLite and PostgreSQL


# --- helpers -------------------------------------------------------------------------------------

def _bind(api, token: str, phone: str):
    return api.post(WX_PHONE, json={"phone_code": mint(api, "ignored", phone)["phone_code"]}, headers=bearer(token))


def _users() -> list[MpUser]:
    with session_scope() as s:
        return list(s.exec(select(MpUser).order_by(col(MpUser.id))).all())


def _audit(action: str) -> list[AuditLog]:
    with session_scope() as s:
        return list(s.exec(select(AuditLog).where(AuditLog.action == action).order_by(col(AuditLog.id))).all())


def _code_row(phone: str = "13812345678") -> SmsLoginCode:
    with session_scope() as s:
        return s.exec(select(SmsLoginCode).where(SmsLoginCode.phone == phone).order_by(col(SmsLoginCode.id).desc())).first()


def _age_codes(phone: str, seconds: int) -> None:
    """Move every code sent to ``phone`` ``seconds`` into the past (the clock is not injectable)."""
    delta = dt.timedelta(seconds=seconds)
    with session_scope() as s:
        for row in s.exec(select(SmsLoginCode).where(SmsLoginCode.phone == phone)).all():
            row.created_at -= delta
            row.expires_at -= delta
            s.add(row)


# --- SMS ------------------------------------------------------------------------------------------

def test_sms_code_sign_in(api):
    send_sms_code(api, "+86 138-1234-5678")  # normalized before anything is stored
    with session_scope() as s:
        msgs = s.exec(select(SmsMessage)).all()
        codes = s.exec(select(SmsLoginCode)).all()
    assert [(m.phone, m.template, m.status) for m in msgs] == [("13812345678", "login_code", "recorded")]
    code = sms_code()
    assert code in msgs[0].content
    assert len(codes) == 1 and codes[0].phone == "13812345678" and code not in codes[0].code_digest
    assert codes[0].ip == "testclient"

    resp = api.post(SMS_LOGIN, json={"phone": "13812345678", "code": code})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"token", "expires_at", "user"}
    assert dt.datetime.fromisoformat(body["expires_at"]) > dt.datetime.now(dt.timezone.utc)
    assert body["user"]["phone"] == "13812345678"

    me = api.get(ME, headers=bearer(body["token"]))
    assert me.status_code == 200, me.text
    assert me.json()["phone"] == "13812345678" and me.json()["id"] == body["user"]["id"]
    assert _code_row().consumed_at is not None

    # one use only
    msg = api_error(api.post(SMS_LOGIN, json={"phone": "13812345678", "code": code}), 401, "SMS_CODE_INVALID")
    assert msg == "验证码错误或已过期，请重新获取"
    # the sign-in is audited with the masked phone, never the code
    [row] = _audit("user.login")
    assert (row.actor_type, row.actor_id, row.target_id) == ("user", str(body["user"]["id"]), str(body["user"]["id"]))
    assert row.actor_name == "138****5678" and row.summary == "短信验证码登录"
    assert code not in (row.summary + (row.before or "") + (row.after or ""))


def test_second_sms_login_reuses_the_account(api):
    first = sms_sign_in(api)
    _age_codes("13812345678", 61)
    second = sms_sign_in(api)
    assert first["user"]["id"] == second["user"]["id"]
    assert len(_users()) == 1 and len(_audit("user.login")) == 2


def test_second_send_within_a_minute_is_refused(api):
    send_sms_code(api)
    first_code = sms_code()
    resp = api.post(SEND, json={"phone": "138 1234 5678"})
    msg = api_error(resp, 429, "SMS_TOO_FREQUENT")
    assert "秒后再试" in msg
    assert 1 <= resp.json()["error"]["details"]["retry_after"] <= 61
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(SmsMessage)).one() == 1
        assert s.exec(select(func.count()).select_from(SmsLoginCode)).one() == 1
    # another phone is not affected
    send_sms_code(api, "13987654321")
    # after the cooldown a new code is sent, and only the newest code signs in
    _age_codes("13812345678", 61)
    send_sms_code(api)
    new_code = sms_code()
    if new_code != first_code:
        api_error(api.post(SMS_LOGIN, json={"phone": "13812345678", "code": first_code}), 401, "SMS_CODE_INVALID")
    assert api.post(SMS_LOGIN, json={"phone": "13812345678", "code": new_code}).status_code == 200


def test_wrong_codes_are_counted_and_exhaust_the_code(api):
    send_sms_code(api)
    code = sms_code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for n in range(1, 6):
        api_error(api.post(SMS_LOGIN, json={"phone": "13812345678", "code": wrong}), 401, "SMS_CODE_INVALID")
        # each wrong try was committed by its own request, and is read back by a fresh session
        assert _code_row().attempts == n
    api_error(api.post(SMS_LOGIN, json={"phone": "13812345678", "code": code}), 401, "SMS_CODE_INVALID")
    row = _code_row()
    assert row.attempts == 5 and row.consumed_at is None
    assert _users() == [] and _audit("user.login") == []


def test_a_wrong_try_stays_counted_however_the_callers_unit_of_work_ends(api):
    """The try is counted in a unit of work of its own: a caller that catches the refusal and then
    fails (its unit rolls back) does not give the guesser the try back."""
    from gc_admin.core.errors import Unauthorized
    from gc_admin.users import service

    send_sms_code(api)
    wrong = f"{(int(sms_code()) + 1) % 1_000_000:06d}"
    with pytest.raises(RuntimeError):
        with session_scope() as s:
            with pytest.raises(Unauthorized):
                service.sms_login(s, phone="13812345678", code=wrong)
            raise RuntimeError("the caller's next step fails")
    assert _code_row().attempts == 1


def test_a_login_code_the_provider_refuses_is_a_502_and_still_counts(api):
    """SMS_SEND_FAILED after the code and the failed outbox row are committed: 短信记录 shows the
    failure and the cooldown counts the attempt."""
    from gc_admin.integrations.sms.base import SmsError
    from gc_admin.integrations.sms.service import set_sender

    class Refusing:
        name = "aliyun"

        def send(self, **kw):
            raise SmsError("isv.BUSINESS_LIMIT_CONTROL")

    set_sender(Refusing())
    try:
        api_error(api.post(SEND, json={"phone": "13812345678"}), 502, "SMS_SEND_FAILED")
        api_error(api.post(SEND, json={"phone": "13812345678"}), 429, "SMS_TOO_FREQUENT")
    finally:
        set_sender(None)
    with session_scope() as s:
        assert [(m.status, m.provider) for m in s.exec(select(SmsMessage)).all()] == [("failed", "aliyun")]
        assert s.exec(select(func.count()).select_from(SmsLoginCode)).one() == 1


def test_wrong_tries_below_the_limit_do_not_block_the_right_code(api):
    send_sms_code(api)
    code = sms_code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        api_error(api.post(SMS_LOGIN, json={"phone": "13812345678", "code": wrong}), 401, "SMS_CODE_INVALID")
    assert api.post(SMS_LOGIN, json={"phone": "13812345678", "code": code}).status_code == 200


def test_expired_code_is_refused(api):
    send_sms_code(api)
    code = sms_code()
    _age_codes("13812345678", 5 * 60 + 1)
    api_error(api.post(SMS_LOGIN, json={"phone": "13812345678", "code": code}), 401, "SMS_CODE_INVALID")
    assert _users() == []


def test_code_for_another_phone_is_refused(api):
    send_sms_code(api, "13812345678")
    code = sms_code("13812345678")
    api_error(api.post(SMS_LOGIN, json={"phone": "13987654321", "code": code}), 401, "SMS_CODE_INVALID")


def test_daily_and_per_ip_limits(api):
    now = utcnow()
    with session_scope() as s:
        for i in range(10):  # ten codes today for one phone, each long out of its cooldown
            s.add(SmsLoginCode(phone="13812345678", code_digest="x", ip="10.9.9.9",
                               created_at=now - dt.timedelta(hours=1, minutes=i), expires_at=now))
    api_error(api.post(SEND, json={"phone": "13812345678"}), 429, "SMS_DAILY_LIMIT")
    with session_scope() as s:
        for i in range(30):  # thirty codes this hour from the test client's address
            s.add(SmsLoginCode(phone=f"1390000{i:04d}", code_digest="x", ip="testclient",
                               created_at=now - dt.timedelta(minutes=2), expires_at=now))
    api_error(api.post(SEND, json={"phone": "13700000000"}), 429, "SMS_IP_LIMIT")
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(SmsMessage)).one() == 0


@pytest.mark.parametrize("phone", ["12345678901", "1381234567", "138123456789", "23812345678", "1381234567a",
                                   "+1 4155552671", "１３８１２３４５６７８", "13８１２３４５６７８",
                                   "13812345678\n1", "86 13812345678 0", "138 1234 567 8 9"])
def test_invalid_phone_is_422(api, phone):
    resp = api.post(SEND, json={"phone": phone})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] in ("INVALID_PHONE", "VALIDATION_ERROR")
    resp = api.post(SMS_LOGIN, json={"phone": phone, "code": "123456"})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] in ("INVALID_PHONE", "VALIDATION_ERROR")
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(SmsMessage)).one() == 0
        assert s.exec(select(func.count()).select_from(SmsLoginCode)).one() == 0


def test_invalid_phone_message(api):
    assert api_error(api.post(SEND, json={"phone": "12345678901"}), 422, "INVALID_PHONE") == "请输入正确的 11 位手机号"


# /mp/coupons checks the token in its own unit of work (not through the dependency): it is held to the same
@pytest.mark.parametrize("path", [ME, "/api/v1/mp/coupons"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer a.b.c"}])
def test_me_needs_a_valid_token(api, headers, path):
    assert api_error(api.get(path, headers=headers), 401, "UNAUTHORIZED") == "登录已失效，请重新登录"


def test_foreign_and_expired_tokens_are_refused(api):
    import jwt

    from gc_admin.core.security import issue_jwt

    body = sms_sign_in(api)
    user_id = body["user"]["id"]
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == str(user_id) and claims["typ"] == "mp"
    staff_kind, _ = issue_jwt(str(user_id), kind="staff", minutes=5, extra={"uct": claims["uct"]})
    expired, _ = issue_jwt(str(user_id), kind="mp", minutes=-1, extra={"uct": claims["uct"]})
    unbound, _ = issue_jwt(str(user_id), kind="mp", minutes=5)  # names the id but not the row
    forged = jwt.encode({**claims, "exp": 4102444800}, "not-the-secret-" * 3, algorithm="HS256")
    for token in (staff_kind, expired, unbound, forged, body["token"] + "x"):
        api_error(api.get(ME, headers=bearer(token)), 401, "UNAUTHORIZED")
        api_error(api.get("/api/v1/mp/coupons", headers=bearer(token)), 401, "UNAUTHORIZED")
    assert api.get(ME, headers=bearer(body["token"])).json()["id"] == user_id
    assert api.get("/api/v1/mp/coupons", headers=bearer(body["token"])).json() == {"items": []}


# --- WeChat ---------------------------------------------------------------------------------------

def test_wechat_login_then_bind_phone(api):
    body = wechat_sign_in(api, "o-alice")
    assert set(body) == {"token", "expires_at", "user"}
    assert body["user"]["phone"] is None
    assert api.get(ME, headers=bearer(body["token"])).json()["phone"] is None
    [user] = _users()
    assert (user.openid, user.phone, user.id) == ("o-alice", None, body["user"]["id"])

    # a second wx.login of the same person finds the same account
    again = wechat_sign_in(api, "o-alice")
    assert again["user"]["id"] == user.id and len(_users()) == 1

    resp = _bind(api, body["token"], "13812345678")
    assert resp.status_code == 200, resp.text
    bound = resp.json()
    assert bound["user"] == {**bound["user"], "id": user.id, "phone": "13812345678"}
    assert api.get(ME, headers=bearer(body["token"])).json()["phone"] == "13812345678"
    assert api.get(ME, headers=bearer(bound["token"])).json()["phone"] == "13812345678"
    [user] = _users()
    assert (user.openid, user.phone) == ("o-alice", "13812345678")

    logins = _audit("user.login")
    assert [r.summary for r in logins] == ["微信登录", "微信登录"]
    assert all(r.target_id == str(user.id) and r.actor_type == "user" for r in logins)
    [bind] = _audit("user.phone_bound")
    assert bind.target_id == str(user.id) and bind.summary == "绑定手机号 138****5678"
    assert "13812345678" not in (bind.summary + bind.actor_name)

    # binding the same phone again is harmless; a different one is refused
    assert _bind(api, body["token"], "13812345678").status_code == 200
    api_error(_bind(api, body["token"], "13987654321"), 409, "PHONE_ALREADY_BOUND")
    assert [u.phone for u in _users()] == ["13812345678"]
    assert len(_audit("user.phone_bound")) == 1


def test_wechat_code_is_single_use(api):
    code = mint(api, "o-alice")["code"]
    assert api.post(WX_LOGIN, json={"code": code}).status_code == 200
    msg = api_error(api.post(WX_LOGIN, json={"code": code}), 401, "WECHAT_CODE_INVALID")
    assert "重新进入小程序" in msg
    api_error(api.post(WX_LOGIN, json={"code": "never-minted"}), 401, "WECHAT_CODE_INVALID")
    assert len(_users()) == 1 and len(_audit("user.login")) == 1


def test_phone_code_is_single_use_and_needs_a_token(api):
    token = wechat_sign_in(api, "o-alice")["token"]
    pcode = mint(api, "o-alice", "13812345678")["phone_code"]
    api_error(api.post(WX_PHONE, json={"phone_code": pcode}), 401, "UNAUTHORIZED")  # not consumed: no token
    assert api.post(WX_PHONE, json={"phone_code": pcode}, headers=bearer(token)).status_code == 200
    token2 = wechat_sign_in(api, "o-bob")["token"]
    api_error(api.post(WX_PHONE, json={"phone_code": pcode}, headers=bearer(token2)), 401, "WECHAT_CODE_INVALID")
    api_error(api.post(WX_PHONE, json={"phone_code": "never-minted"}, headers=bearer(token2)), 401,
              "WECHAT_CODE_INVALID")
    assert {u.openid: u.phone for u in _users()} == {"o-alice": "13812345678", "o-bob": None}


def test_binding_a_phone_of_an_sms_account_moves_the_wechat_identity(api):
    sms = sms_sign_in(api, "13812345678")
    sms_id = sms["user"]["id"]
    wx = wechat_sign_in(api, "o-alice")
    wx_id = wx["user"]["id"]
    assert wx_id != sms_id

    resp = _bind(api, wx["token"], "13812345678")
    assert resp.status_code == 200, resp.text
    moved = resp.json()
    assert moved["user"]["id"] == sms_id and moved["user"]["phone"] == "13812345678"

    [user] = _users()  # the WeChat-only account is gone; its identity lives on the SMS account
    assert (user.id, user.openid, user.phone) == (sms_id, "o-alice", "13812345678")
    api_error(api.get(ME, headers=bearer(wx["token"])), 401, "UNAUTHORIZED")
    assert api.get(ME, headers=bearer(moved["token"])).json()["id"] == sms_id
    assert api.get(ME, headers=bearer(sms["token"])).json()["id"] == sms_id
    # from now on wx.login lands on that account, and SMS sign-in too
    assert wechat_sign_in(api, "o-alice")["user"]["id"] == sms_id
    _age_codes("13812345678", 61)
    assert sms_sign_in(api, "13812345678")["user"]["id"] == sms_id

    [bind] = _audit("user.phone_bound")
    assert bind.target_id == str(sms_id)

    # The deleted account's token must stay dead even when a new account is created afterwards
    # (SQLite may hand the freed id to the next row).
    newcomer = wechat_sign_in(api, "o-carol")["user"]["id"]
    resp = api.get(ME, headers=bearer(wx["token"]))
    assert api_error(resp, 401, "UNAUTHORIZED"), f"old token of deleted user {wx_id} now opens user {newcomer}"


def test_binding_a_phone_owned_by_another_wechat_account_is_409(api):
    alice = wechat_sign_in(api, "o-alice")
    assert _bind(api, alice["token"], "13812345678").status_code == 200
    bob = wechat_sign_in(api, "o-bob")
    msg = api_error(_bind(api, bob["token"], "13812345678"), 409, "PHONE_BOUND_TO_OTHER")
    assert msg == "该手机号已绑定其他微信账号"
    assert {u.openid: u.phone for u in _users()} == {"o-alice": "13812345678", "o-bob": None}
    assert len(_audit("user.phone_bound")) == 1
    assert api.get(ME, headers=bearer(bob["token"])).json()["phone"] is None


def test_wechat_outage_is_an_upstream_error(api):
    from gc_admin.integrations import sims

    code = mint(api, "o-alice")["code"]
    sims.simulators().wechat.secret = "rotated"  # WeChat now refuses our credentials (40125)
    api_error(api.post(WX_LOGIN, json={"code": code}), 502, "WECHAT_UNAVAILABLE")
    assert _users() == [] and _audit("user.login") == []


def test_expired_wechat_code(api):
    from gc_admin.integrations import sims

    code = mint(api, "o-alice")["code"]
    state = sims.simulators().wechat
    openid, expires = state.codes[code]
    state.codes[code] = (openid, expires - 301)
    api_error(api.post(WX_LOGIN, json={"code": code}), 401, "WECHAT_CODE_INVALID")
    assert _users() == []


def test_sms_token_and_wechat_user_see_their_own_me(api):
    a = sms_sign_in(api, "13812345678")
    b = wechat_sign_in(api, "o-bob")
    assert api.get(ME, headers=bearer(a["token"])).json()["id"] == a["user"]["id"]
    assert api.get(ME, headers=bearer(b["token"])).json()["id"] == b["user"]["id"]
    with session_scope() as s:
        s.exec(update(MpUser).where(col(MpUser.id) == a["user"]["id"]).values(nickname="小王"))
    assert api.get(ME, headers=bearer(a["token"])).json()["nickname"] == "小王"


def test_a_token_checked_once_still_expires_and_a_new_key_rechecks_it(api, monkeypatch):
    """Signatures are checked once per token per process (cached); the expiry is checked on every use, and a
    changed signing key checks the token again (it then fails)."""
    import dataclasses
    import time

    from gc_admin.config import get_settings
    from gc_admin.core import security

    token = sms_sign_in(api)["token"]
    for path in (ME, "/api/v1/mp/coupons"):
        assert api.get(path, headers=bearer(token)).status_code == 200  # checked, now cached
    exp = security.read_jwt(token, kind="mp")["exp"]
    monkeypatch.setattr(security.time, "time", lambda: exp + 1)
    for path in (ME, "/api/v1/mp/coupons"):
        api_error(api.get(path, headers=bearer(token)), 401, "UNAUTHORIZED")
    monkeypatch.setattr(security.time, "time", lambda: exp - 1)
    assert api.get(ME, headers=bearer(token)).status_code == 200
    changed = dataclasses.replace(get_settings(), secret_key="another-signing-key-" * 3)
    monkeypatch.setattr(security, "get_settings", lambda: changed)
    for path in (ME, "/api/v1/mp/coupons"):
        api_error(api.get(path, headers=bearer(token)), 401, "UNAUTHORIZED")
    assert security.read_jwt(token, kind="mp") is None and time.time() < exp
