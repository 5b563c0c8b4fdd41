"""The user's side of coupons ("我的礼券"), the use flow, reserve / consume / release for non-code coupons,
and the staff's masked view of a user's (or a waiting phone's) coupons and their history (用户 page).

A user owns a coupon when ``coupon.user_id`` is theirs, or when it is still waiting for their
phone number (``user_id IS NULL AND phone = user.phone``). Every lookup filters by that in SQL,
so someone else's coupon id gives the very same :class:`NotFound` as a missing one.

State changes are conditional UPDATEs whose row count decides who won (DESIGN.md §2.4):
- reveal: ``... WHERE revealed_at IS NULL AND status = 'available'`` — exactly one first reveal;
- reserve: ``available -> reserved``; consume: ``reserved(ref) -> used``; release: ``reserved(ref) -> available``.
Repeating an operation with the same reference changes nothing and writes no second audit row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from typing import Any

from sqlalchemy import Connection, String, and_, bindparam, case, false, func, literal, or_, update
from sqlmodel import Session, col, select

from gc_admin.audit.models import AuditLog
from gc_admin.audit.service import entry, record, record_many
from gc_admin.core.clock import iso, utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.core.phone import mask_phone, mask_secret, normalize_phone
from gc_admin.core.principal import SYSTEM, Actor
from gc_admin.core.types import UTCDateTime
from gc_admin.coupons.models import (
    REDEMPTION_CODE,
    REVOKED_PREFIX,
    SHOWN_STATUSES,
    Coupon,
    CouponPurchaseItem,
    IssuanceBatch,
    Product,
    StockCode,
)
from gc_admin.users.models import MpUser
from gc_admin.users.service import on_phone_signed_in

USER_STATUSES = tuple(SHOWN_STATUSES)  # available | reserved | used | expired | revoked


def _not_found() -> NotFound:
    return NotFound("券不存在", code="COUPON_NOT_FOUND")


def _actor(user: MpUser) -> Actor:
    return Actor("user", str(user.id), mask_phone(user.phone) or f"用户#{user.id}")


def _owned(user: MpUser) -> Any:
    """SQL condition: the coupon belongs to ``user`` (by id, or waiting for their phone)."""
    by_id = col(Coupon.user_id) == user.id
    if user.phone:
        return or_(by_id, and_(col(Coupon.user_id).is_(None), col(Coupon.phone) == user.phone))
    return by_id if user.id is not None else false()


def _shown_status(now: Any) -> Any:
    """What a person sees (``SHOWN_STATUSES``): an available coupon past its date is expired; one taken
    back by a refund is revoked. ``now``: a datetime or a bound parameter."""
    return case((and_(col(Coupon.status) == "available", col(Coupon.expires_at) < now), literal("expired")),
                (and_(col(Coupon.status) == "expired", col(Coupon.reserved_for).like(REVOKED_PREFIX + "%")),
                 literal("revoked")),
                else_=col(Coupon.status))


@dataclasses.dataclass(frozen=True)
class CouponView:
    """A coupon as its owner sees it (API.md "Coupon (user view)"). Never carries a code."""

    id: int
    product_code: str
    product_name: str
    kind: str
    face_fen: int
    percent_off: int | None
    category: str | None
    status: str  # USER_STATUSES: available | reserved | used | expired | revoked
    issued_at: dt.datetime
    expires_at: dt.datetime
    use_by: dt.datetime | None
    revealed_at: dt.datetime | None
    used_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "product": {"code": self.product_code, "name": self.product_name, "kind": self.kind,
                        "face_fen": self.face_fen, "percent_off": self.percent_off, "category": self.category},
            "status": self.status, "issued_at": iso(self.issued_at), "expires_at": iso(self.expires_at),
            "use_by": iso(self.use_by), "revealed_at": iso(self.revealed_at), "used_at": iso(self.used_at),
        }


def _view_query(now: dt.datetime) -> Any:
    return (
        select(Coupon.id, Product.code, Product.name, Product.kind, Coupon.face_fen, Product.percent_off,
               Product.category, _shown_status(now), Coupon.issued_at, Coupon.expires_at, Coupon.use_by,
               Coupon.revealed_at, Coupon.used_at)
        .select_from(Coupon)
        .join(Product, col(Product.id) == col(Coupon.product_id))
    )


_LIST_STATEMENTS: dict[tuple[str | None, bool], Any] = {}


def _list_statement(status: str | None, has_phone: bool) -> Any:
    """The user's-coupons query, built once per shape with bound parameters (the hottest read of the
    mini-program: building the expression tree each time cost as much as running it)."""
    key = (status, has_phone)
    stmt = _LIST_STATEMENTS.get(key)
    if stmt is None:
        shown = _shown_status(bindparam("now", type_=UTCDateTime()))
        owned = col(Coupon.user_id) == bindparam("uid")
        if has_phone:
            owned = or_(owned, and_(col(Coupon.user_id).is_(None), col(Coupon.phone) == bindparam("phone")))
        q = (select(Coupon.id, Product.code, Product.name, Product.kind, Coupon.face_fen, Product.percent_off,
                    Product.category, shown, Coupon.issued_at, Coupon.expires_at, Coupon.use_by,
                    Coupon.revealed_at, Coupon.used_at)
             .select_from(Coupon).join(Product, col(Product.id) == col(Coupon.product_id)).where(owned))
        if status is not None:
            q = q.where(shown == status)
        order = (col(Coupon.expires_at), col(Coupon.id)) if status == "available" else (col(Coupon.id).desc(),)
        stmt = _LIST_STATEMENTS[key] = q.order_by(*order).limit(1000)
    return stmt


def _user_rows(connection: Connection, *, user_id: int | None, phone: str | None, status: str | None,
               now: dt.datetime | None) -> list[Any]:
    if status is not None and status not in USER_STATUSES:
        raise InvalidInput("未知的券状态", code="INVALID_STATUS")
    if user_id is None and not phone:
        return []
    params: dict[str, Any] = {"now": now or utcnow(), "uid": user_id}
    if phone:
        params["phone"] = phone
    return connection.execute(_list_statement(status, bool(phone)), params).all()


def list_user_coupons(session: Session, *, user: MpUser, status: str | None = None,
                      now: dt.datetime | None = None) -> list[CouponView]:
    """The user's coupons, optionally by shown status; available ones soonest-expiring first."""
    rows = _user_rows(session.connection(), user_id=user.id, phone=user.phone, status=status, now=now)
    return [CouponView(*row) for row in rows]


