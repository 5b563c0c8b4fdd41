"""The review queue (返现审核): list, one claim with everything a reviewer weighs, the review lease,
approve (with four eyes), reject, bulk approve. Services: a session first, keyword-only, no commit.

Lease (like the order kanban's): a clerk who opens a claim takes ``lease_*`` for :data:`LEASE`; while
it runs nobody else may decide the claim (``CLAIM_LEASED_BY_OTHER`` naming who). Taking it is one
conditional UPDATE (free, expired or already mine), so two clerks opening one claim at once get one
lease. Deciding takes the lease in the same way, so a decision without opening is no loophole.

Four eyes: a payout above ``GC_CLAIMS_FOUR_EYES_FEN``, or the user's ``GC_CLAIMS_FOUR_EYES_NTH``-th (or
later) payout in a calendar month (Asia/Shanghai), needs a second approver: the first approval records
the reviewer and leaves the claim ``pending_review`` with ``four_eyes`` set; a different staff member's
approval makes it ``approved``. That second approver may not then execute the payout
(:mod:`gc_admin.claims.payout`): approver2 is neither the reviewer nor the payer.

Every decision is a conditional UPDATE on the expected status, leaves a ``claim_event`` and an audit row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.claims import service
from gc_admin.claims.models import CATEGORIES, STATUSES, Claim, ClaimEvent, ClaimImage, ClaimPayout
from gc_admin.config import get_settings
from gc_admin.core.clock import SHANGHAI, UTC, iso, utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.core.phone import mask_phone
from gc_admin.core.principal import Principal
from gc_admin.coupons.wallet import service as wallet
from gc_admin.db import Page, paginate

LEASE = dt.timedelta(minutes=10)
SLA = dt.timedelta(hours=24)  # a claim should be decided within a day of its filing
BULK_MAX = 100


def _not_found() -> NotFound:
    return NotFound("返现申请不存在", code="CLAIM_NOT_FOUND")


def get_claim(session: Session, *, claim_id: int) -> Claim:
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise _not_found()
    return claim


# --- the queue -------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class QueueFilter:
    status: str | None = None
    category: str | None = None
    city: str | None = None
    q: str | None = None  # phone (whole or last 4) or claim id
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    min_fen: int | None = None
    max_fen: int | None = None
    flagged: bool | None = None  # True: with flags; False: clean


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).astimezone(UTC)


def _queue_query(f: QueueFilter) -> Any:
    q = select(Claim)
    if f.status:
        if f.status not in STATUSES:
            raise InvalidInput("未知的申请状态", code="INVALID_STATUS")
        q = q.where(col(Claim.status) == f.status)
    if f.category:
        if f.category not in CATEGORIES:
            raise InvalidInput("未知的返现类别", code="INVALID_CATEGORY")
        q = q.where(col(Claim.category) == f.category)
    if f.city:
        q = q.where(col(Claim.city) == f.city.removesuffix("市"))
    if f.q:
        text = f.q.strip()
        if text.isdigit() and len(text) == 11:
            q = q.where(col(Claim.phone) == text)
        elif text.isdigit() and len(text) == 4:
            q = q.where(col(Claim.phone).endswith(text))
        elif text.lstrip("#").isdigit() and len(text.lstrip("#")) < 10:
            q = q.where(col(Claim.id) == int(text.lstrip("#")))
        else:
            q = q.where(col(Claim.id) == -1)
    if f.date_from:
        q = q.where(col(Claim.created_at) >= _day_start(f.date_from))
    if f.date_to:
        q = q.where(col(Claim.created_at) < _day_start(f.date_to + dt.timedelta(days=1)))
    if f.min_fen is not None:
        q = q.where(col(Claim.amount_paid_fen) >= f.min_fen)
    if f.max_fen is not None:
        q = q.where(col(Claim.amount_paid_fen) <= f.max_fen)
    if f.flagged is not None:
        # flags is a JSON list; "[]" when clean (both backends store the text form)
        clean = func.coalesce(func.json_array_length(col(Claim.flags)), 0) == 0
        q = q.where(~clean if f.flagged else clean)
    return q


def list_queue(session: Session, *, filters: QueueFilter, offset: int = 0, limit: int = 50) -> Page[Claim]:
    """A page of claims, oldest waiting first (the queue's order), with the total."""
    order = [col(Claim.created_at), col(Claim.id)] if filters.status == "pending_review" else [col(Claim.id).desc()]
    return paginate(session, _queue_query(filters), order=order, offset=offset, limit=limit)


def sla(claim: Claim, now: dt.datetime) -> dict[str, Any]:
    due = claim.created_at + SLA
    open_ = claim.status == "pending_review"
    return {"due_at": iso(due), "overdue": open_ and now > due,
            "minutes_left": int((due - now).total_seconds() // 60) if open_ else None}


def row_view(claim: Claim, now: dt.datetime | None = None) -> dict[str, Any]:
    """A queue row: masked phone and account."""
    now = now or utcnow()
    lease = claim.lease_staff_name if claim.lease_until and claim.lease_until > now else None
    return {
        "id": claim.id, "category": claim.category, "category_label": CATEGORIES[claim.category],
        "amount_paid_fen": claim.amount_paid_fen, "payout_fen": claim.payout_fen, "station": claim.station,
        "status": claim.status, "status_label": STATUSES[claim.status], "city": claim.city,
        "phone_masked": mask_phone(claim.phone), "payout_method": claim.payout_method,
        "account_masked": claim.account_masked, "flags": len(claim.flags or []),
        "flag_kinds": sorted({f.get("code") or f.get("by") or f["kind"] for f in claim.flags or []}),
        "four_eyes": claim.four_eyes, "reviewer": claim.reviewer_name or None, "leased_by": lease,
        "created_at": iso(claim.created_at), "sla": sla(claim, now), "reason": claim.reason,
    }


def image_url(claim_id: int, n: int) -> str:
    return f"/api/v1/admin/claims/{claim_id}/images/{n}"


def _ocr(img: ClaimImage) -> dict[str, Any]:
    confs = [c for c in (img.ocr_amount_conf, img.ocr_paid_at_conf, img.ocr_merchant_conf, img.ocr_txn_conf) if c]
    return {"status": img.ocr_status, "source": img.ocr_source, "amount_fen": img.ocr_amount_fen,
            "paid_at": iso(img.ocr_paid_at), "merchant": img.ocr_merchant, "transaction_no": img.ocr_txn_no,
            "confidence": round(min(confs), 3) if confs else None,
            "confidences": {"amount": img.ocr_amount_conf, "paid_at": img.ocr_paid_at_conf,
                            "merchant": img.ocr_merchant_conf, "transaction_no": img.ocr_txn_conf},
            "error": img.ocr_error}


def detail(session: Session, *, claim_id: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """Everything the review screen shows: the claim, its images with OCR beside the claimed figures,
    mismatches, duplicates (naming the other claim), the user's other claims, the history, payouts."""
    now = now or utcnow()
    claim = get_claim(session, claim_id=claim_id)
    images = session.exec(select(ClaimImage).where(ClaimImage.claim_id == claim_id).order_by(ClaimImage.n)).all()
    history = session.exec(select(ClaimEvent).where(ClaimEvent.claim_id == claim_id).order_by(ClaimEvent.id)).all()
    others = session.exec(select(Claim).where(Claim.user_id == claim.user_id, Claim.id != claim_id)
                          .order_by(col(Claim.id).desc()).limit(20)).all()
    payouts = session.exec(select(ClaimPayout).where(ClaimPayout.claim_id == claim_id).order_by(ClaimPayout.id)).all()
    flags = claim.flags or []
    return {
        **row_view(claim, now), **service.claim_view(session, claim),
        "real_name_masked": claim.real_name_masked, "bank_name": claim.bank_name,
        "contact_phone_masked": mask_phone(claim.contact_phone), "items": claim.items,
        "images": [{"n": i.n, "url": image_url(claim_id, i.n), "width": i.width, "height": i.height, "ocr": _ocr(i)}
                   for i in images],
        "mismatches": [f for f in flags if f["kind"] == "mismatch"],
        "duplicates": [{"claim_id": f["claim_id"], "by": f["by"], "message": f["message"]} for f in flags
                       if f["kind"] == "duplicate"],
        "history": [{"action": e.action, "from": e.from_status, "status": e.to_status, "by": e.actor_name,
                     "reason": e.reason, "at": iso(e.at)} for e in history],
        "user_claims": [{"id": o.id, "category": o.category, "amount_paid_fen": o.amount_paid_fen, "status": o.status,
                         "created_at": iso(o.created_at)} for o in others],
        "payouts": [{"out_biz_no": p.out_biz_no, "channel": p.channel, "status": p.status, "amount_fen": p.amount_fen,
                     "reference": p.reference, "error": p.error, "by": p.payer_name, "at": iso(p.updated_at)}
                    for p in payouts],
        "reviewer": claim.reviewer_name or None, "approver2": claim.approver2_name or None,
        "payer": claim.payer_name or None,
    }


def image_of(session: Session, *, claim_id: int, n: int) -> ClaimImage:
    img = session.exec(select(ClaimImage).where(ClaimImage.claim_id == claim_id, ClaimImage.n == n)).first()
    if img is None:
        raise NotFound("图片不存在", code="IMAGE_NOT_FOUND")
    return img


# --- the lease ---------------------------------------------------------------------------------------

def _lease_free(staff_id: int, now: dt.datetime) -> Any:
    return or_(col(Claim.lease_staff_id).is_(None), col(Claim.lease_staff_id) == staff_id, col(Claim.lease_until) < now)


def take_lease(session: Session, *, claim_id: int, principal: Principal, now: dt.datetime | None = None) -> Claim:
    """Hold the claim for review for :data:`LEASE` (renewed when already mine); refuses while another's runs."""
    now = now or utcnow()
    res = session.execute(update(Claim).where(col(Claim.id) == claim_id, _lease_free(principal.id, now))
                          .values(lease_staff_id=principal.id, lease_staff_name=principal.display_name[:64],
                                  lease_until=now + LEASE).execution_options(synchronize_session=False))
    claim = get_claim(session, claim_id=claim_id)
    session.refresh(claim)
    if res.rowcount != 1:
        raise Conflict(f"{claim.lease_staff_name} 正在审核这条申请，请稍后或处理其他申请", code="CLAIM_LEASED_BY_OTHER",
                       details={"leased_by": claim.lease_staff_name, "until": iso(claim.lease_until)})
    return claim


def release_lease(session: Session, *, claim_id: int, principal: Principal) -> None:
    session.execute(update(Claim).where(col(Claim.id) == claim_id, col(Claim.lease_staff_id) == principal.id)
                    .values(lease_staff_id=None, lease_staff_name="", lease_until=None)
                    .execution_options(synchronize_session=False))


# --- decisions ------------------------------------------------------------------------------------------

def needs_four_eyes(session: Session, *, claim: Claim, now: dt.datetime) -> bool:
    c = get_settings().claims
    if claim.payout_fen > c.four_eyes_fen:
        return True
    local = now.astimezone(SHANGHAI)
    month_start = dt.datetime(local.year, local.month, 1, tzinfo=SHANGHAI).astimezone(UTC)
    before = session.exec(select(func.count()).select_from(Claim).where(
        col(Claim.user_id) == claim.user_id, col(Claim.id) != claim.id,
        col(Claim.status).in_(("approved", "paying", "paid", "payout_failed")),
        col(Claim.approved_at) >= month_start)).one()
    return int(before) + 1 >= c.four_eyes_nth


def _state_changed(claim: Claim) -> Conflict:
    return Conflict(f"该申请当前状态为“{STATUSES[claim.status]}”，不能再审核", code="CLAIM_STATE_CHANGED",
                    details={"status": claim.status})


@dataclasses.dataclass(frozen=True)
class Decision:
    claim_id: int
    status: str
    awaiting_second: bool = False  # four eyes: the first approval is in, a second approver is needed


def approve(session: Session, *, claim_id: int, principal: Principal, note: str = "",
            now: dt.datetime | None = None) -> Decision:
    """Approve a pending claim (first or second approval; see the module docstring)."""
    now = now or utcnow()
    take_lease(session, claim_id=claim_id, principal=principal, now=now)
    claim = get_claim(session, claim_id=claim_id)
    if claim.status != "pending_review":
        raise _state_changed(claim)
    if claim.coupon_id is None:  # cannot happen for pending claims; kept as the rule it is
        raise Conflict("该申请没有锁定返现券，不能通过", code="CLAIM_WITHOUT_COUPON")
    actor = principal.actor()
    second = claim.four_eyes and claim.reviewer_id is not None
    if second:
        if claim.reviewer_id == principal.id:
            raise Conflict("该申请需双人复核：已由您初审，请由另一位同事复核通过", code="FOUR_EYES_SAME_PERSON")
        ok = service.set_status(session, claim_id=claim_id, expect=("pending_review",), to="approved",
                                approver2_id=principal.id, approver2_name=principal.display_name[:64], approved_at=now,
                                lease_staff_id=None, lease_staff_name="", lease_until=None)
        action, summary = "approve_second", "复核通过"
    elif needs_four_eyes(session, claim=claim, now=now):
        res = session.execute(update(Claim).where(col(Claim.id) == claim_id, col(Claim.status) == "pending_review",
                                                  col(Claim.reviewer_id).is_(None))
                              .values(reviewer_id=principal.id, reviewer_name=principal.display_name[:64],
                                      reviewed_at=now, four_eyes=True, updated_at=now, lease_staff_id=None,
                                      lease_staff_name="", lease_until=None)
                              .execution_options(synchronize_session=False))
        if res.rowcount != 1:
            session.refresh(claim)
            raise _state_changed(claim)
        service.add_event(session, claim_id=claim_id, action="approve_first", from_status="pending_review",
                          to_status="pending_review", actor=actor, reason=note, now=now)
        record(session, actor=actor, action="claim.approved_first", target_type="claim", target_id=claim_id,
               summary="初审通过，待另一位同事复核（双人复核）", before={"status": "pending_review"},
               after={"status": "pending_review", "four_eyes": True})
        return Decision(claim_id, "pending_review", awaiting_second=True)
    else:
        ok = service.set_status(session, claim_id=claim_id, expect=("pending_review",), to="approved",
                                reviewer_id=principal.id, reviewer_name=principal.display_name[:64], reviewed_at=now,
                                approved_at=now, lease_staff_id=None, lease_staff_name="", lease_until=None)
        action, summary = "approve", "审核通过"
    if not ok:
        session.refresh(claim)
        raise _state_changed(claim)
    service.add_event(session, claim_id=claim_id, action=action, from_status="pending_review", to_status="approved",
                      actor=actor, reason=note, now=now)
    record(session, actor=actor, action="claim.approved", target_type="claim", target_id=claim_id,
           summary=summary + (f"：{note}" if note else ""), before={"status": "pending_review"},
           after={"status": "approved", "payout_fen": claim.payout_fen})
    return Decision(claim_id, "approved")


def reject(session: Session, *, claim_id: int, principal: Principal, reason: str,
           now: dt.datetime | None = None) -> Decision:
    """Reject a pending claim with a reason (a code of the managed list or free text); its coupon is
    given back (reserved -> available) in the same unit of work."""
    now = now or utcnow()
    reason = (reason or "").strip()
    labels = {r["code"]: r["label"] for r in service.reject_reasons(session)}
    reason = labels.get(reason, reason)
    if not 2 <= len(reason) <= 200:
        raise InvalidInput("请选择或填写驳回原因（2–200 个字）", code="INVALID_REASON")
    take_lease(session, claim_id=claim_id, principal=principal, now=now)
    claim = get_claim(session, claim_id=claim_id)
    if not service.set_status(session, claim_id=claim_id, expect=("pending_review",), to="rejected", reason=reason,
                              reviewer_id=principal.id, reviewer_name=principal.display_name[:64], reviewed_at=now,
                              lease_staff_id=None, lease_staff_name="", lease_until=None):
        session.refresh(claim)
        raise _state_changed(claim)
    actor = principal.actor()
    if claim.coupon_id is not None:
        wallet.release(session, coupon_id=claim.coupon_id, ref=f"claim:{claim_id}", actor=actor, now=now)
    service.add_event(session, claim_id=claim_id, action="reject", from_status="pending_review", to_status="rejected",
                      actor=actor, reason=reason, now=now)
    record(session, actor=actor, action="claim.rejected", target_type="claim", target_id=claim_id,
           summary=f"驳回：{reason}", before={"status": "pending_review"}, after={"status": "rejected"})
    return Decision(claim_id, "rejected")


def reveal_account(session: Session, *, claim_id: int, principal: Principal) -> dict[str, str]:
    """The whole payout account and name (for a manual transfer); audited."""
    from gc_admin.claims import crypto

    claim = get_claim(session, claim_id=claim_id)
    out = {"account": crypto.decrypt(claim.account_enc, field="account"),
           "real_name": crypto.decrypt(claim.real_name_enc, field="real_name") if claim.real_name_enc else ""}
    record(session, actor=principal.actor(), action="claim.account_revealed", target_type="claim", target_id=claim_id,
           summary=f"查看完整收款账号（{claim.account_masked}）")
    return out
