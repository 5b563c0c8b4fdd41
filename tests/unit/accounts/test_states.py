"""The dashboard's Reflex event handlers re-check the role on the server, whatever the page showed: staff
management (员工管理, ``StaffState``, admin only), a session that is gone or demoted, and sign-in (``AuthState``).

States are instantiated the way Reflex's own unit tests do it (``rx.State(_reflex_internal_init=True)``
builds the whole state tree in memory); a test signs in for real (a staff session row) and puts
the token where the cookie would put it. Handlers are awaited directly, as the event loop would.
"""

from __future__ import annotations

import dataclasses

import pytest
import reflex as rx
from reflex.istate.data import ReflexURL
from sqlalchemy import func
from sqlmodel import col, select

from gc_admin.accounts import service as accounts
from gc_admin.accounts.models import StaffSession, StaffUser
from gc_admin.accounts.state import StaffState
from gc_admin.audit.models import AuditLog
from gc_admin.audit.state import AuditState
from gc_admin.core.security import hash_token, verify_password
from gc_admin.customers.state import UsersState
from gc_admin.db import session_scope
from gc_admin.ui.auth import AuthState
from gc_admin.home.state import HomeState
from tests.support import DENIED, redirect_path, run, sign_in, state_of, toast


# --- plumbing ---------------------------------------------------------------------------------------

def staff_rows() -> dict[str, StaffUser]:
    with session_scope() as s:
        return {u.username: u for u in s.exec(select(StaffUser)).all()}


def audit_actions() -> list[tuple[str, str | None]]:
    with session_scope() as s:
        return [(r.action, r.actor_id) for r in s.exec(select(AuditLog).order_by(col(AuditLog.id))).all()]


NEW_STAFF = {"username": "newbie", "display_name": "新人", "password": "secret2026", "role": "admin", "phone": ""}


# --- StaffState: admin only -------------------------------------------------------------------------

def test_clerk_gets_nothing_done_in_staff_management(team):
    token = sign_in("chen")
    before_rows, before_audit = staff_rows(), audit_actions()
    target = str(team["target"])

    async def scenario():
        st = await state_of(StaffState, token)
        results = {
            "load": await st.load(),
            "create": await st.create(dict(NEW_STAFF)),
            "change_role": await st.change_role(target, "admin"),
            "toggle_enabled": await st.toggle_enabled(target, False),
            "set_role_filter": await st.set_role_filter("admin"),
        }
        st.reset_target_id, st.reset_target_name = team["target"], "target"
        results["reset_password"] = await st.reset_password({"password": "hacked2026", "confirm": "hacked2026"})
        return st, results

    st, results = run(scenario())
    for name, result in results.items():
        assert toast(result) == ("error", DENIED), name
    assert st.rows == [] and st.total == 0 and st.form_error == ""

    after = staff_rows()
    assert set(after) == set(before_rows)  # no "newbie"
    t = after["target"]
    assert t.role == "service" and t.enabled
    assert t.password_hash == before_rows["target"].password_hash
    assert verify_password(t.password_hash, "secret2026")
    assert audit_actions() == before_audit  # nothing happened, so nothing was logged
    with session_scope() as s:  # the target's sessions were not revoked either
        assert s.exec(select(func.count()).select_from(StaffSession).where(col(StaffSession.revoked_at).is_not(None))).one() == 0


@pytest.mark.parametrize("username", ["mgr", "target"])
def test_other_roles_are_not_admins_either(team, username):
    token = sign_in(username)

    async def scenario():
        st = await state_of(StaffState, token)
        return await st.create(dict(NEW_STAFF)), await st.change_role(str(team[username]), "admin")

    for result in run(scenario()):
        assert toast(result) == ("error", DENIED)
    assert "newbie" not in staff_rows() and staff_rows()[username].role != "admin"


def test_admin_manages_staff_and_it_is_audited(team):
    token = sign_in("boss")
    boss_id = str(team["boss"])

    async def scenario():
        st = await state_of(StaffState, token)
        assert await st.load() is None
        loaded = [r["username"] for r in st.rows]
        created = await st.create({**NEW_STAFF, "role": "clerk", "phone": "138 1234 5678"})
        after_create = [r["username"] for r in st.rows]
        role = await st.change_role(str(team["target"]), "clerk")
        disabled = await st.toggle_enabled(str(team["target"]), False)
        st.reset_target_id, st.reset_target_name = team["chen"], "chen"
        mismatch = await st.reset_password({"password": "newpass2026", "confirm": "other2026"})
        mismatch_error = st.form_error
        reset = await st.reset_password({"password": "newpass2026", "confirm": "newpass2026"})
        return loaded, created, after_create, role, disabled, mismatch, mismatch_error, reset

    loaded, created, after_create, role, disabled, mismatch, mismatch_error, reset = run(scenario())
    assert loaded == ["boss", "mgr", "chen", "target"]
    assert toast(created) == ("success", "已创建员工 newbie")
    assert after_create == loaded + ["newbie"]  # the list was reloaded
    assert toast(role) == ("success", "角色已改为 内勤，该员工需重新登录")
    assert toast(disabled) == ("success", "账号已停用，已强制下线")
    assert mismatch is None and mismatch_error == "两次输入的密码不一致"
    assert toast(reset) == ("success", "已重置 chen 的密码，并强制其下线")

    rows = staff_rows()
    assert (rows["newbie"].role, rows["newbie"].display_name, rows["newbie"].phone) == ("clerk", "新人", "13812345678")
    assert rows["target"].role == "clerk" and not rows["target"].enabled
    assert verify_password(rows["chen"].password_hash, "newpass2026")
    mine = [a for a, actor in audit_actions() if actor == boss_id]
    assert mine == ["staff.login", "staff.created", "staff.role_changed", "staff.disabled", "staff.password_reset"]
    with session_scope() as s:
        created_row = s.exec(select(AuditLog).where(AuditLog.action == "staff.created", AuditLog.actor_id == boss_id)).one()
    assert created_row.actor_type == "staff" and created_row.target_id == str(rows["newbie"].id)
    assert "secret2026" not in (created_row.after or "")


