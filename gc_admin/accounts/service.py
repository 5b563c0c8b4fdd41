"""Staff accounts: create, sign in (throttled), sessions, role, programme and password administration.

An insurer's staff act for one insurer programme (``staff_user.programme_code``): everything
programme-scoped (issuing, batches, the 工作台 figures) is confined to it through
:meth:`Principal.programme`, and an insurer account without a programme can do none of it.
Platform staff carry no programme. (The programme table belongs to the programmes feature; this
module reads it only to check that a programme exists.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from gc_admin.accounts.models import LoginAttempt, StaffSession, StaffUser
from gc_admin.audit.service import record
from gc_admin.config import get_settings
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited, Unauthorized
from gc_admin.core.phone import normalize_phone
from gc_admin.core.principal import PROGRAMME_ROLES, Actor, Principal  # Principal re-exported until every room imports core's
from gc_admin.core.roles import ALL_ROLES, ROLE_LABELS
from gc_admin.core.security import hash_password, hash_token, new_token, password_problem, verify_password
from gc_admin.core.sorting import order_by
from gc_admin.programmes.models import Programme  # also registers the FK target
from gc_admin.db import Page, first_wins, paginate, separate_unit

USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{2,31}$")
IP_MAX_FAILURES_FACTOR = 4  # an address may fail this many times the per-username limit


def _principal(user: StaffUser, ip: str | None = None) -> Principal:
    assert user.id is not None
    programme = user.programme_code if user.role in PROGRAMME_ROLES else None
    return Principal(user.id, user.username, user.display_name, user.role, ip, programme,
                     user.supplier_code if user.role == "supplier" else None)


def _check_role(role: str) -> str:
    if role not in ALL_ROLES:
        raise InvalidInput(f"未知角色：{role}", code="UNKNOWN_ROLE")
    return role


def _check_programme(session: Session, role: str, programme_code: str | None) -> str | None:
    """The programme for an account of ``role``: only insurer accounts have one, and it must exist."""
    code = (programme_code or "").strip().lower() or None
    if code is None:
        return None
    if role not in PROGRAMME_ROLES:
        raise InvalidInput(f"只有{'、'.join(ROLE_LABELS[r] for r in sorted(PROGRAMME_ROLES))}账号可以关联项目",
                           code="PROGRAMME_NOT_ALLOWED")
    if session.exec(select(Programme.id).where(Programme.code == code)).first() is None:
        raise InvalidInput(f"项目 {code} 不存在，请先创建项目或选择已有项目", code="PROGRAMME_NOT_FOUND")
    return code


def programme_choices(session: Session) -> list[tuple[str, str]]:
    """``(code, name)`` of every programme, for the staff page's programme picker."""
    return [(c, n) for c, n in session.exec(select(Programme.code, Programme.name).order_by(col(Programme.code))).all()]


def create_staff(
    session: Session,
    *,
    actor: Actor,
    username: str,
    display_name: str,
    password: str,
    role: str,
    phone: str | None = None,
    programme_code: str | None = None,
) -> StaffUser:
    """Create a staff account; usernames are unique, lower-case, 3–32 characters. An insurer
    account may be given its programme (``programme_code``); other roles have none."""
    username = username.strip().lower()
    display_name = display_name.strip()
    if not USERNAME_RE.match(username):
        raise InvalidInput("用户名需 3–32 位，以小写字母开头，只含小写字母、数字、_ . -", code="INVALID_USERNAME")
    if not display_name or len(display_name) > 32:
        raise InvalidInput("姓名不能为空，且不超过 32 个字", code="INVALID_NAME")
    if problem := password_problem(password):
        raise InvalidInput(problem, code="WEAK_PASSWORD")
    _check_role(role)
    programme = _check_programme(session, role, programme_code)
    norm_phone = None
    if phone:
        norm_phone = normalize_phone(phone)
        if norm_phone is None:
            raise InvalidInput("手机号格式不正确", code="INVALID_PHONE")

    def taken() -> None:
        if session.exec(select(StaffUser.id).where(StaffUser.username == username)).first() is not None:
            raise Conflict(f"用户名 {username} 已存在", code="USERNAME_TAKEN")

    taken()
    now = utcnow()
    user = StaffUser(
        username=username,
        display_name=display_name,
        password_hash=hash_password(password),
        role=role,
        phone=norm_phone,
        programme_code=programme,
        created_at=now,
        updated_at=now,
        password_changed_at=now,
    )

    def insert() -> StaffUser:
        session.add(user)
        session.flush()
        return user

    first_wins(session, insert, replay=taken)  # a twin that took the name first: USERNAME_TAKEN
    record(
        session,
        actor=actor,
        action="staff.created",
        target_type="staff",
        target_id=user.id,
        summary=f"创建员工 {username}（{ROLE_LABELS[role]}）" + (f"，所属项目 {programme}" if programme else ""),
        after={"username": username, "role": role, "enabled": True, **({"programme": programme} if programme else {})},
    )
    return user