def _json_time(value: dt.datetime | None) -> str:
    return "null" if value is None else f'"{iso(value)}"'


_JSON_STATUS = {s: json.dumps(s) for s in USER_STATUSES}


def user_coupons_json(connection: Connection, *, user_id: int, phone: str | None, status: str | None = None,
                      now: dt.datetime | None = None) -> str:
    """``{"items": [...]}`` of :func:`list_user_coupons` as the JSON text the API answers, byte for byte
    what ``json.dumps({"items": [v.to_dict() ...]}, ensure_ascii=False, separators=(",", ":"))`` gives
    (a test holds them equal), built without the per-coupon dicts: 我的礼券 is the read an insurer
    campaign sends tens of thousands of users to, and building 100 dicts and encoding them was a third
    of its server time. A product's part is encoded once per answer; times are ISO text as ``iso``."""
    products: dict[tuple[Any, ...], str] = {}
    parts = []
    for (cid, code, name, kind, face, pct, cat, shown, issued, expires, use_by, revealed, used) in _user_rows(
            connection, user_id=user_id, phone=phone, status=status, now=now):
        key = (code, name, kind, face, pct, cat)
        product = products.get(key)
        if product is None:
            product = products[key] = json.dumps(
                {"code": code, "name": name, "kind": kind, "face_fen": face, "percent_off": pct, "category": cat},
                ensure_ascii=False, separators=(",", ":"))
        parts.append(f'{{"id":{int(cid)},"product":{product},"status":{_JSON_STATUS.get(shown) or json.dumps(shown)},'
                     f'"issued_at":{_json_time(issued)},"expires_at":{_json_time(expires)},'
                     f'"use_by":{_json_time(use_by)},"revealed_at":{_json_time(revealed)},'
                     f'"used_at":{_json_time(used)}}}')
    return '{"items":[' + ",".join(parts) + "]}"


