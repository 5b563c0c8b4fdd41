"""Staff accounts over the API (``/api/v1/admin/staff``, admin only), as on the 员工与权限 page: create,
list, change role, disable / enable, reset password, set an insurer's programme — audited, same rules."""

from __future__ import annotations

import pytest

from gc_admin.coupons import service as coupons
from gc_admin.db import session_scope
from tests.support import PASSWORD, SETUP, api_error, rows, staff_headers

A = "/api/v1/admin"
NEW = {"username": "zhang", "display_name": "张三", "password": "Zhang-2026-x", "role": "clerk",
       "phone": "13600000009"}


@pytest.fixture
def boss(api, make_staff) -> dict[str, str]:
    make_staff("boss", "admin")
    make_staff("mgr", "manager")
    return staff_headers(api, "boss")


def _login(api, username: str, password: str):
    return api.post(f"{A}/auth/login", json={"username": username, "password": password})


def test_an_admin_creates_lists_and_changes_accounts(api, boss) -> None:
    made = api.post(f"{A}/staff", json=NEW, headers=boss)
    assert made.status_code == 201, made.text
    z = made.json()
    assert (z["username"], z["role"], z["enabled"], z["phone_masked"]) == ("zhang", "clerk", True, "136****0009")
    assert "password" not in made.text.lower().replace("password_", "")
    assert _login(api, "zhang", NEW["password"]).status_code == 200
    api_error(api.post(f"{A}/staff", json=NEW, headers=boss), 409, "USERNAME_TAKEN")
    api_error(api.post(f"{A}/staff", json={**NEW, "username": "lisi", "password": "123"}, headers=boss), 422,
              "WEAK_PASSWORD")
    api_error(api.post(f"{A}/staff", json={**NEW, "username": "lisi", "role": "god"}, headers=boss), 422,
              "VALIDATION_ERROR")

    listed = api.get(f"{A}/staff", params={"role": "clerk"}, headers=boss).json()
    assert listed["total"] == 1 and listed["items"][0]["username"] == "zhang"
    assert api.get(f"{A}/staff", params={"q": "张"}, headers=boss).json()["items"][0]["id"] == z["id"]
    assert api.get(f"{A}/staff", headers=boss).json()["total"] == 3

    # change role: the old sessions end (the new role applies at the next sign-in)
    token = staff_headers(api, "zhang", NEW["password"])
    changed = api.patch(f"{A}/staff/{z['id']}", json={"role": "service"}, headers=boss)
    assert changed.status_code == 200 and changed.json()["role"] == "service"
    api_error(api.get(f"{A}/me", headers=token), 401, "UNAUTHORIZED")
    # reset the password: the old one no longer signs in
    assert api.patch(f"{A}/staff/{z['id']}", json={"password": "New-Pass-2026"}, headers=boss).status_code == 200
    api_error(_login(api, "zhang", NEW["password"]), 401, "BAD_CREDENTIALS")
    assert _login(api, "zhang", "New-Pass-2026").status_code == 200
    # disable, then enable
    off = api.patch(f"{A}/staff/{z['id']}", json={"enabled": False}, headers=boss)
    assert off.status_code == 200 and off.json()["enabled"] is False
    api_error(_login(api, "zhang", "New-Pass-2026"), 401, "BAD_CREDENTIALS")
    assert api.patch(f"{A}/staff/{z['id']}", json={"enabled": True}, headers=boss).json()["enabled"] is True
    api_error(api.patch(f"{A}/staff/{z['id']}", json={"enabled": "no"}, headers=boss), 422, "VALIDATION_ERROR")
    api_error(api.patch(f"{A}/staff/999999", json={"enabled": False}, headers=boss), 404, "STAFF_NOT_FOUND")

    actions = [a for (a,) in rows("SELECT action FROM audit_log WHERE target_type = 'staff' AND action NOT LIKE "
                                  "'staff.log%' ORDER BY id")]
    assert actions[-5:] == ["staff.created", "staff.role_changed", "staff.password_reset", "staff.disabled",
                            "staff.enabled"]


def test_the_house_rules_hold_over_the_api(api, boss) -> None:
    me = api.get(f"{A}/me", headers=boss).json()
    api_error(api.patch(f"{A}/staff/{me['id']}", json={"enabled": False}, headers=boss), 409, "SELF_DISABLE")
    api_error(api.patch(f"{A}/staff/{me['id']}", json={"role": "clerk"}, headers=boss), 409, "LAST_ADMIN")
    with session_scope() as s:
        coupons.create_programme(s, actor=SETUP, code="picc_gx", name="广西人保车主权益")
    ins = api.post(f"{A}/staff", json={**NEW, "username": "picc", "role": "insurer", "programme": "picc_gx"},
                   headers=boss)
    assert ins.status_code == 201 and ins.json()["programme_code"] == "picc_gx"
    api_error(api.post(f"{A}/staff", json={**NEW, "username": "pc2", "programme": "picc_gx"}, headers=boss), 422,
              "PROGRAMME_NOT_ALLOWED")
    cleared = api.patch(f"{A}/staff/{ins.json()['id']}", json={"programme": ""}, headers=boss)
    assert cleared.json()["programme_code"] is None
    # a manager is not an admin: every staff route refuses
    mgr = staff_headers(api, "mgr", PASSWORD)
    api_error(api.get(f"{A}/staff", headers=mgr), 403, "FORBIDDEN")
    api_error(api.post(f"{A}/staff", json={**NEW, "username": "x1"}, headers=mgr), 403, "FORBIDDEN")
    api_error(api.patch(f"{A}/staff/{me['id']}", json={"role": "clerk"}, headers=mgr), 403, "FORBIDDEN")
