"""What a reviewer is warned about: mismatches between the claim and its receipts, and duplicates.

Each flag is a dict ``{kind, code, message, ...}`` (``message`` Chinese, for the review screen), kept
on ``claim.flags``: a claim is filed with the flags known without OCR (``same_amount``), and they are
all recomputed when OCR finishes one of its images (:func:`refresh_flags`).

Mismatches (from OCR): the receipt's amount is not the claimed one; the receipt's pay time is after the
claim was filed; the merchant does not look like a business of the claim's category (a fuel claim paid
at a restaurant).

Duplicates (``kind = "duplicate"``, naming the other claim in ``claim_id`` and how in ``by``):
- ``transaction_no``: the same 交易单号/商户单号 read on an image of another claim of the same category;
- ``image``: an image whose perceptual hash (of its content box, see
  :func:`gc_admin.claims.images.perceptual_hash`) is within :data:`PHASH_MAX_DISTANCE` bits of an image
  of another claim — a re-compressed or cropped screenshot still matches (2 bits measured), a different
  receipt of the same layout does not (16+) — unless OCR read different transaction numbers on both;
- ``same_amount``: the same user claimed the same amount within :data:`SAME_AMOUNT_WINDOW` (the latest
  :data:`SAME_AMOUNT_NAMED` such claims are named).
Only earlier claims are named: the first use of a receipt is not its duplicate. A reviewer still
decides: flags inform, they never block.

The perceptual-hash comparison scans the images of the last :data:`PHASH_LOOKBACK` (a claim's receipt
is recent); at this programme's volume (thousands a month) that is a few milliseconds. The hash, like
the OCR fields, is made by the OCR job (not while the user waits for the submission), so the image and
transaction-number flags appear once the job has read the images; when it does, later claims that may
name this one are refreshed too (:func:`refresh_later`). Until then :func:`checks_pending` says so: the
review screen shows "识别中" and batch approval leaves the claim for later.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from gc_admin.claims.models import CATEGORIES, Claim, ClaimImage
from gc_admin.core.clock import fmt_local
from gc_admin.core.money import format_fen

PHASH_MAX_DISTANCE = 10
PHASH_LOOKBACK = dt.timedelta(days=180)
SAME_AMOUNT_WINDOW = dt.timedelta(days=3)
SAME_AMOUNT_NAMED = 5  # the latest this many are named: a longer list would only repeat the warning
MERCHANT_WORDS: dict[str, tuple[str, ...]] = {
    "fuel": ("加油", "石化", "石油", "中化", "壳牌", "能源", "油站", "油品", "燃气"),
    "ev_charging": ("充电", "电动", "能源", "电网", "快充", "新能源"),
    "car_wash": ("洗车", "汽车美容", "车之美", "车美", "洗护", "汽车服务"),
    "maintenance": ("保养", "汽修", "汽车服务", "汽配", "4S", "维修", "养护", "途虎", "汽车"),
    "paint": ("喷漆", "钣喷", "钣金", "汽修", "汽车服务", "维修", "4S", "汽车"),
}


def _hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def mismatches(claim: Claim, images: list[ClaimImage]) -> list[dict[str, Any]]:
    flags: list[dict[str, Any]] = []
    done = [i for i in images if i.ocr_status == "done"]
    amounts = [i.ocr_amount_fen for i in done if i.ocr_amount_fen is not None]
    if amounts and claim.amount_paid_fen not in amounts:
        flags.append({"kind": "mismatch", "code": "amount", "claimed_fen": claim.amount_paid_fen, "receipt_fen": amounts[0],
                      "message": f"申请金额 {format_fen(claim.amount_paid_fen)}，凭证金额 {format_fen(amounts[0])}"})
    times = [i.ocr_paid_at for i in done if i.ocr_paid_at is not None]
    if times and min(times) > claim.created_at:
        flags.append({"kind": "mismatch", "code": "paid_after_claim",
                      "message": f"凭证支付时间 {fmt_local(min(times))} 晚于申请提交时间 {fmt_local(claim.created_at)}"})
    merchants = [i.ocr_merchant for i in done if i.ocr_merchant]
    words = MERCHANT_WORDS.get(claim.category, ())
    if merchants and words and not any(w in m for m in merchants for w in words):
        flags.append({"kind": "mismatch", "code": "merchant_category", "merchant": merchants[0],
                      "message": f"商户“{merchants[0]}”看起来不是{CATEGORIES[claim.category]}类门店"})
    return flags


def duplicates(session: Session, claim: Claim, images: list[ClaimImage]) -> list[dict[str, Any]]:
    found: dict[tuple[int, str], dict[str, Any]] = {}
    txns = {i.ocr_txn_no for i in images if i.ocr_txn_no}
    if txns:
        rows = session.exec(
            select(ClaimImage.claim_id, ClaimImage.ocr_txn_no).join(Claim, col(Claim.id) == col(ClaimImage.claim_id))
            .where(col(ClaimImage.ocr_txn_no).in_(txns), col(ClaimImage.claim_id) < (claim.id or 0),
                   col(Claim.category) == claim.category)).all()
        for other, txn in rows:
            found.setdefault((other, "transaction_no"), {"kind": "duplicate", "by": "transaction_no", "claim_id": other,
                                                         "message": f"交易单号 {txn} 已用于申请 #{other}"})
    mine = [(i.phash, i.ocr_txn_no) for i in images if i.phash]
    for other, ph, txn in _hashed_since(session, claim, col(ClaimImage.claim_id) < (claim.id or 0)) if mine else ():
        if (other, "image") not in found and _looks_alike(ph, txn, mine):
            found[(other, "image")] = {"kind": "duplicate", "by": "image", "claim_id": other,
                                       "message": f"凭证图片与申请 #{other} 的图片相同或高度相似"}
    for flag in same_amount(session, user_id=claim.user_id, amount_fen=claim.amount_paid_fen, at=claim.created_at,
                            before_id=claim.id or 0):
        found.setdefault((flag["claim_id"], "same_amount"), flag)
    return sorted(found.values(), key=lambda f: (f["claim_id"], f["by"]))


@functools.cache
def _same_amount_statement(before: bool) -> Any:
    """Built once (building a statement costs more than running it)."""
    q = select(Claim.id).where(col(Claim.user_id) == bindparam("user_id"), col(Claim.amount_paid_fen) == bindparam("amount"),
                               col(Claim.created_at) >= bindparam("since"), col(Claim.created_at) <= bindparam("until"))
    if before:
        q = q.where(col(Claim.id) < bindparam("before_id"))
    return q.order_by(col(Claim.id).desc()).limit(SAME_AMOUNT_NAMED)


def same_amount(session: Session, *, user_id: int, amount_fen: int, at: dt.datetime,
                before_id: int | None) -> list[dict[str, Any]]:
    """The ``same_amount`` duplicate flags of a claim of ``user_id`` and ``amount_fen`` filed ``at``: the
    user's earlier claims (ids below ``before_id``; ``None``: a claim not inserted yet, so every one) of
    that amount within :data:`SAME_AMOUNT_WINDOW` — the latest :data:`SAME_AMOUNT_NAMED` of them, oldest
    first. Known without OCR: a claim is filed with them (:func:`gc_admin.claims.service.prior_claims`)."""
    params = {"user_id": user_id, "amount": amount_fen, "since": at - SAME_AMOUNT_WINDOW,
              "until": at + SAME_AMOUNT_WINDOW, "before_id": before_id}
    ids = session.connection().execute(_same_amount_statement(before_id is not None), params).scalars().all()
    return [same_amount_flag(other) for other in reversed(ids)]


def same_amount_flag(other: int) -> dict[str, Any]:
    """The flag naming ``other``, an earlier claim of the same user and amount within the window."""
    return {"kind": "duplicate", "by": "same_amount", "claim_id": other,
            "message": f"同一用户 {SAME_AMOUNT_WINDOW.days} 天内有相同金额的申请 #{other}"}


def _hashed_since(session: Session, claim: Claim, which) -> list[tuple[int, str, str | None]]:
    """``(claim_id, phash, txn)`` of the hashed images of claims ``which`` selects, of the lookback window."""
    since = claim.created_at - PHASH_LOOKBACK
    return list(session.exec(select(ClaimImage.claim_id, ClaimImage.phash, ClaimImage.ocr_txn_no)
                             .where(which, col(ClaimImage.phash).is_not(None), col(ClaimImage.created_at) >= since)).all())


def _looks_alike(ph: str, txn: str | None, mine: list[tuple[str, str | None]]) -> bool:
    # two receipts of one layout (the same station, a week apart) look alike: when OCR read a
    # transaction number on both and they differ, they are two payments, not one
    return any(_hamming(ph, m) <= PHASH_MAX_DISTANCE and not (t and txn and t != txn) for m, t in mine)


def later_claims(session: Session, claim: Claim, images: list[ClaimImage]) -> list[int]:
    """Later claims whose duplicate flags may name ``claim`` now that its images are read: an image
    that looks alike, or the same transaction number in the same category. (The job reads images in
    order, but a later claim can be read first: two workers, a retry.)"""
    ids: set[int] = set()
    mine = [(i.phash, i.ocr_txn_no) for i in images if i.phash]
    for other, ph, txn in _hashed_since(session, claim, col(ClaimImage.claim_id) > (claim.id or 0)) if mine else ():
        if _looks_alike(ph, txn, mine):
            ids.add(other)
    txns = {i.ocr_txn_no for i in images if i.ocr_txn_no}
    if txns:
        ids.update(session.exec(
            select(ClaimImage.claim_id).join(Claim, col(Claim.id) == col(ClaimImage.claim_id))
            .where(col(ClaimImage.ocr_txn_no).in_(txns), col(ClaimImage.claim_id) > (claim.id or 0),
                   col(Claim.category) == claim.category)).all())
    return sorted(ids)


def refresh_later(session: Session, *, claim: Claim) -> list[int]:
    """Refresh the flags of :func:`later_claims`; their ids."""
    images = list(session.exec(select(ClaimImage).where(ClaimImage.claim_id == claim.id)).all())
    ids = later_claims(session, claim, images)
    for other_id in ids:
        other = session.get(Claim, other_id)
        assert other is not None
        refresh_flags(session, claim=other)
    return ids


def checks_pending(session: Session, claim_id: int) -> bool:
    """Whether an image of the claim is still waiting for the OCR job (so its duplicate and mismatch
    flags are not all known yet)."""
    return session.exec(select(ClaimImage.id).where(ClaimImage.claim_id == claim_id,
                                                    col(ClaimImage.ocr_status) == "pending").limit(1)).first() is not None


def compute_flags(session: Session, claim: Claim) -> list[dict[str, Any]]:
    images = list(session.exec(select(ClaimImage).where(ClaimImage.claim_id == claim.id).order_by(ClaimImage.n)).all())
    return mismatches(claim, images) + duplicates(session, claim, images)


def refresh_flags(session: Session, *, claim: Claim) -> list[dict[str, Any]]:
    """Recompute and store ``claim.flags``."""
    flags = compute_flags(session, claim)
    claim.flags = flags
    session.add(claim)
    session.flush()
    return flags
