"""Paying an approved claim exactly once (DESIGN.md rule 5), by Alipay transfer or a manual transfer.

Alipay (:func:`pay`), in three short units of work with nothing held open while Alipay is asked:
1. **record**: ``approved|payout_failed -> paying`` (conditional) and a ``claim_payout`` row whose
   ``out_biz_no`` is derived from the claim and the attempt (``GCCB<claim id 10>A<attempt 2>``);
   ``uq_claim_payout_live`` allows one payout per claim that has not failed. Committed.
2. **send**: the sender's lease on that payout row (``sending_until``, a conditional UPDATE) — two
   clicks, two clerks or a retry racing a slow first try: one sends, the others answer "in progress".
   A payout that may have been sent before (tried before, ``sent`` or ``unknown``: a worker died after
   recording, a timeout) is **queried first** (``alipay.fund.trans.common.query``): SUCCESS is applied,
   a confirmed FAIL marks it failed, NOT_FOUND resends the *same* ``out_biz_no`` (Alipay de-duplicates
   on it), anything else stays ``unknown`` for the next retry.
3. **apply**: SUCCESS → payout ``succeeded``, claim ``paid``, coupon ``reserved -> used`` (once, by its
   ref), one ledger entry ``cashback_payout`` with ref ``cashback:<out_biz_no>`` (unique), audit.
   FAIL (confirmed) → payout ``failed``, claim ``payout_failed``; only a new attempt gets a new
   ``out_biz_no``. UNKNOWN → ``unknown`` and the ``claims.payout_query`` task queued (key
   ``payout:<out_biz_no>``, retried with backoff: :func:`query_unknown`); it, :func:`resume_unfinished`
   (the ``claims.payouts`` sweep) and any retry query before anything else.

Manual (:func:`pay_manual`): the clerk paid in Alipay or the bank and enters the transfer reference;
recorded and applied in one unit (the live-payout index still allows one).

Four eyes: the second approver may not be the payer (``FOUR_EYES_PAYER``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from gc_admin.audit.service import SYSTEM, Actor, record
from gc_admin.claims import crypto, service
from gc_admin.claims.models import STATUSES, Claim, ClaimPayout
from gc_admin.core import tasks
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.core.principal import Principal
from gc_admin.coupons.wallet import service as wallet
from gc_admin.db import session_scope
from gc_admin.payments.ledger import add_ledger

log = logging.getLogger(__name__)

SEND_LEASE = dt.timedelta(minutes=2)
QUERY_TASK = "claims.payout_query"
QUERY_DELAY_SECONDS = 5
PAYABLE = ("approved", "payout_failed")


def out_biz_no(claim_id: int, attempt: int) -> str:
    return f"GCCB{claim_id:010d}A{attempt:02d}"


@dataclasses.dataclass(frozen=True)
class PayoutOutcome:
    claim_id: int
    status: str  # the claim's status afterwards
    payout_status: str | None
    out_biz_no: str | None
    message: str


def _actor(principal: Principal | None) -> Actor:
    return principal.actor() if principal is not None else SYSTEM


def _check_payer(claim: Claim, principal: Principal | None) -> None:
    if principal is not None and claim.four_eyes and claim.approver2_id == principal.id:
        raise Conflict("双人复核：复核人不能同时执行打款，请由其他同事打款", code="FOUR_EYES_PAYER")


def _live(session: Session, claim_id: int) -> ClaimPayout | None:
    return service.live_payout(session, claim_id)


def record_payout(session: Session, *, claim_id: int, principal: Principal | None, channel: str = "alipay",
                  now: dt.datetime | None = None) -> ClaimPayout:
    """Step 1: the payout row (or the live one already there). The caller commits before sending."""
    now = now or utcnow()
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise NotFound("返现申请不存在", code="CLAIM_NOT_FOUND")
    live = _live(session, claim_id)
    if live is not None:
        return live
    _check_payer(claim, principal)
    if claim.status not in PAYABLE:
        raise Conflict(f"该申请当前状态为“{STATUSES[claim.status]}”，不能打款", code="CLAIM_STATE_CHANGED",
                       details={"status": claim.status})
    if claim.payout_method != "alipay" and channel == "alipay":
        raise Conflict("银行卡收款需人工转账后登记转账流水号", code="PAYOUT_MANUAL_ONLY")
    attempt = 1 + int(session.exec(select(func.count()).select_from(ClaimPayout)
                                   .where(ClaimPayout.claim_id == claim_id)).one())
    if not service.set_status(session, claim_id=claim_id, expect=PAYABLE, to="paying"):
        session.expire_all()
        live = _live(session, claim_id)
        if live is not None:
            return live
        raise Conflict("该申请正在由他人处理，请刷新后重试", code="CLAIM_STATE_CHANGED")
    actor = _actor(principal)
    payout = ClaimPayout(claim_id=claim_id, attempt=attempt, out_biz_no=out_biz_no(claim_id, attempt), channel=channel,
                         amount_fen=claim.payout_fen, status="recorded",
                         payer_id=principal.id if principal else None, payer_name=actor.name[:64],
                         created_at=now, updated_at=now)
    session.add(payout)
    session.flush()
    service.add_event(session, claim_id=claim_id, action="payout_recorded", from_status=claim.status, to_status="paying",
                      actor=actor, reason=payout.out_biz_no, now=now)
    record(session, actor=actor, action="claim.payout_recorded", target_type="claim", target_id=claim_id,
           summary=f"登记打款 {payout.out_biz_no}，{claim.payout_fen} 分", after={"out_biz_no": payout.out_biz_no})
    return payout


def _take_sender(payout_id: int, now: dt.datetime) -> bool:
    with session_scope() as s:
        res = s.execute(update(ClaimPayout).where(
            col(ClaimPayout.id) == payout_id, col(ClaimPayout.status).in_(("recorded", "sent", "unknown")),
            or_(col(ClaimPayout.sending_until).is_(None), col(ClaimPayout.sending_until) < now))
            .values(sending_until=now + SEND_LEASE, tries=col(ClaimPayout.tries) + 1, updated_at=now)
            .execution_options(synchronize_session=False))
        return res.rowcount == 1


def _mark(payout_id: int, **values: Any) -> None:
    with session_scope() as s:
        s.execute(update(ClaimPayout).where(col(ClaimPayout.id) == payout_id,
                                            col(ClaimPayout.status).in_(("recorded", "sent", "unknown")))
                  .values(updated_at=utcnow(), **values).execution_options(synchronize_session=False))


def apply_success(session: Session, *, payout_id: int, reference: str | None, pay_fund_order_id: str | None = None,
                  actor: Actor, now: dt.datetime | None = None) -> bool:
    """Step 3 on success: payout, claim, coupon, ledger, audit — once (a second call changes nothing)."""
    now = now or utcnow()
    res = session.execute(update(ClaimPayout).where(col(ClaimPayout.id) == payout_id,
                                                    col(ClaimPayout.status).in_(("recorded", "sent", "unknown")))
                          .values(status="succeeded", reference=reference, pay_fund_order_id=pay_fund_order_id,
                                  sending_until=None, updated_at=now).execution_options(synchronize_session=False))
    if res.rowcount != 1:
        return False
    payout = session.get(ClaimPayout, payout_id)
    assert payout is not None
    session.refresh(payout)
    claim = session.get(Claim, payout.claim_id)
    assert claim is not None and claim.coupon_id is not None
    ok = service.set_status(session, claim_id=claim.id or 0, expect=("paying",), to="paid", paid_at=now,
                            payout_reference=reference, payer_id=payout.payer_id, payer_name=payout.payer_name)
    assert ok, f"claim {claim.id} was not paying when its payout succeeded"
    wallet.consume(session, coupon_id=claim.coupon_id, ref=f"claim:{claim.id}", actor=actor, now=now)
    add_ledger(session, kind="cashback_payout", amount_fen=-payout.amount_fen, ref=f"cashback:{payout.out_biz_no}",
               provider="alipay" if payout.channel == "alipay" else "manual", provider_ref=reference,
               user_id=claim.user_id, occurred_at=now, note=f"返现申请 #{claim.id}")
    service.add_event(session, claim_id=claim.id or 0, action="paid", from_status="paying", to_status="paid", actor=actor,
                      reason=reference or "", now=now)
    record(session, actor=actor, action="claim.paid", target_type="claim", target_id=claim.id,
           summary=f"返现已打款 {payout.amount_fen} 分（{payout.out_biz_no}，流水 {reference or '—'}）",
           before={"status": "paying"}, after={"status": "paid", "reference": reference})
    return True


def _apply_failure(payout_id: int, *, code: str | None, message: str | None, actor: Actor) -> None:
    now = utcnow()
    with session_scope() as s:
        res = s.execute(update(ClaimPayout).where(col(ClaimPayout.id) == payout_id,
                                                  col(ClaimPayout.status).in_(("recorded", "sent", "unknown")))
                        .values(status="failed", error_code=(code or "")[:64], error=(message or "")[:200],
                                sending_until=None, updated_at=now).execution_options(synchronize_session=False))
        if res.rowcount != 1:
            return
        payout = s.get(ClaimPayout, payout_id)
        assert payout is not None
        s.refresh(payout)
        service.set_status(s, claim_id=payout.claim_id, expect=("paying",), to="payout_failed")
        service.add_event(s, claim_id=payout.claim_id, action="payout_failed", from_status="paying",
                          to_status="payout_failed", actor=actor, reason=f"{code}: {message}", now=now)
        record(s, actor=actor, action="claim.payout_failed", target_type="claim", target_id=payout.claim_id,
               summary=f"打款失败 {payout.out_biz_no}：{message or code}", after={"error_code": code})


def _client():
    from gc_admin.integrations.alipay.setup import get_client

    return get_client()


def _payee(claim: Claim):
    from gc_admin.integrations.alipay.client import Payee

    return Payee.login_id(crypto.decrypt(claim.account_enc, field="account"),
                          crypto.decrypt(claim.real_name_enc or "", field="real_name"))


def send(payout_id: int, *, actor: Actor) -> str:
    """Step 2 (and 3) for one recorded payout; returns the payout's status afterwards."""
    now = utcnow()
    if not _take_sender(payout_id, now):
        with session_scope() as s:
            p = s.get(ClaimPayout, payout_id)
            return p.status if p else "missing"
    with session_scope() as s:
        payout = s.get(ClaimPayout, payout_id)
        assert payout is not None
        claim = s.get(Claim, payout.claim_id)
        assert claim is not None
        maybe_sent = payout.tries > 1 or payout.status in ("sent", "unknown")
        no, amount, payee = payout.out_biz_no, payout.amount_fen, _payee(claim)
    client = _client()
    if maybe_sent:
        q = client.query(out_biz_no=no)
        if q.status == "SUCCESS":
            return _success(payout_id, q.order_id, q.pay_fund_order_id, actor)
        if q.status in ("FAIL", "REFUND"):
            _apply_failure(payout_id, code=q.fail_code or q.sub_code or q.error_code, message=q.fail_reason or q.message,
                           actor=actor)
            return "failed"
        if q.status != "NOT_FOUND":  # DEALING / UNKNOWN: nothing is known; ask again later
            _mark(payout_id, status="unknown", sending_until=None, error_code=(q.error_code or q.status)[:64])
            return "unknown"
    _mark(payout_id, status="sent")
    r = client.transfer(out_biz_no=no, amount_fen=amount, payee=payee, order_title="车主权益返现")
    if r.status == "SUCCESS":
        return _success(payout_id, r.order_id, r.pay_fund_order_id, actor)
    if r.status == "FAIL":
        _apply_failure(payout_id, code=r.sub_code or r.error_code, message=r.message, actor=actor)
        return "failed"
    _mark(payout_id, status="unknown", sending_until=None, error_code=(r.sub_code or r.error_code or "")[:64],
          error=(r.message or "")[:200])
    return "unknown"


