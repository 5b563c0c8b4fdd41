"""Staff accounts: sign-in, throttling, sessions, administration rules, audit."""

import pytest
from sqlmodel import select

from gc_admin.accounts import service
from gc_admin.accounts.models import LoginAttempt
from gc_admin.audit.models import AuditLog
from gc_admin.core.errors import Conflict, Forbidden, InvalidInput, RateLimited, Unauthorized
from gc_admin.db import session_scope
from tests.support import SETUP, only_one_created, race, refused, scalar

N = 8  # threads released at once in a race


def _login(username, password, ip="10.0.0.1"):
    with session_scope() as s:
        p = service.authenticate(s, username=username, password=password, ip=ip)
        token, _ = service.start_session(s, principal=p, kind="web")
    return p, token


def _resolve(token):
    with session_scope() as s:
        return service.resolve_session(s, token)


def _admin(make_staff):
    make_staff("boss", "admin")
    return _login("boss", "secret2026")[0]


def test_create_and_sign_in(any_db, make_staff):
    make_staff("chen", "clerk", name="陈静")
    p, token = _login("CHEN ", "secret2026")
    assert (p.username, p.role, p.display_name) == ("chen", "clerk", "陈静")
    assert _resolve(token) == service.Principal(p.id, "chen", "陈静", "clerk")
    with session_scope() as s:
        actions = [a.action for a in s.exec(select(AuditLog).order_by(AuditLog.id)).all()]
    assert actions == ["staff.created", "staff.login"]


@pytest.mark.parametrize(
    "kw, code",
    [({"username": "ab"}, "INVALID_USERNAME"), ({"username": "1abc"}, "INVALID_USERNAME"),
     ({"password": "short1"}, "WEAK_PASSWORD"), ({"password": "onlyletters"}, "WEAK_PASSWORD"),
     ({"role": "root"}, "UNKNOWN_ROLE"), ({"display_name": ""}, "INVALID_NAME"), ({"phone": "12345"}, "INVALID_PHONE")],
)
def test_create_validation(db, kw, code):
    args = {"username": "valid", "display_name": "名", "password": "secret2026", "role": "clerk", **kw}
    with pytest.raises(InvalidInput) as err:
        with session_scope() as s:
            service.create_staff(s, actor=service.Actor("system"), **args)
    assert err.value.code == code


def test_duplicate_username(db, make_staff):
    make_staff("chen", "clerk")
    with refused(Conflict, "USERNAME_TAKEN"):
        make_staff("chen", "manager")


def test_wrong_password_is_recorded_and_throttles(any_db, make_staff):
    make_staff("chen", "clerk")
    for _ in range(5):
        with refused(Unauthorized, "BAD_CREDENTIALS") as err:
            _login("chen", "wrong-password")
        assert err.value.message.startswith("用户名或密码错误")
    # the failures were committed although each sign-in raised
    with session_scope() as s:
        assert len(s.exec(select(LoginAttempt).where(LoginAttempt.success == False)).all()) == 5  # noqa: E712
    # now even the right password is refused until the window passes
    with pytest.raises(RateLimited) as err:
        _login("chen", "secret2026")
    assert "分钟后再试" in err.value.message


def test_a_refused_sign_in_is_kept_however_the_callers_unit_of_work_ends(any_db, make_staff):
    """The failed attempt and its audit row are committed in a unit of work of their own: a caller
    that catches the refusal and then fails (its unit rolls back) does not erase what the throttle
    counts."""
    make_staff("chen", "clerk")
    with pytest.raises(RuntimeError):
        with session_scope() as s:
            with pytest.raises(Unauthorized):
                service.authenticate(s, username="chen", password="wrong-password", ip="10.0.0.1")
            raise RuntimeError("the caller's next step fails")
    with session_scope() as s:
        assert [(a.username, a.ip, a.success) for a in s.exec(select(LoginAttempt)).all()] == [("chen", "10.0.0.1", False)]
        assert [a.action for a in s.exec(select(AuditLog).order_by(AuditLog.id)).all()] == ["staff.created",
                                                                                          "staff.login_failed"]


def test_unknown_user_is_indistinguishable(db):
    with refused(Unauthorized, "BAD_CREDENTIALS"):
        _login("ghost", "whatever1")


