"""Points (积分) and stored value (储值卡): the user's balances and every movement of them.

A leaf of the payments feature (it imports nothing from orders). Balances live in ``user_balance``
(CHECK >= 0); :func:`move_points` / :func:`move_stored_value` change it with ``UPDATE ... WHERE
points + :delta >= 0 RETURNING`` and append the entry (``ref`` unique: the same ref twice is a no-op,
also when the twin runs concurrently — :func:`gc_admin.db.first_wins`) plus a ledger row, so
concurrent spends cannot overdraw and the balance is always the sum of its entries.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import Conflict, InvalidInput
from gc_admin.core.money import format_fen
from gc_admin.core.principal import Actor
from gc_admin.db import first_wins
from gc_admin.payments.ledger import add_ledger, dialect_insert
from gc_admin.payments.models import PointsEntry, StoredValueEntry, UserBalance

FEN_PER_POINT = 1  # what one point is worth, at order time (pricing) and in the ledger


def balances(session: Session, *, user_id: int | None) -> tuple[int, int]:
    """``(points, stored_value_fen)`` of a user (0, 0 if they never had any)."""
    if user_id is None:
        return 0, 0
    row = session.exec(select(UserBalance.points, UserBalance.stored_value_fen)
                       .where(col(UserBalance.user_id) == user_id)).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _move(session: Session, *, which: str, user_id: int, delta: int, reason: str, ref: str,
          order_id: int | None, now: dt.datetime | None) -> PointsEntry | StoredValueEntry:
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise InvalidInput("变动数额需为非零整数", code="INVALID_AMOUNT")
    ref = (ref or "").strip()
    if not ref or len(ref) > 64:
        raise InvalidInput("流水业务单号不能为空，且不超过 64 个字符", code="INVALID_REF")
    now = now or utcnow()
    entry_cls = PointsEntry if which == "points" else StoredValueEntry

    def replay() -> PointsEntry | StoredValueEntry | None:
        existing = session.exec(select(entry_cls).where(col(entry_cls.ref) == ref)).first()
        if existing is not None:
            same = existing.user_id == user_id and (
                existing.delta if isinstance(existing, PointsEntry) else existing.delta_fen) == delta
            if not same:
                raise Conflict("该业务单号已用于另一笔变动", code="REF_REUSED")
        return existing  # the same movement again: nothing twice

    if (existing := replay()) is not None:
        return existing
    return first_wins(session, lambda: _apply_move(session, which=which, user_id=user_id, delta=delta, reason=reason,
                                                   ref=ref, order_id=order_id, now=now), replay=replay)


def _apply_move(session: Session, *, which: str, user_id: int, delta: int, reason: str, ref: str,
                order_id: int | None, now: dt.datetime) -> PointsEntry | StoredValueEntry:
    session.execute(dialect_insert(session)(UserBalance).values(user_id=user_id, points=0, stored_value_fen=0,
                                                                updated_at=now).on_conflict_do_nothing())
    column = UserBalance.points if which == "points" else UserBalance.stored_value_fen
    after = session.execute(
        update(UserBalance).where(col(UserBalance.user_id) == user_id, col(column) + delta >= 0)
        .values({column: col(column) + delta, "updated_at": now}).returning(column)
        .execution_options(synchronize_session=False)).scalar_one_or_none()
    if after is None:
        have = balances(session, user_id=user_id)[0 if which == "points" else 1]
        if which == "points":
            raise Conflict(f"积分不足：当前 {have} 分", code="POINTS_INSUFFICIENT")
        raise Conflict(f"储值卡余额不足：当前 {format_fen(have)}", code="STORED_VALUE_INSUFFICIENT")
    if which == "points":
        entry: PointsEntry | StoredValueEntry = PointsEntry(user_id=user_id, delta=delta, balance_after=int(after),
                                                            reason=reason[:100], ref=ref, created_at=now)
        fen = delta * FEN_PER_POINT
    else:
        entry = StoredValueEntry(user_id=user_id, delta_fen=delta, balance_after_fen=int(after), reason=reason[:100],
                                 ref=ref, created_at=now)
        fen = delta
    session.add(entry)
    session.flush()  # a concurrent twin that committed the same ref first fails here (unique): see first_wins
    add_ledger(session, kind=which, amount_fen=fen, ref=f"{which}:{ref}", order_id=order_id, user_id=user_id,
               provider=which, provider_ref=None, occurred_at=now, note=reason)
    return entry


def move_points(session: Session, *, user_id: int, delta: int, reason: str, ref: str, order_id: int | None = None,
                now: dt.datetime | None = None) -> PointsEntry:
    """Credit (``delta > 0``) or spend (``< 0``) points; never below zero; idempotent by ``ref``."""
    entry = _move(session, which="points", user_id=user_id, delta=delta, reason=reason, ref=ref, order_id=order_id,
                  now=now)
    assert isinstance(entry, PointsEntry)
    return entry


def move_stored_value(session: Session, *, user_id: int, delta_fen: int, reason: str, ref: str,
                      order_id: int | None = None, now: dt.datetime | None = None) -> StoredValueEntry:
    """Load (``delta_fen > 0``) or spend (``< 0``) stored value; never below zero; idempotent by ``ref``."""
    entry = _move(session, which="stored_value", user_id=user_id, delta=delta_fen, reason=reason, ref=ref,
                  order_id=order_id, now=now)
    assert isinstance(entry, StoredValueEntry)
    return entry


def grant_points(session: Session, *, actor: Actor, user_id: int, points: int, reason: str, ref: str) -> PointsEntry:
    """Staff/partner credit of points (audited)."""
    entry = move_points(session, user_id=user_id, delta=points, reason=reason, ref=ref)
    record(session, actor=actor, action="points.granted", target_type="mp_user", target_id=user_id,
           summary=f"发放积分 {points}（{reason}）", after={"points": points, "ref": ref})
    return entry


def load_stored_value(session: Session, *, actor: Actor, user_id: int, amount_fen: int, reason: str,
                      ref: str) -> StoredValueEntry:
    """Staff load of a stored-value card (audited)."""
    entry = move_stored_value(session, user_id=user_id, delta_fen=amount_fen, reason=reason, ref=ref)
    record(session, actor=actor, action="stored_value.loaded", target_type="mp_user", target_id=user_id,
           summary=f"储值卡充值 {format_fen(amount_fen)}（{reason}）", after={"amount_fen": amount_fen, "ref": ref})
    return entry
