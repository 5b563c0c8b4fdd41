"""Mini-program sign-in (WeChat code2Session + phone, SMS code), tokens, and the users list."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import secrets
from collections.abc import Callable
from typing import Any

import polars as pl
from sqlalchemy import Connection, bindparam, func, update
from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.config import get_settings
from gc_admin.core.clock import UTC, as_utc, fmt_local, utcnow
from gc_admin.core.errors import Conflict, DomainError, InvalidInput, RateLimited, Unauthorized, UpstreamError
from gc_admin.core.export_jobs import Filters, register_export
from gc_admin.core.exports import EXPORT_LIMIT
from gc_admin.core.phone import mask_phone, normalize_phone
from gc_admin.core.principal import Actor
from gc_admin.core.security import hmac_digest, issue_jwt, read_jwt
from gc_admin.core.sorting import order_by
from gc_admin.db import Page, first_wins, lock_for_write, lock_keys, paginate, separate_unit
from gc_admin.integrations.sms.models import SmsMessage
from gc_admin.integrations.sms.service import send_sms
from gc_admin.integrations.wechat.client import WeChatError, get_client
from gc_admin.users.models import MpUser, SmsLoginCode

SMS_CODE_TTL = dt.timedelta(minutes=5)
SMS_COOLDOWN = dt.timedelta(seconds=60)
SMS_PER_PHONE_PER_DAY = 10
SMS_PER_IP_PER_HOUR = 30
SMS_MAX_ATTEMPTS = 5
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class TokenGrant:
    token: str
    expires_at: dt.datetime
    user: MpUser


def user_actor(user: MpUser, ip: str | None = None) -> Actor:
    return Actor("user", str(user.id), mask_phone(user.phone) or f"用户#{user.id}", ip)


def _row_stamp(user: MpUser) -> int:
    """The row's creation time in microseconds: a token names the row, not just its id.

    Binding a phone can delete a WeChat-only account, and SQLite gives a deleted row's id to
    the next new row; without this claim the deleted account's tokens would open that one.
    """
    return _stamp(user.created_at)


def _stamp(created_at: dt.datetime) -> int:
    return (as_utc(created_at) - _EPOCH) // dt.timedelta(microseconds=1)


def _grant(user: MpUser) -> TokenGrant:
    token, exp = issue_jwt(str(user.id), kind="mp", minutes=get_settings().mp_token_minutes,
                           extra={"uct": _row_stamp(user)})
    return TokenGrant(token, exp, user)


def _find_or_create(session: Session, column: Any, value: str, **fields: Any) -> MpUser:
    """The user whose unique ``column`` (openid, phone) is ``value``, created if there is none — or
    the one a concurrent sign-in created first (:func:`gc_admin.db.first_wins`)."""
    def find() -> MpUser | None:
        return session.exec(select(MpUser).where(column == value)).first()

    def create() -> MpUser:
        user = MpUser(**{column.key: value}, **fields)
        session.add(user)
        session.flush()
        return user

    return find() or first_wins(session, create, replay=find)


def _token_user_id(token: str | None) -> tuple[int, Any] | None:
    """(user id, row stamp claim) of a valid mini-program token, or ``None``."""
    payload = read_jwt(token, kind="mp") if token else None
    if payload is None:
        return None
    try:
        return int(payload["sub"]), payload.get("uct")
    except (TypeError, ValueError):
        return None


def user_from_token(session: Session, token: str | None) -> MpUser | None:
    """The user behind a valid mini-program token, or ``None``."""
    claim = _token_user_id(token)
    if claim is None:
        return None
    user = session.get(MpUser, claim[0])
    if user is None or claim[1] != _row_stamp(user):
        return None
    return user


@dataclasses.dataclass(frozen=True)
class TokenHolder:
    """Who a mini-program token names, read without the ORM (for the hottest reads): id and phone."""

    id: int
    phone: str | None


_HOLDER = select(col(MpUser.phone), col(MpUser.created_at)).where(col(MpUser.id) == bindparam("uid"))


def holder_of_token(connection: Connection, token: str | None) -> TokenHolder | None:
    """:func:`user_from_token`'s check (signature, expiry, the row the token names) as one Core read on
    ``connection``: the same ``None`` for a bad, expired, deleted-account or reused-id token."""
    claim = _token_user_id(token)
    if claim is None:
        return None
    row = connection.execute(_HOLDER, {"uid": claim[0]}).first()
    if row is None or claim[1] != _stamp(row[1]):
        return None
    return TokenHolder(claim[0], row[0])


def _upstream(exc: WeChatError) -> DomainError:
    if exc.errcode in (40029, 40163):
        return Unauthorized("微信登录凭证无效或已过期，请重新进入小程序", code="WECHAT_CODE_INVALID")
    return UpstreamError("微信服务暂时不可用，请稍后再试", code="WECHAT_UNAVAILABLE")


def wechat_login(session: Session, *, code: str, ip: str | None = None) -> TokenGrant:
    """Sign in with a ``wx.login`` code: find or create the user by openid."""
    try:
        wx = get_client().code2session(code)
    except WeChatError as exc:
        raise _upstream(exc) from exc
    now = utcnow()
    user = _find_or_create(session, col(MpUser.openid), wx.openid, unionid=wx.unionid, created_at=now)
    user.last_login_at = now
    session.add(user)
    session.flush()
    record(session, actor=user_actor(user, ip), action="user.login", target_type="mp_user", target_id=user.id,
           summary="微信登录")
    return _grant(user)


def bind_phone(session: Session, *, user: MpUser, phone_code: str, ip: str | None = None) -> TokenGrant:
    """Bind the phone from WeChat's getPhoneNumber to the signed-in user.

    If that phone already has an account without WeChat (signed in by SMS, or only known
    because coupons were issued to it), the WeChat identity moves onto that account, so
    everything already waiting for the phone belongs to this person from now on.

    ``user`` may be a detached row: the account is re-read and locked, so concurrent binds decide
    one after the other as sequential ones would (a twin that finds its account already moved gets
    the moved-to account, the first answer).
    """
    try:
        phone = normalize_phone(get_client().get_phone_number(phone_code))
    except WeChatError as exc:
        raise _upstream(exc) from exc
    if phone is None:
        raise InvalidInput("仅支持中国大陆手机号", code="INVALID_PHONE")
    assert user.id is not None

    def bind() -> TokenGrant:
        return _bind_phone(session, user_id=user.id, openid=user.openid, phone=phone, ip=ip)

    # A twin binding this phone to another account first breaks the unique phone: decide again.
    return first_wins(session, bind, replay=bind)


def _locked(session: Session, *conds) -> MpUser | None:
    """The user matching ``conds``, re-read and locked to the end of the unit of work (the row on
    PostgreSQL; on SQLite the caller holds the write lock): concurrent binds of one account or onto
    one phone's account decide one after the other, each on what the one before did."""
    q = select(MpUser).where(*conds).execution_options(populate_existing=True)
    if session.connection().dialect.name == "postgresql":
        q = q.with_for_update()
    return session.exec(q).first()