def get_user_coupon(session: Session, *, user: MpUser, coupon_id: int, now: dt.datetime | None = None) -> CouponView:
    """One of the user's coupons; someone else's id raises the same NotFound as a missing one."""
    row = session.exec(_view_query(now or utcnow()).where(col(Coupon.id) == coupon_id, _owned(user))).first()
    if row is None:
        raise _not_found()
    return CouponView(*row)


@dataclasses.dataclass(frozen=True)
class UseResult:
    """API.md "Use": the code, until when to use it, where to jump. ``first_reveal`` for the caller's UI."""

    coupon_id: int
    code: str
    use_by: dt.datetime
    jump: dict[str, str] | None
    first_reveal: bool

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "use_by": iso(self.use_by), "jump": self.jump}


def use_coupon(session: Session, *, user: MpUser, coupon_id: int, actor: Actor | None = None,
               now: dt.datetime | None = None) -> UseResult:
    """Reveal a redemption code ("去使用"): marks the coupon used, sets ``use_by``; repeatable, same code.

    ``use_by = min(now + use_window_days, code expiry)``. The first reveal writes
    ``coupon.revealed``, every later one ``coupon.re_revealed``; concurrent first reveals are
    decided by ``UPDATE ... WHERE revealed_at IS NULL`` (one wins, the rest re-reveal). An
    expired coupon that was never revealed raises ``COUPON_EXPIRED``.
    """
    now = now or utcnow()
    actor = actor or _actor(user)
    row = session.exec(select(Coupon, Product).join(Product, col(Product.id) == col(Coupon.product_id))
                       .where(col(Coupon.id) == coupon_id, _owned(user))).first()
    if row is None:
        raise _not_found()
    coupon, product = row
    if coupon.status == "expired" and (coupon.reserved_for or "").startswith(REVOKED_PREFIX):
        raise Conflict("该券已退回（随订单退款收回），无法使用", code="COUPON_REVOKED")
    if product.kind != REDEMPTION_CODE or coupon.stock_code_id is None:
        raise Conflict("该券不是兑换码券，请在下单或申请返现时使用", code="COUPON_NOT_REVEALABLE")
    first = False
    if coupon.revealed_at is None:
        _check_usable(coupon.status, coupon.expires_at, now)
        use_by = min(now + dt.timedelta(days=product.use_window_days), coupon.expires_at)
        res = session.execute(
            update(Coupon)
            .where(col(Coupon.id) == coupon.id, col(Coupon.revealed_at).is_(None), col(Coupon.status) == "available",
                   col(Coupon.expires_at) >= now)
            .values(status="used", revealed_at=now, used_at=now, use_by=use_by,
                    user_id=func.coalesce(col(Coupon.user_id), user.id))
            .execution_options(synchronize_session=False)
        )
        first = res.rowcount == 1
    if not first:  # revealed before, or someone else's request won the race just now
        status, expires_at, revealed_at, use_by_now = session.exec(
            select(Coupon.status, Coupon.expires_at, Coupon.revealed_at, Coupon.use_by)
            .where(col(Coupon.id) == coupon.id)
        ).one()
        if revealed_at is None or use_by_now is None:
            _check_usable(status, expires_at, now)
            raise Conflict("该券当前不可使用", code="COUPON_NOT_AVAILABLE")
        use_by = use_by_now
    code = session.exec(select(StockCode.code).where(col(StockCode.id) == coupon.stock_code_id)).one()
    record(
        session, actor=actor, action="coupon.revealed" if first else "coupon.re_revealed", target_type="coupon",
        target_id=coupon.id,
        summary=f"{'使用' if first else '再次查看'}兑换码 {mask_secret(code)}（{product.name}）",
        after={"use_by": iso(use_by), "stock_code_id": coupon.stock_code_id},
    )
    jump = {"app_id": product.jump_app_id, "path": product.jump_path or ""} if product.jump_app_id else None
    assert coupon.id is not None
    return UseResult(coupon_id=coupon.id, code=code, use_by=use_by, jump=jump, first_reveal=first)