def test_ip_throttle_across_usernames(db, make_staff):
    make_staff("chen", "clerk")
    for i in range(20):
        with refused(Unauthorized, "BAD_CREDENTIALS"):
            _login(f"user{i}", "nope", ip="10.9.9.9")
    with refused(RateLimited, "LOGIN_THROTTLED"):
        _login("chen", "secret2026", ip="10.9.9.9")
    assert _login("chen", "secret2026", ip="10.1.1.1")[0].username == "chen"


def test_disabled_account_cannot_sign_in_and_is_signed_out(db, make_staff):
    admin = _admin(make_staff)
    clerk = make_staff("chen", "clerk")
    _, token = _login("chen", "secret2026")
    with session_scope() as s:
        service.set_enabled(s, actor=admin, staff_id=clerk.id, enabled=False)
    assert _resolve(token) is None
    with refused(Unauthorized, "BAD_CREDENTIALS"):
        _login("chen", "secret2026")


def _attempt(username, password, ip="10.0.0.1"):
    """What a sign-in answers: (error type, status, code, message)."""
    try:
        _login(username, password, ip=ip)
    except Exception as exc:  # noqa: BLE001 - the answer is what is compared
        return type(exc).__name__, exc.status, exc.code, exc.message
    return ("signed in",)


def test_disabled_account_with_the_right_password_answers_like_a_wrong_password(any_db, make_staff):
    """The right password on a disabled account must not be confirmed: the same error, status, code
    and message as a wrong password on an enabled one, and the same throttle accounting."""
    admin = _admin(make_staff)
    disabled = make_staff("chen", "clerk")
    make_staff("wang", "clerk")
    with session_scope() as s:
        service.set_enabled(s, actor=admin, staff_id=disabled.id, enabled=False)
    right_on_disabled = [_attempt("chen", "secret2026") for _ in range(6)]
    wrong_on_enabled = [_attempt("wang", "wrong-password1") for _ in range(6)]
    assert right_on_disabled == wrong_on_enabled
    assert right_on_disabled[0] == ("Unauthorized", 401, "BAD_CREDENTIALS", "用户名或密码错误")
    assert "再失败 2 次" in right_on_disabled[2][3]
    assert right_on_disabled[5][:3] == ("RateLimited", 429, "LOGIN_THROTTLED")
    with session_scope() as s:
        rows = s.exec(select(LoginAttempt).order_by(LoginAttempt.id)).all()
        audit = s.exec(select(AuditLog).where(AuditLog.action == "staff.login_failed")).all()
    failures = {u: [a.success for a in rows if a.username == u] for u in ("chen", "wang")}
    assert failures["chen"] == failures["wang"] == [False] * 5
    # the audit log (read by admins, never by the person signing in) still says why
    assert {a.summary for a in audit if a.actor_name == "chen"} == {"账号已停用"}


def test_role_change_and_password_reset_revoke_sessions(db, make_staff):
    admin = _admin(make_staff)
    clerk = make_staff("chen", "clerk")
    _, t1 = _login("chen", "secret2026")
    with session_scope() as s:
        service.set_role(s, actor=admin, staff_id=clerk.id, role="manager")
    assert _resolve(t1) is None
    p, t2 = _login("chen", "secret2026")
    assert p.role == "manager"
    with session_scope() as s:
        service.reset_password(s, actor=admin, staff_id=clerk.id, new_password="another2027")
    assert _resolve(t2) is None
    with refused(Unauthorized, "BAD_CREDENTIALS"):
        _login("chen", "secret2026")
    assert _login("chen", "another2027")[0].role == "manager"
    with session_scope() as s:
        audit = s.exec(select(AuditLog).where(AuditLog.action == "staff.role_changed")).one()
    assert '"role": "clerk"' in audit.before and '"role": "manager"' in audit.after
    # the password never appears in the audit log
    with session_scope() as s:
        texts = " ".join(f"{a.summary}{a.before}{a.after}" for a in s.exec(select(AuditLog)).all())
    assert "another2027" not in texts and "secret2026" not in texts


def test_only_admin_manages_and_last_admin_is_protected(db, make_staff):
    admin = _admin(make_staff)
    make_staff("mgr", "manager")
    manager, _ = _login("mgr", "secret2026")
    with refused(Forbidden, "FORBIDDEN"):
        with session_scope() as s:
            service.set_role(s, actor=manager, staff_id=admin.id, role="clerk")
    with refused(Conflict, "LAST_ADMIN"):
        with session_scope() as s:
            service.set_role(s, actor=admin, staff_id=admin.id, role="clerk")
    with refused(Conflict, "SELF_DISABLE"):
        with session_scope() as s:
            service.set_enabled(s, actor=admin, staff_id=admin.id, enabled=False)