def _bind_phone(session: Session, *, user_id: int, openid: str | None, phone: str, ip: str | None) -> TokenGrant:
    lock_for_write(session)
    user = _locked(session, col(MpUser.id) == user_id)
    if user is None:  # a twin of this request moved the account onto the phone's account: its answer
        moved = _locked(session, col(MpUser.openid) == openid, col(MpUser.phone) == phone) if openid else None
        if moved is None:
            raise Unauthorized("登录已失效，请重新登录", code="UNAUTHORIZED")
        return _grant(moved)
    if user.phone == phone:
        return _grant(user)
    if user.phone is not None:
        raise Conflict("该微信账号已绑定其他手机号", code="PHONE_ALREADY_BOUND")
    owner = _locked(session, col(MpUser.phone) == phone)
    target = user
    if owner is not None and owner.id != user.id:
        if owner.openid is not None:
            raise Conflict("该手机号已绑定其他微信账号", code="PHONE_BOUND_TO_OTHER")
        openid, unionid = user.openid, user.unionid
        session.delete(user)  # a WeChat-only account has nothing of its own yet
        session.flush()
        owner.openid, owner.unionid = openid, unionid
        target = owner
    else:
        target.phone = phone
    target.last_login_at = utcnow()
    session.add(target)
    session.flush()
    record(session, actor=user_actor(target, ip), action="user.phone_bound", target_type="mp_user",
           target_id=target.id, summary=f"绑定手机号 {mask_phone(phone)}")
    _claim_waiting_coupons(session, target)
    return _grant(target)