def _check_usable(status: str, expires_at: dt.datetime, now: dt.datetime) -> None:
    if status == "expired" or (status == "available" and expires_at < now):
        raise Conflict("该券已过期，无法使用", code="COUPON_EXPIRED")
    if status == "used":
        raise Conflict("该券已使用", code="COUPON_USED")
    if status == "reserved":
        raise Conflict("该券正在一笔订单中使用", code="COUPON_RESERVED")


@on_phone_signed_in
def claim_for_phone(session: Session, *, user: MpUser) -> int:
    """Attach coupons waiting for the user's phone to the user; returns how many (0 when repeated)."""
    if not user.phone or user.id is None:
        return 0
    res = session.execute(
        update(Coupon).where(col(Coupon.phone) == user.phone, col(Coupon.user_id).is_(None))
        .values(user_id=user.id).execution_options(synchronize_session=False)
    )
    n = int(res.rowcount or 0)
    if n:
        record(session, actor=_actor(user), action="coupon.claimed", target_type="mp_user", target_id=user.id,
               summary=f"{n} 张发给 {mask_phone(user.phone)} 的券归属到该用户", after={"coupons": n})
    return n


# --- non-code coupons: reserve / consume / release ------------------------------------------

def _check_ref(ref: str) -> str:
    ref = (ref or "").strip()
    if not ref or len(ref) > 64:
        raise InvalidInput("券锁定的业务单号不能为空，且不超过 64 个字符", code="INVALID_REF")
    return ref


_REF_NAMES = {"order": "订单", "claim": "返现申请"}


def ref_label(ref: str) -> str:
    """How a clerk reads a business reference: ``claim:7`` → 返现申请 #7, ``order:12`` → 订单 #12."""
    kind, _, rest = ref.partition(":")
    name = _REF_NAMES.get(kind)
    return f"{name} #{rest}" if name and rest else ref


def _state(session: Session, coupon_id: int) -> tuple[str, str | None, dt.datetime, str] | None:
    return session.exec(
        select(Coupon.status, Coupon.reserved_for, Coupon.expires_at, Product.kind)
        .join(Product, col(Product.id) == col(Coupon.product_id)).where(col(Coupon.id) == coupon_id)
    ).first()


def _view(session: Session, coupon_id: int, now: dt.datetime) -> CouponView:
    return CouponView(*session.exec(_view_query(now).where(col(Coupon.id) == coupon_id)).one())


def _not_for_codes(kind: str) -> None:
    if kind == REDEMPTION_CODE:
        raise Conflict("兑换码券只能在“我的礼券”中使用", code="COUPON_NOT_RESERVABLE")


def reserve(session: Session, *, coupon_id: int, user: MpUser, ref: str, actor: Actor | None = None,
            now: dt.datetime | None = None) -> CouponView:
    """Hold one of the user's non-code coupons for ``ref`` (e.g. ``order:123``): available -> reserved.

    Repeating with the same ref is a no-op; another ref, a used or an expired coupon is a Conflict.
    """
    now = now or utcnow()
    ref = _check_ref(ref)
    owned = session.exec(select(Coupon.id, Product.kind).join(Product, col(Product.id) == col(Coupon.product_id))
                         .where(col(Coupon.id) == coupon_id, _owned(user))).first()
    if owned is None:
        raise _not_found()
    _not_for_codes(owned[1])
    res = session.execute(
        update(Coupon)
        .where(col(Coupon.id) == coupon_id, col(Coupon.status) == "available", col(Coupon.expires_at) >= now)
        .values(status="reserved", reserved_for=ref, reserved_at=now,
                user_id=func.coalesce(col(Coupon.user_id), user.id))
        .execution_options(synchronize_session=False)
    )
    if res.rowcount == 1:
        record(session, actor=actor or _actor(user), action="coupon.reserved", target_type="coupon",
               target_id=coupon_id,
               summary=f"券被{ref_label(ref)}锁定", before={"status": "available"}, after={"status": "reserved", "ref": ref})
        return _view(session, coupon_id, now)
    state = _state(session, coupon_id)
    assert state is not None
    status, reserved_for, expires_at, _ = state
    if status == "reserved" and reserved_for == ref:
        return _view(session, coupon_id, now)
    _check_usable(status, expires_at, now)
    raise Conflict("该券当前不可使用", code="COUPON_NOT_AVAILABLE")