def test_admin_gives_an_insurer_account_its_programme(team):
    from gc_admin.coupons import service as coupons

    with session_scope() as s:
        coupons.create_programme(s, actor=accounts.Actor("system"), code="picc_gx", name="广西人保车主权益")
    token = sign_in("boss")

    async def scenario():
        st = await state_of(StaffState, token)
        await st.load()
        offered = list(st.programmes)
        created = await st.create({**NEW_STAFF, "username": "picc", "role": "insurer", "programme_code": "picc_gx"})
        bare = await st.create({**NEW_STAFF, "username": "bare", "role": "insurer", "programme_code": "none"})
        refused = await st.create({**NEW_STAFF, "username": "clerk2", "role": "clerk", "programme_code": "picc_gx"})
        refused_error = st.form_error
        rows = {r["username"]: r for r in st.rows}
        cleared = await st.change_programme(rows["picc"]["id"], "none")
        set_again = await st.change_programme(rows["bare"]["id"], "picc_gx")
        on_clerk = await st.change_programme(str(team["chen"]), "picc_gx")
        return offered, created, bare, refused, refused_error, rows, cleared, set_again, on_clerk, st

    offered, created, bare, refused, refused_error, rows, cleared, set_again, on_clerk, st = run(scenario())
    assert offered == [{"code": "picc_gx", "label": "广西人保车主权益（picc_gx）"}]
    assert toast(created) == ("success", "已创建员工 picc") and toast(bare) == ("success", "已创建员工 bare")
    assert refused is None and refused_error == "只有人保账号可以关联项目"
    assert (rows["picc"]["programme"], rows["picc"]["programme_label"]) == ("picc_gx", "广西人保车主权益")
    assert (rows["bare"]["programme"], rows["bare"]["programme_label"]) == ("none", "未关联项目（不能操作项目数据）")
    assert rows["chen"]["has_programme"] == "" and rows["chen"]["programme_label"] == "—"
    assert toast(cleared) == ("success", "picc 已不再关联项目")
    assert toast(set_again) == ("success", "bare 的所属项目已改为 picc_gx")
    assert toast(on_clerk) == ("error", "只有人保账号可以关联项目")
    after = staff_rows()
    assert (after["picc"].programme_code, after["bare"].programme_code, after["chen"].programme_code) == (
        None, "picc_gx", None)
    assert "clerk2" not in after


def test_only_an_admin_changes_a_programme(team):
    token = sign_in("mgr")

    async def scenario():
        st = await state_of(StaffState, token)
        return await st.change_programme(str(team["target"]), "picc_gx")

    assert toast(run(scenario())) == ("error", DENIED)


def test_admin_create_with_bad_input_shows_the_reason(team):
    token = sign_in("boss")

    async def scenario():
        st = await state_of(StaffState, token)
        out = await st.create({**NEW_STAFF, "password": "short"})
        return out, st.form_error

    out, error = run(scenario())
    assert out is None and error == "密码至少 8 位"
    assert "newbie" not in staff_rows()


def test_demoted_admin_is_refused_at_the_next_event(team):
    """The role is re-read from the database on every event, not remembered from the page load."""
    token = sign_in("mgr")
    with session_scope() as s:
        accounts.set_role(s, actor=accounts.Principal(team["boss"], "boss", "boss", "admin"), staff_id=team["mgr"],
                          role="clerk")

    async def scenario():
        st = await state_of(UsersState, token)
        return await st.load(), list(st.rows)

    result, rows = run(scenario())
    assert toast(result) == ("error", DENIED) and rows == []  # the role change signed mgr out


# --- a signed-out, garbage or revoked session reads nothing -----------------------------------------

