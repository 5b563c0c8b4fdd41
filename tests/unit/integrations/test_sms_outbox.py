"""The staff SMS outbox (``GET /api/v1/admin/sms/outbox``): admin and manager only, newest first, login codes
masked, filters and paging; not served outside dev and test."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from gc_admin.config import get_settings
from gc_admin.db import session_scope
from tests.support import api_error, bearer, send_sms_code, staff_token

OUTBOX = "/api/v1/admin/sms/outbox"


@pytest.mark.parametrize("role", ["clerk", "service", "insurer", "supplier", "dispatcher"])
def test_outbox_is_forbidden_to_roles_without_the_section(api, make_staff, role):
    make_staff("someone", role)
    send_sms_code(api, "13812345678")
    assert api_error(api.get(OUTBOX, headers=bearer(staff_token(api, "someone"))), 403, "FORBIDDEN") == "没有权限执行此操作"


def test_outbox_needs_a_token(api):
    api_error(api.get(OUTBOX), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_outbox_lists_messages_newest_first(api, make_staff, role):
    make_staff("boss", role)
    token = staff_token(api, "boss")
    send_sms_code(api, "13812345678")
    send_sms_code(api, "13987654321")
    resp = api.get(OUTBOX, headers=bearer(token))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["total"] == 2
    assert [m["phone"] for m in body["items"]] == ["13987654321", "13812345678"]
    for m in body["items"]:
        assert m["template"] == "login_code" and m["provider"] == "outbox" and m["status"] == "recorded"
        assert "登录验证码" in m["content"] and dt.datetime.fromisoformat(m["created_at"]).utcoffset() is not None
    # filters and paging
    only = api.get(OUTBOX, params={"phone": "1381234"}, headers=bearer(token)).json()
    assert only["total"] == 1 and only["items"][0]["phone"] == "13812345678"
    page = api.get(OUTBOX, params={"limit": 1, "offset": 1}, headers=bearer(token)).json()
    assert page["total"] == 2 and [m["phone"] for m in page["items"]] == ["13812345678"]
    api_error(api.get(OUTBOX, params={"limit": 0}, headers=bearer(token)), 422, "VALIDATION_ERROR")
    api_error(api.get(OUTBOX, params={"limit": 201}, headers=bearer(token)), 422, "VALIDATION_ERROR")
    api_error(api.get(OUTBOX, params={"offset": -1}, headers=bearer(token)), 422, "VALIDATION_ERROR")
    api_error(api.get(OUTBOX, params={"phone": "1" * 12}, headers=bearer(token)), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_outbox_masks_login_codes_even_in_dev(api, make_staff, role):
    """The code is for the user: staff see ``******`` (the phone's side, /sim/sms/_inbox, gets it whole)."""
    from gc_admin.integrations.sms.service import messages_to

    make_staff("boss", role)
    send_sms_code(api, "13812345678")
    with session_scope() as s:
        whole = messages_to(s, phone="13812345678")[0].content
    code = whole.split("验证码为 ")[1][:6]
    assert code.isdigit()
    resp = api.get(OUTBOX, headers=bearer(staff_token(api, "boss")))
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


def test_outbox_phone_filter_ignores_non_digits(any_db, api, make_staff):
    make_staff("boss", "admin")
    token = staff_token(api, "boss")
    send_sms_code(api, "13812345678")
    # a NUL byte used to reach PostgreSQL and fail the query with a 500
    for q in ("138\x001234", "138-1234", "１３８"):
        resp = api.get(OUTBOX, params={"phone": q}, headers=bearer(token))
        assert resp.status_code == 200, (q, resp.text)
    assert api.get(OUTBOX, params={"phone": "138\x001234"}, headers=bearer(token)).json()["total"] == 1
    assert api.get(OUTBOX, params={"phone": "138-1234"}, headers=bearer(token)).json()["total"] == 1


def test_outbox_is_404_outside_dev_and_test(api, make_staff, monkeypatch):
    import gc_admin.integrations.sms.api as sms_api

    make_staff("boss", "admin")
    make_staff("chen", "clerk")
    admin, clerk = staff_token(api, "boss"), staff_token(api, "chen")
    send_sms_code(api, "13812345678")
    assert api.get(OUTBOX, headers=bearer(admin)).json()["total"] == 1  # there is something to leak
    prod = dataclasses.replace(get_settings(), env="prod")
    assert not prod.simulators_enabled
    monkeypatch.setattr(sms_api, "get_settings", lambda: prod)
    resp = api.get(OUTBOX, headers=bearer(admin))
    assert api_error(resp, 404, "NOT_FOUND") == "接口不存在"
    assert "items" not in resp.text
    api_error(api.get(OUTBOX, headers=bearer(clerk)), 403, "FORBIDDEN")  # roles are still checked first