@dataclasses.dataclass(frozen=True)
class Reserved:
    """What :func:`reserve_first` took: the coupon, its face value, and its ``coupon.reserved`` audit row."""

    coupon_id: int
    face_fen: int
    audit: dict[str, Any]


RESERVE_TRIES = 10


@functools.cache
def _reserve_statements(by_phone: bool, by_category: bool) -> tuple[Any, Any]:
    """``(pick, take)`` of :func:`reserve_first`, built once (building a statement costs more than running
    it): ``pick`` selects the coupon, ``take`` is the conditional ``UPDATE ... RETURNING`` around it."""
    owned = col(Coupon.user_id) == bindparam("p_user")
    if by_phone:  # as :func:`_owned`: the user's, or waiting for their phone
        owned = or_(owned, and_(col(Coupon.user_id).is_(None), col(Coupon.phone) == bindparam("p_phone")))
    usable = (owned, col(Coupon.status) == "available", col(Coupon.expires_at) >= bindparam("p_now"))
    which = (col(Product.kind) != REDEMPTION_CODE, col(Product.kind) == bindparam("p_kind"))
    if by_category:
        which += (col(Product.category) == bindparam("p_category"),)
    pick = (select(Coupon.id).join(Product, col(Product.id) == col(Coupon.product_id)).where(*usable, *which)
            .order_by(col(Coupon.expires_at), col(Coupon.id)).limit(1))
    take = (update(Coupon.__table__).where(col(Coupon.id) == pick.scalar_subquery(), *usable)
            .values(status="reserved", reserved_for=bindparam("p_ref", type_=String()),
                    reserved_at=bindparam("p_now", type_=UTCDateTime()),
                    user_id=func.coalesce(col(Coupon.user_id), bindparam("p_user")))
            .returning(col(Coupon.id), col(Coupon.face_fen)))
    return pick, take


def reserve_first(session: Session, *, user: MpUser, ref: str, kind: str, category: str | None = None,
                  actor: Actor | None = None, now: dt.datetime | None = None, write_audit: bool = True) -> Reserved | None:
    """Hold for ``ref`` the first of the user's available, unexpired coupons of product ``kind`` (and
    ``category``), earliest expiry first: ``None`` if there is none. Never a redemption code.

    One statement picks and takes it: ``UPDATE coupon SET status = 'reserved' ... WHERE id = (SELECT
    ... LIMIT 1) AND status = 'available' ... RETURNING``. A concurrent unit of work that took the same
    coupon first (PostgreSQL, READ COMMITTED: the row is checked again once its lock is granted and no
    longer matches) leaves it unchanged; the statement is then run again — each run reads what is
    committed, so it picks the next one — at most :data:`RESERVE_TRIES` times.

    ``write_audit=False``: the ``coupon.reserved`` row is not written here but returned in
    :attr:`Reserved.audit`, for the caller to write with the other rows of its unit of work in one
    :func:`gc_admin.audit.service.record_many` (it must: every coupon state change has its row).
    """
    now = now or utcnow()
    ref = _check_ref(ref)
    pick, take = _reserve_statements(bool(user.phone), category is not None)
    params = {"p_user": user.id, "p_phone": user.phone, "p_now": now, "p_kind": kind, "p_category": category}
    conn = session.connection()
    for _ in range(RESERVE_TRIES):
        row = conn.execute(take, {**params, "p_ref": ref}).first()
        if row is not None:
            break
        if conn.execute(pick, params).first() is None:
            return None  # nothing left to pick (not a lost race)
    else:
        return None
    audit = entry(actor=actor or _actor(user), action="coupon.reserved", target_type="coupon", target_id=row[0],
                  summary=f"券被{ref_label(ref)}锁定", before={"status": "available"}, after={"status": "reserved", "ref": ref},
                  at=now)
    if write_audit:
        record_many(session, [audit])
    return Reserved(row[0], row[1], audit)