def test_logout_revokes(db, make_staff):
    make_staff("chen", "clerk")
    p, token = _login("chen", "secret2026")
    with session_scope() as s:
        service.end_session(s, token=token, principal=p)
    assert _resolve(token) is None
    assert _resolve("") is None and _resolve("x" * 500) is None


# --- programme of an insurer's account ----------------------------------------------------------

def _programmes(*codes):
    from gc_admin.coupons import service as coupons

    with session_scope() as s:
        for code in codes:
            coupons.create_programme(s, actor=service.Actor("system"), code=code, name=f"项目 {code}")


def test_an_insurer_account_acts_for_its_programme_only(db, make_staff):
    _programmes("picc_gx")
    make_staff("picc", "insurer", programme_code="picc_gx")
    make_staff("bare", "insurer")
    make_staff("chen", "clerk")
    picc, token = _login("picc", "secret2026")
    assert picc.programme() == "picc_gx" and _resolve(token).programme_code == "picc_gx"
    assert _login("chen", "secret2026")[0].programme() is None  # platform staff: every programme
    with pytest.raises(Forbidden) as err:
        _login("bare", "secret2026")[0].programme()
    assert err.value.code == "NO_PROGRAMME" and "尚未关联保险项目" in err.value.message
    with session_scope() as s:
        created = s.exec(select(AuditLog).where(AuditLog.action == "staff.created", AuditLog.target_id == str(picc.id))).one()
    assert "所属项目 picc_gx" in created.summary and '"programme": "picc_gx"' in (created.after or "")


@pytest.mark.parametrize("role, programme, code", [("clerk", "picc_gx", "PROGRAMME_NOT_ALLOWED"),
                                                   ("insurer", "nowhere", "PROGRAMME_NOT_FOUND")])
def test_only_insurer_accounts_get_an_existing_programme(db, role, programme, code):
    _programmes("picc_gx")
    with pytest.raises(InvalidInput) as err:
        with session_scope() as s:
            service.create_staff(s, actor=service.Actor("system"), username="someone", display_name="某人",
                                 password="secret2026", role=role, programme_code=programme)
    assert err.value.code == code


def test_admin_sets_the_programme_audited_and_it_holds_at_the_next_request(db, make_staff):
    _programmes("picc_gx", "other")
    admin = _admin(make_staff)
    user = make_staff("picc", "insurer")
    _, token = _login("picc", "secret2026")
    assert _resolve(token).programme_code is None
    with session_scope() as s:
        service.set_programme(s, actor=admin, staff_id=user.id, programme_code="other")
    assert _resolve(token).programme_code == "other"  # re-read from the account, no new sign-in needed
    with refused(Forbidden, "FORBIDDEN"):
        with session_scope() as s:
            service.set_programme(s, actor=service.Principal(user.id, "picc", "picc", "insurer", None, "other"),
                                  staff_id=user.id, programme_code="picc_gx")
    with refused(InvalidInput, "PROGRAMME_NOT_FOUND"):
        with session_scope() as s:
            service.set_programme(s, actor=admin, staff_id=user.id, programme_code="nowhere")
    with session_scope() as s:
        row = s.exec(select(AuditLog).where(AuditLog.action == "staff.programme_changed")).one()
    assert row.actor_id == str(admin.id) and row.summary == "picc 所属项目：无 → other"
    # a role change away from insurer drops the programme (only an insurer acts for one)
    with session_scope() as s:
        service.set_role(s, actor=admin, staff_id=user.id, role="clerk")
    with session_scope() as s:
        assert s.get(service.StaffUser, user.id).programme_code is None
    with refused(InvalidInput, "PROGRAMME_NOT_ALLOWED"):
        with session_scope() as s:
            service.set_programme(s, actor=admin, staff_id=user.id, programme_code="other")


# --- concurrent twins: one account per username -------------------------------------------------------

def test_concurrent_staff_accounts_with_one_username_create_one(any_db) -> None:
    from gc_admin.accounts.service import create_staff

    def work(i: int) -> int:
        with session_scope() as s:
            return create_staff(s, actor=SETUP, username="chen", display_name=f"陈{i}", password="secret2026",
                                role="clerk").id

    only_one_created(race(N, work), "USERNAME_TAKEN")
    assert scalar("SELECT count(*) FROM staff_user") == 1
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'staff.created'") == 1