#: What happens, in the same unit of work, when a user is signed in with a phone (SMS sign-in or
#: a WeChat phone binding). Features above ``users`` register here — ``coupons.wallet`` attaches
#: the coupons issued to the phone before the user existed — because users may not import them
#: (coupons build on users). Each hook is ``hook(session, user=...)`` and must be idempotent.
PHONE_SIGNED_IN: list[Callable[..., object]] = []


def on_phone_signed_in(hook: Callable[..., object]) -> Callable[..., object]:
    """Register ``hook`` (see :data:`PHONE_SIGNED_IN`); usable as a decorator; registering twice is a no-op."""
    if hook not in PHONE_SIGNED_IN:
        PHONE_SIGNED_IN.append(hook)
    return hook


def _claim_waiting_coupons(session: Session, user: MpUser) -> None:
    """Run the phone sign-in hooks (coupons waiting for the phone become the user's)."""
    for hook in PHONE_SIGNED_IN:
        hook(session, user=user)


def _count(session: Session, *conds) -> int:
    return int(session.exec(select(func.count()).select_from(SmsLoginCode).where(*conds)).one())


def send_login_code(session: Session, *, phone: str, ip: str | None = None) -> SmsMessage:
    """Send a 6-digit code, at most once a minute and 10 times a day per phone, 30 an hour per IP.

    Returns the outbox row, ``failed`` if the provider refused the message: the caller commits (the
    code counts toward the limits, 短信记录 shows the failure) and then answers with
    :func:`raise_if_not_sent`.
    """
    norm = normalize_phone(phone)
    if norm is None:
        raise InvalidInput("请输入正确的 11 位手机号", code="INVALID_PHONE")
    # The limits count the codes already sent: concurrent requests for a phone (or from an address)
    # count one after the other, so the first of a minute sends and its twins get SMS_TOO_FREQUENT.
    lock_keys(session, f"sms:phone:{norm}", *([f"sms:ip:{ip}"] if ip else []))
    now = utcnow()
    last = session.exec(
        select(SmsLoginCode.created_at).where(SmsLoginCode.phone == norm).order_by(col(SmsLoginCode.id).desc())
    ).first()
    if last is not None and now - last < SMS_COOLDOWN:
        wait = int((SMS_COOLDOWN - (now - last)).total_seconds()) + 1
        raise RateLimited(f"验证码已发送，请 {wait} 秒后再试", code="SMS_TOO_FREQUENT", details={"retry_after": wait})
    if _count(session, SmsLoginCode.phone == norm, col(SmsLoginCode.created_at) >= now - dt.timedelta(days=1)) >= SMS_PER_PHONE_PER_DAY:
        raise RateLimited("该手机号今日获取验证码次数已达上限，请明天再试", code="SMS_DAILY_LIMIT")
    if ip and _count(session, SmsLoginCode.ip == ip, col(SmsLoginCode.created_at) >= now - dt.timedelta(hours=1)) >= SMS_PER_IP_PER_HOUR:
        raise RateLimited("请求过于频繁，请稍后再试", code="SMS_IP_LIMIT")
    code = f"{secrets.randbelow(1_000_000):06d}"
    session.add(SmsLoginCode(phone=norm, code_digest=hmac_digest(f"{norm}:{code}"), ip=ip, created_at=now,
                             expires_at=now + SMS_CODE_TTL))
    return send_sms(session, phone=norm, template="login_code", params={"code": code})


def raise_if_not_sent(msg: SmsMessage) -> None:
    """``SMS_SEND_FAILED`` for a login code the provider refused — raised by the caller after its unit
    of work committed the code and the outbox row (:func:`send_login_code`)."""
    if msg.status == "failed":
        raise UpstreamError("短信发送失败，请稍后再试", code="SMS_SEND_FAILED")