def _leave_reserved(session: Session, *, coupon_id: int, ref: str,
                    values: dict[str, Any]) -> tuple[str, bool, tuple[str, str | None, dt.datetime, str]]:
    """The conditional move out of ``reserved`` for ``ref`` (consume, release): ``(the checked ref, whether
    this call moved it, the coupon's state before)``; an unknown coupon or a redemption code is refused."""
    ref = _check_ref(ref)
    state = _state(session, coupon_id)
    if state is None:
        raise _not_found()
    _not_for_codes(state[3])
    res = session.execute(
        update(Coupon)
        .where(col(Coupon.id) == coupon_id, col(Coupon.status) == "reserved", col(Coupon.reserved_for) == ref)
        .values(**values).execution_options(synchronize_session=False)
    )
    return ref, res.rowcount == 1, state


def consume(session: Session, *, coupon_id: int, ref: str, actor: Actor = SYSTEM,
            now: dt.datetime | None = None) -> CouponView:
    """Mark a coupon reserved for ``ref`` as used (order paid, claim paid out): reserved -> used, once."""
    now = now or utcnow()
    ref, moved, state = _leave_reserved(session, coupon_id=coupon_id, ref=ref, values={"status": "used", "used_at": now})
    if moved:
        record(session, actor=actor, action="coupon.consumed", target_type="coupon", target_id=coupon_id,
               summary=f"券已用于{ref_label(ref)}", before={"status": "reserved", "ref": ref}, after={"status": "used", "ref": ref})
        return _view(session, coupon_id, now)
    status, reserved_for, _, _ = _state(session, coupon_id) or state
    if status == "used" and reserved_for == ref:
        return _view(session, coupon_id, now)  # already consumed by this ref: nothing twice
    raise Conflict("该券未被此业务单锁定，不能核销", code="COUPON_NOT_RESERVED")


def release(session: Session, *, coupon_id: int, ref: str, actor: Actor = SYSTEM,
            now: dt.datetime | None = None) -> CouponView:
    """Give back a coupon reserved for ``ref`` (order cancelled, claim rejected): reserved -> available."""
    now = now or utcnow()
    ref, moved, state = _leave_reserved(session, coupon_id=coupon_id, ref=ref,
                                        values={"status": "available", "reserved_for": None, "reserved_at": None})
    if moved:
        record(session, actor=actor, action="coupon.released", target_type="coupon", target_id=coupon_id,
               summary=f"{ref_label(ref)}释放了券", before={"status": "reserved", "ref": ref}, after={"status": "available"})
        return _view(session, coupon_id, now)
    status, reserved_for, _, _ = _state(session, coupon_id) or state
    if status in ("available", "expired") and reserved_for is None:
        return _view(session, coupon_id, now)  # not held (any more): releasing again changes nothing
    if status == "used":
        raise Conflict("该券已使用，不能释放", code="COUPON_USED")
    raise Conflict("该券被其他业务单锁定，不能释放", code="COUPON_RESERVED")


# --- staff views -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class StaffCouponView:
    """A coupon on the users page: code and phone masked."""

    id: int
    product_code: str
    product_name: str
    kind: str
    face_fen: int
    status: str
    phone_masked: str
    user_id: int | None
    code_masked: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    use_by: dt.datetime | None
    revealed_at: dt.datetime | None
    used_at: dt.datetime | None
    reserved_for: str | None
    source: str
    batch_id: str | None


def user_coupons_for_staff(session: Session, *, phone: str, now: dt.datetime | None = None) -> list[StaffCouponView]:
    """Every coupon of a phone (issued to it, or held by the user who has it), newest first; masked."""
    now = now or utcnow()
    norm = normalize_phone(phone)
    if norm is None:
        raise InvalidInput("请输入正确的 11 位手机号", code="INVALID_PHONE")
    user_id = session.exec(select(MpUser.id).where(MpUser.phone == norm)).first()
    owner = col(Coupon.phone) == norm
    if user_id is not None:
        owner = or_(owner, col(Coupon.user_id) == user_id)
    rows = session.exec(
        select(Coupon.id, Product.code, Product.name, Product.kind, Coupon.face_fen, _shown_status(now), Coupon.phone,
               Coupon.user_id, StockCode.code, Coupon.issued_at, Coupon.expires_at, Coupon.use_by, Coupon.revealed_at,
               Coupon.used_at, Coupon.reserved_for, Coupon.source, IssuanceBatch.batch_id)
        .select_from(Coupon)
        .join(Product, col(Product.id) == col(Coupon.product_id))
        .outerjoin(StockCode, col(StockCode.id) == col(Coupon.stock_code_id))
        .outerjoin(IssuanceBatch, col(IssuanceBatch.id) == col(Coupon.issuance_id))
        .where(owner).order_by(col(Coupon.id).desc()).limit(1000)
    ).all()
    return [StaffCouponView(r[0], r[1], r[2], r[3], r[4], r[5], mask_phone(r[6]), r[7], mask_secret(r[8]), *r[9:])
            for r in rows]