def _recent_failures(session: Session, *, username: str, ip: str | None, since: dt.datetime) -> tuple[int, int]:
    by_user = session.exec(
        select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.username == username, LoginAttempt.success == False, col(LoginAttempt.at) >= since  # noqa: E712
        )
    ).one()
    by_ip = 0
    if ip:
        by_ip = session.exec(
            select(func.count()).select_from(LoginAttempt).where(
                LoginAttempt.ip == ip, LoginAttempt.success == False, col(LoginAttempt.at) >= since  # noqa: E712
            )
        ).one()
    return int(by_user), int(by_ip)


@dataclasses.dataclass(frozen=True)
class FailedSignIn:
    """A refused sign-in as the throttle and the audit log keep it."""

    username: str
    ip: str | None
    at: dt.datetime
    staff_id: int | None
    reason: str  # the audit summary: why (for an admin; the person signing in is told less)


def record_failed_sign_in(session: Session, *, failure: FailedSignIn) -> None:
    """Write a refused sign-in: the attempt row the throttle counts, and its audit row."""
    session.add(LoginAttempt(username=failure.username, ip=failure.ip, success=False, at=failure.at))
    record(
        session,
        actor=Actor("staff", None if failure.staff_id is None else str(failure.staff_id), failure.username, failure.ip),
        action="staff.login_failed",
        target_type="staff",
        target_id=failure.staff_id,
        summary=failure.reason,
    )


def authenticate(session: Session, *, username: str, password: str, ip: str | None = None) -> Principal:
    """Check a sign-in against the throttle, the password and the account state.

    A wrong password, an unknown username and a disabled account all get the same answer.

    A refusal is recorded (:func:`record_failed_sign_in`) in a unit of work of its own
    (:func:`gc_admin.db.separate_unit`, committed before the refusal is raised), so the caller's unit
    rolls back as for any failed action and the throttle still counts the failure. Call it before the
    unit of work writes anything (every sign-in does: it comes first).
    """
    settings = get_settings()
    username = (username or "").replace("\x00", "").strip().lower()[:64]  # PostgreSQL refuses NUL in text
    now = utcnow()
    window_start = now - dt.timedelta(minutes=settings.login_window_minutes)
    by_user, by_ip = _recent_failures(session, username=username, ip=ip, since=window_start)
    if by_user >= settings.login_max_failures or by_ip >= settings.login_max_failures * IP_MAX_FAILURES_FACTOR:
        raise RateLimited(f"登录失败次数过多，请 {settings.login_window_minutes} 分钟后再试", code="LOGIN_THROTTLED")
    user = session.exec(select(StaffUser).where(StaffUser.username == username)).first()
    ok = verify_password(user.password_hash if user else None, password or "")
    if not ok or user is None or not user.enabled:
        failure = FailedSignIn(username, ip, now, user.id if user else None,
                               "账号已停用" if (ok and user is not None and not user.enabled) else "用户名或密码错误")
        with separate_unit(session) as own:  # kept, although the sign-in raises and the caller's unit rolls back
            record_failed_sign_in(own, failure=failure)
        # A disabled account answers exactly as a wrong password does (same error, message and
        # throttle count): saying "disabled" would confirm the password to whoever typed it.
        # The audit row above tells an admin why.
        remaining = settings.login_max_failures - by_user - 1
        hint = f"，再失败 {remaining} 次将锁定 {settings.login_window_minutes} 分钟" if 0 < remaining <= 2 else ""
        raise Unauthorized("用户名或密码错误" + hint, code="BAD_CREDENTIALS")
    session.add(LoginAttempt(username=username, ip=ip, success=True, at=now))
    user.last_login_at = now
    session.add(user)
    return _principal(user, ip)