def sms_login(session: Session, *, phone: str, code: str, ip: str | None = None) -> TokenGrant:
    """Sign in with the latest unexpired code sent to ``phone`` (5 tries per code, one use)."""
    norm = normalize_phone(phone)
    if norm is None:
        raise InvalidInput("请输入正确的 11 位手机号", code="INVALID_PHONE")
    now = utcnow()
    row = session.exec(
        select(SmsLoginCode)
        .where(SmsLoginCode.phone == norm, col(SmsLoginCode.consumed_at).is_(None), col(SmsLoginCode.expires_at) > now)
        .order_by(col(SmsLoginCode.id).desc())
    ).first()
    bad = Unauthorized("验证码错误或已过期，请重新获取", code="SMS_CODE_INVALID")
    if row is None:
        raise bad
    # The try is counted before the code is compared, by a conditional UPDATE: concurrent guesses
    # cannot get more than SMS_MAX_ATTEMPTS compared between them. It is counted in a unit of work of
    # its own, committed at once: a wrong try stays counted while its refusal rolls back the caller's.
    with separate_unit(session) as own:
        counted = own.exec(update(SmsLoginCode).where(col(SmsLoginCode.id) == row.id,
                                                      col(SmsLoginCode.attempts) < SMS_MAX_ATTEMPTS)
                           .values(attempts=SmsLoginCode.attempts + 1)).rowcount == 1
    if not counted:
        raise bad
    if not hmac.compare_digest(row.code_digest, hmac_digest(f"{norm}:{code.strip()}")):
        raise bad
    # One use, even when two requests race: only the one that flips consumed_at wins.
    res = session.exec(
        update(SmsLoginCode).where(col(SmsLoginCode.id) == row.id, col(SmsLoginCode.consumed_at).is_(None))
        .values(consumed_at=now)
    )
    if res.rowcount != 1:
        raise bad
    user = _find_or_create(session, col(MpUser.phone), norm, created_at=now)
    user.last_login_at = now
    session.add(user)
    session.flush()
    record(session, actor=user_actor(user, ip), action="user.login", target_type="mp_user", target_id=user.id,
           summary="短信验证码登录")
    _claim_waiting_coupons(session, user)
    return _grant(user)


USER_SORT_KEYS = {"id": col(MpUser.id), "phone": col(MpUser.phone), "city": col(MpUser.city),
                  "created_at": col(MpUser.created_at), "last_login_at": col(MpUser.last_login_at)}


def _users_query(phone: str):
    q = select(MpUser)
    digits = "".join(ch for ch in phone if ch.isdigit())[:11]
    if digits:
        q = q.where(col(MpUser.phone).contains(digits))
    return q


def _users_order(sort: str | None) -> list:
    return order_by(sort, USER_SORT_KEYS, tie=col(MpUser.id), default=[col(MpUser.id).desc()])


def list_users(session: Session, *, phone: str = "", sort: str | None = None, offset: int = 0,
               limit: int = 50) -> Page[MpUser]:
    """Users whose phone contains ``phone`` (digits), newest first (or by ``sort``: :data:`USER_SORT_KEYS`)."""
    return paginate(session, _users_query(phone), order=_users_order(sort), offset=offset, limit=limit)


def users_frame(session: Session, *, phone: str = "", sort: str | None = None) -> pl.DataFrame:
    """Every user matching the filter (up to the export limit), in the list's order, phones masked."""
    rows = session.exec(_users_query(phone).order_by(*_users_order(sort)).limit(EXPORT_LIMIT)).all()
    return pl.DataFrame({
        "用户ID": pl.Series([u.id for u in rows], dtype=pl.Int64),
        "手机号": [mask_phone(u.phone) or "未绑定" for u in rows],
        "微信": ["已授权" if u.openid else "未授权" for u in rows],
        "昵称": [u.nickname for u in rows],
        "城市": [u.city for u in rows],
        "注册时间": [fmt_local(u.created_at) for u in rows],
        "最近登录": [fmt_local(u.last_login_at) for u in rows],
    })


def export_users(session: Session, who: Any, filters: dict[str, Any]) -> pl.DataFrame:  # noqa: ARG001 - one scope
    """The ``users`` export (``exports.build``): :func:`users_frame` of the page's search, phones masked."""
    f = Filters(filters)
    return users_frame(session, phone=f.text("phone", limit=32) or "", sort=f.text("sort", limit=32))


USERS_EXPORT = register_export("users", "用户", export_users, section="users")


def count_users(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(MpUser)).one())