def coupon_history(session: Session, *, coupon_id: int) -> list[AuditLog]:
    """The audit trail of one coupon: its batch's (or its order's) issue row, then every reveal/reserve/consume/
    release."""
    coupon = session.get(Coupon, coupon_id)
    if coupon is None:
        raise _not_found()
    cond = and_(col(AuditLog.target_type) == "coupon", col(AuditLog.target_id) == str(coupon_id))
    if coupon.issuance_id is not None:
        cond = or_(cond, and_(col(AuditLog.target_type) == "issuance_batch",
                              col(AuditLog.target_id) == str(coupon.issuance_id)))
    if coupon.stock_code_id is not None:
        cond = or_(cond, and_(col(AuditLog.target_type) == "stock_code",
                              col(AuditLog.target_id) == str(coupon.stock_code_id)))
    bought_on = session.exec(select(CouponPurchaseItem.order_id)
                             .where(col(CouponPurchaseItem.coupon_id) == coupon_id)).first()
    if bought_on is not None:  # a bought coupon: its order's issue row (not the rest of the order's trail)
        cond = or_(cond, and_(col(AuditLog.target_type) == "service_order", col(AuditLog.target_id) == str(bought_on),
                              col(AuditLog.action) == "coupon.issued"))
    return list(session.exec(select(AuditLog).where(cond).order_by(col(AuditLog.id))).all())


# --- the 用户 page ---------------------------------------------------------------------------

def user_coupons(session: Session, *, user_id: int) -> tuple[MpUser, list[StaffCouponView]]:
    """A user and every coupon of theirs (masked). A user without a phone has none yet: coupons wait on phones."""
    user = session.get(MpUser, user_id)
    if user is None:
        raise NotFound("用户不存在", code="USER_NOT_FOUND")
    if not user.phone:
        return user, []
    return user, user_coupons_for_staff(session, phone=user.phone)


@dataclasses.dataclass(frozen=True)
class WaitingPhone:
    """Coupons issued to a phone number that no user has registered yet (they wait for it)."""

    phone: str  # normalised, whole: the caller masks it for display
    coupons: int
    available: int  # unused and in date


def waiting_phone(session: Session, *, phone: str, now: dt.datetime | None = None) -> WaitingPhone | None:
    """The coupons waiting for ``phone`` if it is a whole number nobody has registered, else ``None``.
    Only a whole number finds them: unregistered phones are not listed from a few digits."""
    norm = normalize_phone(phone or "")
    if norm is None or session.exec(select(MpUser.id).where(MpUser.phone == norm)).first() is not None:
        return None
    now = now or utcnow()
    in_date = case(((col(Coupon.status) == "available") & (col(Coupon.expires_at) >= now), 1), else_=0)
    total, available = session.exec(select(func.count(), func.coalesce(func.sum(in_date), 0))
                                    .where(col(Coupon.phone) == norm)).one()
    return WaitingPhone(norm, int(total), int(available)) if total else None


def phone_coupons(session: Session, *, phone: str) -> list[StaffCouponView]:
    """Every coupon of a phone number (masked): a waiting phone's detail on the 用户 page."""
    return user_coupons_for_staff(session, phone=phone)


COUPON_ACTION_LABELS: dict[str, str] = {
    "coupon.issued": "发放",
    "coupon.claimed": "归属到用户",
    "coupon.revealed": "使用（显示券码）",
    "coupon.re_revealed": "再次查看券码",
    "coupon.reserved": "下单锁定",
    "coupon.consumed": "核销",
    "coupon.released": "释放",
    "coupon.expired": "过期",
    "stock.code_revealed": "员工查看完整券码",
    "stock.discarded": "弃票",
}
