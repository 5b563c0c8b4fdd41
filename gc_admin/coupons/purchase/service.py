"""Coupons bought in the mini-program: stock reserved by an order, issued on payment, released or revoked.

Design — one ``coupon_purchase_item`` row per coupon bought, linking the order to the stock code
(redemption-code products) and, once paid, to the coupon:

    held ──pay──▶ issued ──refund requested──▶ revoking ──refund succeeded──▶ revoked
      │                        ▲                    │
      └──cancel──▶ released    └────refund failed───┘

Why a table of our own rather than "reserved" coupons: a reserved coupon would sit in the buyer's
"我的礼券" before it is paid for, and ``stock_code.state`` has a CHECK constraint we do not widen.
So while an order is unpaid its codes are taken out of stock (``in_stock -> issued``, the only
other value that means "not available") and the item row says which order holds them; the stock
page shows such a code as issued without a coupon.

How over-selling is made impossible in the database (DESIGN.md §2.4):
- codes are taken by :func:`~gc_admin.coupons.stock.service.claim_codes` — one conditional ``UPDATE
  stock_code SET state = 'issued' WHERE state = 'in_stock' ... RETURNING id`` (on PostgreSQL over rows
  picked ``FOR UPDATE SKIP LOCKED``, so concurrent buyers take disjoint codes; on SQLite the statement
  holds the single write lock);
  a code can be flipped by one transaction only, and an order that gets fewer codes than it asked
  for raises ``NO_STOCK`` — the caller's unit of work rolls the partial take back;
- a partial unique index on ``coupon_purchase_item.stock_code_id`` (states held, issued, revoking)
  refuses a code held twice, and ``coupon.stock_code_id`` is unique: a code backs one coupon ever.

Every state move below is a conditional UPDATE on the expected state whose returned rows are the
ones acted on, so cancelling, paying and refunding each happen exactly once whatever retries or
parallel workers do. Revoking a bought coupon (refund) needs a coupon status the coupon table
does not have; a revoked coupon becomes ``expired``, loses its code (which goes back in stock) and
carries ``reserved_for = "revoked:<refund no>"`` as the trace; the item row keeps the code id. Every
view shows such a coupon as ``revoked`` (已退回), not expired (``coupons.models.SHOWN_STATUSES``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, func, select, text, update
from sqlmodel import Session, col

from gc_admin.core.bulk import db_time
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import Conflict
from gc_admin.coupons.models import REDEMPTION_CODE, REVOKED_PREFIX, Coupon, CouponPurchaseItem, Product
from gc_admin.coupons.issuance.service import plain_expiry
from gc_admin.coupons.stock.service import claim_codes, release_codes

ACTIVE_STATES = ("held", "issued", "revoking")
STOCK_HINT_CAP = 99  # the catalogue says "99+" rather than revealing the exact stock


def purchased_count(session: Session, *, user_id: int, product_id: int) -> int:
    """Coupons of a product the user holds by purchase or has on unpaid orders (the per-user limit)."""
    return int(session.execute(
        select(func.count()).select_from(CouponPurchaseItem).where(
            col(CouponPurchaseItem.user_id) == user_id, col(CouponPurchaseItem.product_id) == product_id,
            col(CouponPurchaseItem.state).in_(ACTIVE_STATES))
    ).scalar_one())


def stock_hint(session: Session, *, product: Product, now: dt.datetime | None = None) -> int | None:
    """How many can be bought now, capped at :data:`STOCK_HINT_CAP` (``None``: no code stock needed)."""
    if product.kind != REDEMPTION_CODE:
        return None
    min_exp = (now or utcnow()) + dt.timedelta(days=product.min_validity_days)
    return int(session.execute(
        text("SELECT count(*) FROM (SELECT 1 FROM stock_code WHERE product_id = :pid AND state = 'in_stock' "
             "AND expires_at >= :min_exp LIMIT :cap) t"),
        {"pid": product.id, "min_exp": db_time(session, min_exp), "cap": STOCK_HINT_CAP},
    ).scalar_one())


def reserve_for_order(session: Session, *, order_id: int, user_id: int, product: Product, quantity: int,
                      now: dt.datetime | None = None) -> list[int]:
    """Hold ``quantity`` coupons of ``product`` for an unpaid order; returns the item ids.

    Redemption-code products take the earliest-expiring issuable codes out of stock (see the
    module docstring); all or nothing — fewer than ``quantity`` raises ``NO_STOCK`` and the
    caller's transaction rolls back what was taken. Other products need no stock.
    """
    now = now or utcnow()
    assert product.id is not None
    if quantity < 1:
        raise ValueError("quantity must be >= 1")
    code_ids: list[int | None]
    if product.kind == REDEMPTION_CODE:
        min_exp = now + dt.timedelta(days=product.min_validity_days)
        taken = sorted(claim_codes(session, product_id=product.id, n=quantity, min_exp=min_exp))
        if len(taken) < quantity:
            raise Conflict(f"{product.name}库存不足（剩余 {len(taken)} 张），请减少数量或稍后再试", code="NO_STOCK")
        code_ids = list(taken)
    else:
        code_ids = [None] * quantity
    rows = [{"order_id": order_id, "user_id": user_id, "product_id": product.id, "stock_code_id": c,
             "state": "held", "created_at": now, "updated_at": now} for c in code_ids]
    session.execute(CouponPurchaseItem.__table__.insert(), rows)
    return [int(i) for i in session.execute(
        select(CouponPurchaseItem.id).where(col(CouponPurchaseItem.order_id) == order_id)
        .order_by(col(CouponPurchaseItem.id))).scalars().all()]


def release_for_orders(session: Session, *, order_ids: list[int], now: dt.datetime | None = None) -> int:
    """Orders cancelled unpaid: held items -> released and their codes back in stock. Returns items released.

    Exactly once: only the rows this UPDATE moves out of ``held`` give their codes back."""
    if not order_ids:
        return 0
    now = now or utcnow()
    moved = session.execute(
        update(CouponPurchaseItem)
        .where(col(CouponPurchaseItem.order_id).in_(order_ids), col(CouponPurchaseItem.state) == "held")
        .values(state="released", updated_at=now)
        .returning(CouponPurchaseItem.stock_code_id)
        .execution_options(synchronize_session=False)
    ).all()
    codes = [int(r[0]) for r in moved if r[0] is not None]
    if codes:
        back = release_codes(session, codes)
        if back != len(codes):
            raise RuntimeError(f"released {len(codes)} held codes but {back} were issued")  # never expected
    return len(moved)


def issue_for_order(session: Session, *, order_id: int, user_id: int, phone: str,
                    now: dt.datetime | None = None) -> list[int]:
    """The order is paid: create the buyer's coupons from its held items (held -> issued). Returns coupon ids.

    Set-based: one ``INSERT ... SELECT`` per product of the order, then one UPDATE linking items to
    coupons. Calling it again finds no held item and creates nothing.
    """
    now = now or utcnow()
    held = session.execute(
        select(CouponPurchaseItem.id, CouponPurchaseItem.product_id, CouponPurchaseItem.stock_code_id)
        .where(col(CouponPurchaseItem.order_id) == order_id, col(CouponPurchaseItem.state) == "held")
        .order_by(col(CouponPurchaseItem.id))
    ).all()
    if not held:
        return []
    created: list[int] = []
    for product_id in sorted({r[1] for r in held}):
        product = session.get(Product, product_id)
        assert product is not None
        items = [r for r in held if r[1] == product_id]
        params: dict[str, Any] = {"pid": product_id, "phone": phone, "uid": user_id, "now": db_time(session, now),
                                  "oid": order_id}
        if items[0][2] is not None:  # backed by codes: coupon.stock_code_id pairs each with its item
            rows = session.execute(text("""
                INSERT INTO coupon (product_id, phone, user_id, stock_code_id, status, face_fen, cost_fen, issued_at,
                                    expires_at, source)
                SELECT :pid, :phone, :uid, sc.id, 'available', sc.face_fen, sc.cost_fen, :now, sc.expires_at, 'purchase'
                FROM coupon_purchase_item i JOIN stock_code sc ON sc.id = i.stock_code_id
                WHERE i.order_id = :oid AND i.product_id = :pid AND i.state = 'held'
                RETURNING id"""), params).all()
            linked = session.execute(text("""
                UPDATE coupon_purchase_item SET state = 'issued', updated_at = :now,
                    coupon_id = (SELECT c.id FROM coupon c WHERE c.stock_code_id = coupon_purchase_item.stock_code_id)
                WHERE order_id = :oid AND product_id = :pid AND state = 'held'"""),
                {"now": db_time(session, now), "oid": order_id, "pid": product_id}).rowcount
        else:  # no codes: the coupons are interchangeable, pair them with the items in id order
            params.update(face=product.face_fen, cost=product.cost_fen,
                          exp=db_time(session, plain_expiry(product, now)), n=len(items))
            rows = session.execute(text("""
                INSERT INTO coupon (product_id, phone, user_id, status, face_fen, cost_fen, issued_at, expires_at,
                                    source)
                SELECT :pid, :phone, :uid, 'available', :face, :cost, :now, :exp, 'purchase'
                FROM coupon_purchase_item i
                WHERE i.order_id = :oid AND i.product_id = :pid AND i.state = 'held'
                RETURNING id"""), params).all()
            new_ids = sorted(int(r[0]) for r in rows)
            linked = 0
            for (item_id, _, _), coupon_id in zip(items, new_ids, strict=True):
                linked += session.execute(
                    update(CouponPurchaseItem).where(col(CouponPurchaseItem.id) == item_id,
                                                     col(CouponPurchaseItem.state) == "held")
                    .values(state="issued", coupon_id=coupon_id, updated_at=now)
                    .execution_options(synchronize_session=False)).rowcount
        if len(rows) != len(items) or linked != len(items):
            raise RuntimeError(f"order {order_id}: {len(items)} held, {len(rows)} coupons, {linked} linked")
        created.extend(int(r[0]) for r in rows)
    return sorted(created)


def order_coupon_ids(session: Session, *, order_id: int) -> list[int]:
    """The coupons bought on an order (issued, being refunded or revoked)."""
    return [int(i) for i in session.execute(
        select(CouponPurchaseItem.coupon_id).where(col(CouponPurchaseItem.order_id) == order_id,
                                                   col(CouponPurchaseItem.coupon_id).is_not(None))
        .order_by(col(CouponPurchaseItem.id))).scalars().all()]


def item_counts(session: Session, *, order_id: int) -> dict[str, int]:
    """Items of an order by state."""
    rows = session.execute(
        select(CouponPurchaseItem.state, func.count()).where(col(CouponPurchaseItem.order_id) == order_id)
        .group_by(col(CouponPurchaseItem.state))).all()
    return {state: int(n) for state, n in rows}


def revocable_count(session: Session, *, order_id: int, now: dt.datetime | None = None) -> int:
    """Bought coupons of the order that a refund can still take back: issued, never used, not expired."""
    now = now or utcnow()
    return int(session.execute(
        select(func.count()).select_from(CouponPurchaseItem)
        .join(Coupon, col(Coupon.id) == col(CouponPurchaseItem.coupon_id))
        .where(col(CouponPurchaseItem.order_id) == order_id, col(CouponPurchaseItem.state) == "issued",
               col(Coupon.status) == "available", col(Coupon.expires_at) >= now)
    ).scalar_one())


def hold_for_refund(session: Session, *, order_id: int, count: int, ref: str,
                    now: dt.datetime | None = None) -> list[int]:
    """Take ``count`` unused bought coupons of the order out of the buyer's hands while a refund is
    processed: coupon available -> reserved (``reserved_for = ref``), item issued -> revoking.

    All or nothing: if fewer than ``count`` can be taken (the user revealed one meanwhile), raises
    ``COUPONS_USED`` and the caller's transaction undoes the rest. Latest-expiring coupons go first
    (the user keeps the ones to use soonest)."""
    if count <= 0:
        return []
    now = now or utcnow()
    candidates = [int(i) for i in session.execute(
        select(Coupon.id).join(CouponPurchaseItem, col(CouponPurchaseItem.coupon_id) == col(Coupon.id))
        .where(col(CouponPurchaseItem.order_id) == order_id, col(CouponPurchaseItem.state) == "issued",
               col(Coupon.status) == "available", col(Coupon.expires_at) >= now)
        .order_by(col(Coupon.expires_at).desc(), col(Coupon.id).desc()).limit(count)).scalars().all()]
    taken = [int(r[0]) for r in session.execute(
        update(Coupon).where(col(Coupon.id).in_(candidates or [0]), col(Coupon.status) == "available")
        .values(status="reserved", reserved_for=ref, reserved_at=now)
        .returning(Coupon.id).execution_options(synchronize_session=False)).all()]
    if len(taken) < count:
        raise Conflict(f"该订单可退的未使用券不足 {count} 张（已使用的券不可退）", code="COUPONS_USED")
    moved = session.execute(
        update(CouponPurchaseItem).where(col(CouponPurchaseItem.coupon_id).in_(taken),
                                         col(CouponPurchaseItem.state) == "issued")
        .values(state="revoking", updated_at=now).execution_options(synchronize_session=False)).rowcount
    if moved != len(taken):
        raise RuntimeError(f"order {order_id}: {len(taken)} coupons held for refund, {moved} items moved")
    return sorted(taken)


def revoke_held(session: Session, *, order_id: int, ref: str, now: dt.datetime | None = None) -> list[int]:
    """The refund ``ref`` succeeded: its held coupons are revoked (expired, code detached) and their
    codes go back in stock; items revoking -> revoked. Returns the revoked coupon ids (once)."""
    now = now or utcnow()
    moved = session.execute(
        update(CouponPurchaseItem)
        .where(col(CouponPurchaseItem.order_id) == order_id, col(CouponPurchaseItem.state) == "revoking",
               col(CouponPurchaseItem.coupon_id).in_(
                   select(Coupon.id).where(col(Coupon.reserved_for) == ref, col(Coupon.status) == "reserved")))
        .values(state="revoked", updated_at=now)
        .returning(CouponPurchaseItem.coupon_id, CouponPurchaseItem.stock_code_id)
        .execution_options(synchronize_session=False)
    ).all()
    if not moved:
        return []
    coupon_ids = sorted(int(r[0]) for r in moved)
    revoked = session.execute(
        update(Coupon).where(col(Coupon.id).in_(coupon_ids), col(Coupon.status) == "reserved",
                             col(Coupon.reserved_for) == ref)
        .values(status="expired", stock_code_id=None, reserved_for=(REVOKED_PREFIX + ref.split(":", 1)[-1])[:64],
                reserved_at=now)
        .execution_options(synchronize_session=False)).rowcount
    codes = [int(r[1]) for r in moved if r[1] is not None]
    back = release_codes(session, codes)
    if revoked != len(coupon_ids) or back != len(codes):
        raise RuntimeError(f"refund {ref}: {len(coupon_ids)} items, {revoked} coupons revoked, {back} codes back")
    return coupon_ids


def unhold(session: Session, *, order_id: int, ref: str, now: dt.datetime | None = None) -> list[int]:
    """The refund ``ref`` failed: its held coupons go back to the buyer (reserved -> available,
    items revoking -> issued). Returns the coupon ids given back (once)."""
    now = now or utcnow()
    back = [int(r[0]) for r in session.execute(
        update(Coupon).where(col(Coupon.reserved_for) == ref, col(Coupon.status) == "reserved",
                             col(Coupon.id).in_(select(CouponPurchaseItem.coupon_id).where(
                                 col(CouponPurchaseItem.order_id) == order_id,
                                 col(CouponPurchaseItem.state) == "revoking")))
        .values(status="available", reserved_for=None, reserved_at=None)
        .returning(Coupon.id).execution_options(synchronize_session=False)).all()]
    if back:
        session.execute(
            update(CouponPurchaseItem).where(col(CouponPurchaseItem.coupon_id).in_(back),
                                             col(CouponPurchaseItem.state) == "revoking")
            .values(state="issued", updated_at=now).execution_options(synchronize_session=False))
    return sorted(back)


def return_used_coupon(session: Session, *, coupon_id: int, ref: str, now: dt.datetime | None = None) -> bool:
    """A coupon used on an order (``reserved_for = ref``, status used) that was fully refunded goes
    back to its owner if it is still valid: used -> available. True if it did (once)."""
    now = now or utcnow()
    res = session.execute(
        update(Coupon).where(and_(col(Coupon.id) == coupon_id, col(Coupon.status) == "used",
                                  col(Coupon.reserved_for) == ref, col(Coupon.expires_at) >= now,
                                  col(Coupon.stock_code_id).is_(None)))
        .values(status="available", used_at=None, reserved_for=None, reserved_at=None)
        .execution_options(synchronize_session=False))
    return res.rowcount == 1