def _success(payout_id: int, order_id: str | None, fund_id: str | None, actor: Actor) -> str:
    with session_scope() as s:
        apply_success(s, payout_id=payout_id, reference=order_id, pay_fund_order_id=fund_id, actor=actor)
    return "succeeded"


_MESSAGES = {"succeeded": "已打款", "failed": "打款失败，可重试（将使用新的打款单号）", "unknown": "打款结果未知，系统将先查询再决定是否重试",
             "recorded": "打款已登记，正在发送", "sent": "打款处理中，请稍后刷新", "missing": "打款记录不存在"}


def pay(*, claim_id: int, principal: Principal | None) -> PayoutOutcome:
    """Pay an approved claim by Alipay, or resume its unfinished payout (see the module docstring)."""
    with session_scope() as s:
        payout = record_payout(s, claim_id=claim_id, principal=principal)
        payout_id, no = payout.id or 0, payout.out_biz_no
        if payout.status == "succeeded":
            return _outcome(claim_id, "succeeded", no)
    status = send(payout_id, actor=_actor(principal))
    if status == "unknown":  # ask Alipay again soon, from the queue (committed: the payout row says "unknown")
        tasks.defer(QUERY_TASK, key=f"payout:{no}", delay_seconds=QUERY_DELAY_SECONDS, payout_id=payout_id)
    return _outcome(claim_id, status, no)