def test_signed_out_gets_no_rows(team):
    async def scenario():
        users = await state_of(UsersState, "")
        audit = await state_of(AuditState, "")
        staff = await state_of(StaffState, "")
        home = await state_of(HomeState, "")
        out = [await users.load(), await audit.load(), await staff.load(), await home.load(),
               await users.next_page(), await audit.search()]
        return out, users, audit, staff, home

    out, users, audit, staff, home = run(scenario())
    assert out == [None] * 6  # signed out: no toast, the page guard redirects
    assert users.rows == [] and audit.rows == [] and staff.rows == []
    assert (users.total, audit.total, staff.total) == (0, 0, 0)
    assert (home.shown, home.values, home.note) == ([], {}, "")


def test_garbage_or_revoked_token_gets_no_rows(team):
    token = sign_in("boss")
    with session_scope() as s:
        accounts.end_session(s, token=token)

    async def scenario():
        out = []
        for t in ("garbage", token):
            users = await state_of(UsersState, t)
            out.append((await users.load(), list(users.rows)))
        return out

    for result, rows in run(scenario()):
        assert toast(result) == ("error", DENIED) and rows == []


# --- AuthState -------------------------------------------------------------------------------------

async def _login(form: dict[str, str], url: str = ""):
    root = rx.State(_reflex_internal_init=True)
    auth = await root.get_state(AuthState)
    if url:
        auth.router = dataclasses.replace(auth.router, url=ReflexURL(url))
    events = [e async for e in auth.login(form)]
    return auth, events


def test_login_with_wrong_password_shows_a_chinese_error(team):
    auth, events = run(_login({"username": "chen", "password": "wrong-pass1"}))
    assert auth.login_error == "用户名或密码错误"
    assert auth.token == "" and auth.role == "" and not auth.login_busy
    assert all(e is None for e in events)  # no redirect
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(StaffSession)).one() == 0


def test_login_with_empty_fields(team):
    auth, events = run(_login({"username": "  ", "password": ""}))
    assert auth.login_error == "请输入用户名和密码" and auth.token == "" and events == []


def test_login_throttled_shows_the_lock(team):
    errors = [run(_login({"username": "chen", "password": f"wrong-{i}a"}))[0].login_error for i in range(5)]
    assert errors[3] == "用户名或密码错误，再失败 1 次将锁定 15 分钟" and errors[4] == "用户名或密码错误"
    auth, events = run(_login({"username": "chen", "password": "secret2026"}))
    assert auth.login_error == "登录失败次数过多，请 15 分钟后再试" and auth.token == ""


def test_login_with_the_right_password_signs_in_and_redirects(team):
    auth, events = run(_login({"username": "Chen", "password": "secret2026"}))
    assert auth.login_error == "" and not auth.login_busy
    assert (auth.username, auth.role, auth.role_label) == ("chen", "clerk", "内勤")
    assert "staff" not in auth.sections and "users" in auth.sections
    assert redirect_path(events[-1]) == "/"
    with session_scope() as s:
        sess = s.exec(select(StaffSession)).one()
    assert sess.token_hash == hash_token(auth.token) and sess.kind == "web" and sess.staff_id == team["chen"]


@pytest.mark.parametrize(
    "url, expected",
    [("http://localhost:3000/login?next=/staff", "/staff"), ("http://localhost:3000/login?next=//evil.example", "/"),
     ("http://localhost:3000/login?next=https://evil.example/", "/"), ("http://localhost:3000/login", "/"),
     # browsers read "/\\" as "//": another host
     ("http://localhost:3000/login?next=/%5Cevil.example/x", "/"), ("http://localhost:3000/login?next=/%09/evil.example", "/"),
     ("http://localhost:3000/login?next=/staff/", "/staff"), ("http://localhost:3000/login?next=/no-such-page", "/")],
)
def test_login_redirects_only_to_local_paths(team, url, expected):
    _auth, events = run(_login({"username": "chen", "password": "secret2026"}, url))
    assert redirect_path(events[-1]) == expected


def test_logout_revokes_the_session(team):
    token = sign_in("chen")

    async def scenario():
        root = rx.State(_reflex_internal_init=True)
        auth = await root.get_state(AuthState)
        auth.token = token
        out = await auth.logout()
        users = await root.get_state(UsersState)
        return auth, out, await users.load(), list(users.rows)

    auth, out, load_out, rows = run(scenario())
    assert redirect_path(out) == "/login" and auth.token == "" and auth.role == ""
    assert load_out is None and rows == []
    with session_scope() as s:
        assert accounts.resolve_session(s, token) is None


def test_guard_sends_signed_out_visitors_to_login(team):
    async def scenario(token: str):
        root = rx.State(_reflex_internal_init=True)
        auth = await root.get_state(AuthState)
        auth.token = token
        auth.router = dataclasses.replace(auth.router, url=ReflexURL("http://localhost:3000/staff"))
        return auth, await auth.guard("staff")

    auth, out = run(scenario(""))
    assert redirect_path(out) == "/login?next=/staff" and auth.checked and not auth.signed_in
    auth, out = run(scenario(sign_in("chen")))
    assert out is None and auth.role == "clerk"  # signed in: the page itself shows 无权访问
