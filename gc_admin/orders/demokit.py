"""What the order types' demo data share: the coupon batch given to the demo buyers, and the staff member
whose moves walk the demo orders."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlmodel import Session, col, select

from gc_admin.accounts.models import StaffUser
from gc_admin.core.principal import Actor
from gc_admin.coupons import service as coupons
from gc_admin.users.models import MpUser


def give_coupons(session: Session, *, actor: Actor, users: Sequence[MpUser], product_code: str, batch_id: str,
                 now: dt.datetime) -> dict[str, int]:
    """Issue one ``product_code`` coupon to each of ``users`` (a staff batch); phone -> the coupon's id."""
    issued = coupons.issue_batch(session, actor=actor, source="staff", batch_id=batch_id, product_code=product_code,
                                 phones=[u.phone for u in users if u.phone], now=now)
    return {r["phone"]: r["coupon_ids"][0] for r in issued.rows() if r.get("coupon_ids")}


def staff_actor(session: Session, *, role: str, fallback: str) -> Actor:
    """The first staff member with ``role``, as an actor (``fallback`` names a stand-in when there is none)."""
    staff = session.exec(select(StaffUser).where(col(StaffUser.role) == role)).first()
    return Actor("staff", str(staff.id), staff.display_name) if staff else Actor("staff", "0", fallback)