class PayoutStillUnknown(RuntimeError):
    """Alipay has not told the payout's outcome yet: the task is retried later (backoff)."""


def query_unknown(*, payout_id: int) -> dict[str, Any]:
    """The ``claims.payout_query`` task, queued by a payout whose result was unknown: query Alipay first
    (:func:`send`; a NOT_FOUND resends the same ``out_biz_no``), apply what it says. Still not settled raises,
    so the queue retries with backoff; the ``claims.payouts`` sweep catches what the retries leave."""
    status = send(payout_id, actor=SYSTEM)
    if status in ("recorded", "sent", "unknown"):
        raise PayoutStillUnknown(f"claim payout {payout_id}: still {status}")
    return {"payout_id": payout_id, "status": status}


def _outcome(claim_id: int, payout_status: str, no: str | None) -> PayoutOutcome:
    with session_scope() as s:
        claim = s.get(Claim, claim_id)
        assert claim is not None
        return PayoutOutcome(claim_id, claim.status, payout_status, no, _MESSAGES.get(payout_status, payout_status))


def pay_manual(session: Session, *, claim_id: int, principal: Principal, reference: str,
               now: dt.datetime | None = None) -> ClaimPayout:
    """Record a transfer the clerk made by hand (reference = the bank's or Alipay's 流水号) and apply it."""
    reference = (reference or "").strip()
    if not 4 <= len(reference) <= 64 or not reference.isascii() or not reference.replace("-", "").isalnum():
        raise InvalidInput("请填写转账流水号（4–64 位字母或数字）", code="INVALID_REFERENCE")
    now = now or utcnow()
    live = _live(session, claim_id)
    if live is not None and live.status == "succeeded":
        if live.reference == reference:
            return live  # the same entry again: nothing twice
        raise Conflict("该申请已打款，不能重复登记", code="CLAIM_ALREADY_PAID")
    if live is not None:
        raise Conflict("该申请有一笔支付宝打款结果未明，请先等待查询结果", code="PAYOUT_IN_PROGRESS")
    payout = record_payout(session, claim_id=claim_id, principal=principal, channel="manual", now=now)
    apply_success(session, payout_id=payout.id or 0, reference=reference, actor=principal.actor(), now=now)
    session.refresh(payout)
    return payout


def resume_unfinished(*, older_than: dt.timedelta = dt.timedelta(minutes=1)) -> dict[str, int]:
    """The ``claims.payouts`` job: payouts left recorded/sent/unknown (a worker died, a timeout) are
    resumed — queried first — once their sender lease is free."""
    cutoff = utcnow() - older_than
    with session_scope() as s:
        ids = list(s.exec(select(ClaimPayout.id).where(
            col(ClaimPayout.channel) == "alipay", col(ClaimPayout.status).in_(("recorded", "sent", "unknown")),
            col(ClaimPayout.updated_at) < cutoff).order_by(col(ClaimPayout.id)).limit(50)).all())
    out: dict[str, int] = {}
    for payout_id in ids:
        status = send(payout_id, actor=SYSTEM)
        out[status] = out.get(status, 0) + 1
    return out