def start_session(session: Session, *, principal: Principal, kind: str) -> tuple[str, dt.datetime]:
    """Open a session for a verified principal; returns the bearer token (shown once) and expiry."""
    token = new_token()
    now = utcnow()
    expires = now + dt.timedelta(hours=get_settings().staff_session_hours)
    session.add(
        StaffSession(
            token_hash=hash_token(token), staff_id=principal.id, kind=kind, ip=principal.ip, created_at=now, expires_at=expires
        )
    )
    record(session, actor=principal.actor(), action="staff.login", target_type="staff", target_id=principal.id,
           summary=f"{'后台' if kind == 'web' else 'API'}登录")
    return token, expires


def resolve_session(session: Session, token: str | None, *, ip: str | None = None) -> Principal | None:
    """The principal behind a live token of an enabled account, or ``None``."""
    if not token or len(token) > 200:
        return None
    now = utcnow()
    row = session.exec(
        select(StaffUser)
        .join(StaffSession, col(StaffSession.staff_id) == col(StaffUser.id))
        .where(
            StaffSession.token_hash == hash_token(token),
            col(StaffSession.revoked_at).is_(None),
            col(StaffSession.expires_at) > now,
            StaffUser.enabled == True,  # noqa: E712
        )
    ).first()
    return _principal(row, ip) if row is not None else None


def end_session(session: Session, *, token: str, principal: Principal | None = None) -> None:
    """Revoke one session (sign-out)."""
    session.exec(
        update(StaffSession)
        .where(col(StaffSession.token_hash) == hash_token(token), col(StaffSession.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    if principal is not None:
        record(session, actor=principal.actor(), action="staff.logout", target_type="staff", target_id=principal.id,
               summary="退出登录")


def _revoke_all(session: Session, staff_id: int) -> None:
    session.exec(
        update(StaffSession)
        .where(col(StaffSession.staff_id) == staff_id, col(StaffSession.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


def _get(session: Session, staff_id: int) -> StaffUser:
    user = session.get(StaffUser, staff_id)
    if user is None:
        raise NotFound("员工不存在", code="STAFF_NOT_FOUND")
    return user


def get_staff(session: Session, *, staff_id: int) -> StaffUser:
    """One staff account, or ``STAFF_NOT_FOUND``."""
    return _get(session, staff_id)


def _require_admin(actor: Principal) -> None:
    if actor.role != "admin":
        raise Forbidden("只有管理员可以管理员工账号", code="FORBIDDEN")


def _enabled_admins(session: Session) -> int:
    return int(session.exec(
        select(func.count()).select_from(StaffUser).where(StaffUser.role == "admin", StaffUser.enabled == True)  # noqa: E712
    ).one())


def set_role(session: Session, *, actor: Principal, staff_id: int, role: str) -> StaffUser:
    """Change a staff member's role; the last enabled admin cannot be demoted."""
    _require_admin(actor)
    _check_role(role)
    user = _get(session, staff_id)
    if user.role == role:
        return user
    if user.role == "admin" and user.enabled and _enabled_admins(session) <= 1:
        raise Conflict("不能变更最后一个管理员的角色", code="LAST_ADMIN")
    before = user.role
    before_programme = user.programme_code
    user.role = role
    if role not in PROGRAMME_ROLES:
        user.programme_code = None  # only an insurer acts for a programme
    user.updated_at = utcnow()
    session.add(user)
    _revoke_all(session, staff_id)  # new role takes effect at the next sign-in
    dropped = {"programme": before_programme} if before_programme and user.programme_code is None else {}
    record(session, actor=actor.actor(), action="staff.role_changed", target_type="staff", target_id=staff_id,
           summary=f"{user.username}：{ROLE_LABELS[before]} → {ROLE_LABELS[role]}"
                   + (f"（不再关联项目 {before_programme}）" if dropped else ""),
           before={"role": before, **dropped}, after={"role": role, **({"programme": None} if dropped else {})})
    return user


def set_programme(session: Session, *, actor: Principal, staff_id: int, programme_code: str | None) -> StaffUser:
    """Set (or clear, with ``None``/"") the programme an insurer account acts for; audited. Takes
    effect at the account's next request (the principal is re-read from the account every time)."""
    _require_admin(actor)
    user = _get(session, staff_id)
    code = _check_programme(session, user.role, programme_code)
    if user.programme_code == code:
        return user
    before = user.programme_code
    user.programme_code = code
    user.updated_at = utcnow()
    session.add(user)
    record(session, actor=actor.actor(), action="staff.programme_changed", target_type="staff", target_id=staff_id,
           summary=f"{user.username} 所属项目：{before or '无'} → {code or '无'}",
           before={"programme": before}, after={"programme": code})
    return user


def reset_password(session: Session, *, actor: Principal, staff_id: int, new_password: str) -> StaffUser:
    """Set a new password and sign the account out everywhere."""
    _require_admin(actor)
    if problem := password_problem(new_password):
        raise InvalidInput(problem, code="WEAK_PASSWORD")
    user = _get(session, staff_id)
    now = utcnow()
    user.password_hash = hash_password(new_password)
    user.password_changed_at = now
    user.updated_at = now
    session.add(user)
    _revoke_all(session, staff_id)
    record(session, actor=actor.actor(), action="staff.password_reset", target_type="staff", target_id=staff_id,
           summary=f"重置 {user.username} 的密码")
    return user


def set_enabled(session: Session, *, actor: Principal, staff_id: int, enabled: bool) -> StaffUser:
    """Disable (signs out everywhere) or re-enable an account; admins cannot disable themselves."""
    _require_admin(actor)
    user = _get(session, staff_id)
    if user.enabled == enabled:
        return user
    if not enabled:
        if staff_id == actor.id:
            raise Conflict("不能停用自己的账号", code="SELF_DISABLE")
        if user.role == "admin" and _enabled_admins(session) <= 1:
            raise Conflict("不能停用最后一个管理员", code="LAST_ADMIN")
    user.enabled = enabled
    user.updated_at = utcnow()
    session.add(user)
    if not enabled:
        _revoke_all(session, staff_id)
    record(session, actor=actor.actor(), action="staff.enabled" if enabled else "staff.disabled", target_type="staff",
           target_id=staff_id, summary=f"{'启用' if enabled else '停用'} {user.username}",
           before={"enabled": not enabled}, after={"enabled": enabled})
    return user


STAFF_SORT_KEYS = {"username": col(StaffUser.username), "display_name": col(StaffUser.display_name),
                   "role": col(StaffUser.role), "enabled": col(StaffUser.enabled),
                   "last_login_at": col(StaffUser.last_login_at)}


def list_staff(session: Session, *, q: str = "", role: str = "", sort: str | None = None, offset: int = 0,
               limit: int = 50) -> Page[StaffUser]:
    """Staff accounts filtered by name/username and role (oldest account first, or by ``sort``:
    :data:`STAFF_SORT_KEYS`), with the total."""
    stmt = select(StaffUser)
    if q:
        like = f"%{q.strip()[:32]}%"
        stmt = stmt.where(or_(col(StaffUser.username).like(like), col(StaffUser.display_name).like(like)))
    if role:
        stmt = stmt.where(StaffUser.role == role)
    order = order_by(sort, STAFF_SORT_KEYS, tie=col(StaffUser.id), default=[col(StaffUser.id)])
    return paginate(session, stmt, order=order, offset=offset, limit=limit)


def count_enabled_staff(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(StaffUser).where(StaffUser.enabled == True)).one())  # noqa: E712
