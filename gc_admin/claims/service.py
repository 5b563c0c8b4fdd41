"""Cashback claims: submission rules, the user's views, the managed lists. No commit here.

A claim reserves one available cashback coupon of its category (earliest expiry first) through the
wallet's conditional ``available -> reserved`` update (:func:`gc_admin.coupons.wallet.service.reserve`),
so two claims can never hold one coupon; ``uq_claim_open_coupon`` says it again in the database. A
user without one gets the claim recorded as ``refused`` with the reason "no valid coupon" (SPEC.md §5).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from gc_admin.audit.service import Actor, record
from gc_admin.claims import crypto
from gc_admin.claims.models import (
    CATEGORIES,
    MAINTENANCE_ITEMS,
    PAYOUT_METHODS,
    STATUSES,
    Claim,
    ClaimEvent,
    ClaimImage,
    ClaimPayout,
    ClaimRejectReason,
    EvOperator,
)
from gc_admin.core.clock import iso, utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.core.phone import mask_phone, normalize_phone
from gc_admin.coupons.models import Coupon, Product
from gc_admin.coupons.wallet import service as wallet
from gc_admin.db import first_wins
from gc_admin.users.models import MpUser

NO_COUPON = "no valid coupon"
NO_COUPON_LABEL = "没有可用的返现券"
AMOUNT_MAX_FEN = 10_000_000  # ¥100,000: no fuel/wash/paint bill is larger
CLIENT_REF_RE = re.compile(r"^[A-Za-z0-9_\-:.]{1,64}$")
CARD_RE = re.compile(r"^[0-9]{12,19}$")
NAME_RE = re.compile(r"^[\u4e00-\u9fff·]{2,20}$|^[A-Za-z][A-Za-z .\-]{1,39}$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,60}\.[A-Za-z]{2,10}$")


def reason_label(reason: str | None) -> str:
    """A claim's or history line's reason as a person reads it (the API keeps ``no valid coupon``)."""
    return NO_COUPON_LABEL if reason == NO_COUPON else (reason or "")


def _bad(message: str, code: str = "INVALID_CLAIM") -> InvalidInput:
    return InvalidInput(message, code=code)


def luhn_ok(number: str) -> bool:
    """The Luhn check digit of a bank card number (UnionPay cards use it)."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclasses.dataclass(frozen=True)
class ClaimForm:
    """What the mini-program sends (already parsed from the multipart form)."""

    category: str
    amount_paid_fen: int
    station: str
    payout_method: str
    client_ref: str
    items: tuple[str, ...] = ()
    alipay_account: str = ""
    contact_phone: str = ""
    real_name: str = ""
    bank_card_no: str = ""
    bank_name: str = ""


@dataclasses.dataclass(frozen=True)
class StoredImage:
    """An image already checked and written to storage, to be recorded on the claim."""

    storage_key: str
    content_type: str
    size_bytes: int
    sha256: str
    width: int
    height: int


def validate_form(session: Session, form: ClaimForm) -> ClaimForm:
    """Every field of ``form`` checked (Chinese message, first problem first); returns it normalised."""
    if not CLIENT_REF_RE.match(form.client_ref or ""):
        raise _bad("client_ref 必填：1–64 位字母、数字或 _-:.", "INVALID_CLIENT_REF")
    if form.category not in CATEGORIES:
        raise _bad(f"返现类别只能是：{'、'.join(CATEGORIES.values())}", "INVALID_CATEGORY")
    amount = form.amount_paid_fen
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= AMOUNT_MAX_FEN:
        raise _bad("实付金额（分）需为 1 至 10,000,000 之间的整数", "INVALID_AMOUNT")
    station = (form.station or "").strip()
    if form.category == "ev_charging":
        if station not in ev_operators(session):
            raise _bad(f"充电运营商需从列表中选择：{'、'.join(ev_operators(session))}", "INVALID_OPERATOR")
    elif not 2 <= len(station) <= 100:
        raise _bad("请填写加油站/门店名称（2–100 个字）", "INVALID_STATION")
    items = tuple(dict.fromkeys(form.items))
    if form.category == "maintenance":
        unknown = [i for i in items if i not in MAINTENANCE_ITEMS]
        if not items or unknown:
            raise _bad(f"保养项目需从列表中选择至少一项：{'、'.join(MAINTENANCE_ITEMS.values())}", "INVALID_ITEMS")
    elif items:
        raise _bad("只有保养类返现需要选择保养项目", "INVALID_ITEMS")
    if form.payout_method not in PAYOUT_METHODS:
        raise _bad("收款方式只能是支付宝或银行卡", "INVALID_PAYOUT_METHOD")
    if form.payout_method == "alipay":
        account = (form.alipay_account or "").strip()
        account = normalize_phone(account) or account
        if not (normalize_phone(account) or EMAIL_RE.match(account)):
            raise _bad("支付宝账号需为手机号或邮箱", "INVALID_ALIPAY_ACCOUNT")
        contact = normalize_phone(form.contact_phone or "")
        if contact is None:
            raise _bad("请填写正确的联系电话（11 位手机号）", "INVALID_CONTACT_PHONE")
        name = (form.real_name or "").strip()
        if not NAME_RE.match(name):  # Alipay refuses a transfer to a login id without the holder's name
            raise _bad("请填写支付宝账号的实名认证姓名", "INVALID_REAL_NAME")
        return dataclasses.replace(form, station=station, items=items, alipay_account=account, contact_phone=contact,
                                   real_name=name, bank_card_no="", bank_name="")
    name = (form.real_name or "").strip()
    if not NAME_RE.match(name):
        raise _bad("请填写银行卡开户人真实姓名", "INVALID_REAL_NAME")
    card = re.sub(r"[\s\-]", "", form.bank_card_no or "")
    if not CARD_RE.match(card) or not luhn_ok(card):
        raise _bad("银行卡号不正确（12–19 位数字，校验位不符），请核对后重新填写", "INVALID_BANK_CARD")
    bank = (form.bank_name or "").strip()
    if len(bank) > 40:
        raise _bad("开户银行名称不超过 40 个字", "INVALID_BANK_NAME")
    contact = normalize_phone(form.contact_phone or "") or ""
    return dataclasses.replace(form, station=station, items=items, real_name=name, bank_card_no=card, bank_name=bank,
                               alipay_account="", contact_phone=contact)


def ev_operators(session: Session) -> list[str]:
    return list(session.exec(select(EvOperator.name).where(col(EvOperator.active)).order_by(EvOperator.sort,
                                                                                              EvOperator.id)).all())


def reject_reasons(session: Session) -> list[dict[str, str]]:
    rows = session.exec(select(ClaimRejectReason).where(col(ClaimRejectReason.active))
                        .order_by(ClaimRejectReason.sort, ClaimRejectReason.id)).all()
    return [{"code": r.code, "label": r.label} for r in rows]


def options(session: Session) -> dict[str, Any]:
    """What the mini-program's claim form offers (``GET /mp/claims/options``)."""
    return {
        "categories": [{"code": k, "label": v} for k, v in CATEGORIES.items()],
        "ev_operators": ev_operators(session),
        "maintenance_items": [{"code": k, "label": v} for k, v in MAINTENANCE_ITEMS.items()],
        "payout_methods": [{"code": k, "label": v} for k, v in PAYOUT_METHODS.items()],
        "max_images": 6,
    }


def user_actor(user: MpUser) -> Actor:
    return Actor("user", str(user.id), mask_phone(user.phone) or f"用户#{user.id}")


def add_event(session: Session, *, claim_id: int, action: str, from_status: str | None, to_status: str, actor: Actor,
              reason: str = "", now: dt.datetime | None = None) -> None:
    session.add(ClaimEvent(claim_id=claim_id, action=action, from_status=from_status, to_status=to_status,
                           actor_type=actor.type, actor_id=actor.id, actor_name=actor.name[:64], reason=reason[:500],
                           at=now or utcnow()))


def _by_client_ref(session: Session, user_id: int, client_ref: str) -> Claim | None:
    return session.exec(select(Claim).where(Claim.user_id == user_id, Claim.client_ref == client_ref)).first()


def find_replay(session: Session, *, user: MpUser, client_ref: str) -> Claim | None:
    """The claim this user already filed under ``client_ref``, if any."""
    return _by_client_ref(session, user.id or 0, client_ref)


def candidate_coupons(session: Session, *, user: MpUser, category: str, now: dt.datetime) -> list[int]:
    """The user's available cashback coupons of ``category``, earliest expiry first."""
    owned = col(Coupon.user_id) == user.id
    if user.phone:
        owned = owned | (col(Coupon.user_id).is_(None) & (col(Coupon.phone) == user.phone))
    q = (select(Coupon.id).join(Product, col(Product.id) == col(Coupon.product_id))
         .where(owned, col(Coupon.status) == "available", col(Coupon.expires_at) >= now,
                col(Product.kind) == "cashback", col(Product.category) == category)
         .order_by(col(Coupon.expires_at), col(Coupon.id)).limit(10))
    return list(session.exec(q).all())


def submit_claim(session: Session, *, user: MpUser, form: ClaimForm, images: list[StoredImage],
                 now: dt.datetime | None = None) -> tuple[Claim, bool]:
    """Record a claim with its images and reserve a coupon for it; ``(claim, created)``.

    ``form`` must have passed :func:`validate_form`. The same ``client_ref`` again (even racing) answers
    with the first claim and ``created=False``: the caller then discards what it stored for this try.
    """
    now = now or utcnow()
    assert user.id is not None
    replay = _by_client_ref(session, user.id, form.client_ref)
    if replay is not None:
        return replay, False
    if not 1 <= len(images) <= 6:
        raise _bad("请上传 1–6 张支付凭证图片", "INVALID_IMAGES")

    def attempt() -> Claim:
        is_bank = form.payout_method == "bank"
        account = form.bank_card_no if is_bank else form.alipay_account
        claim = Claim(
            user_id=user.id, client_ref=form.client_ref, category=form.category, amount_paid_fen=form.amount_paid_fen,
            station=form.station, items=list(form.items), city=user.city or "", phone=user.phone or "",
            payout_method=form.payout_method, account_enc=crypto.encrypt(account, field="account"),
            account_masked=crypto.mask_account(account),
            real_name_enc=crypto.encrypt(form.real_name, field="real_name"),
            real_name_masked=crypto.mask_name(form.real_name), contact_phone=form.contact_phone, bank_name=form.bank_name,
            status="pending_review", created_at=now, updated_at=now)
        session.add(claim)
        session.flush()
        return claim

    mine: list[Claim] = []

    def attempt_once() -> Claim:
        mine.append(attempt())
        return mine[0]

    claim = first_wins(session, attempt_once, replay=lambda: _by_client_ref(session, user.id or 0, form.client_ref))
    if not mine or claim is not mine[0]:  # lost the race to a twin: its claim is the answer
        return claim, False
    for n, img in enumerate(images, start=1):
        session.add(ClaimImage(claim_id=claim.id, n=n, storage_key=img.storage_key, content_type=img.content_type,
                               size_bytes=img.size_bytes, sha256=img.sha256, width=img.width,
                               height=img.height, created_at=now))
    actor = user_actor(user)
    add_event(session, claim_id=claim.id, action="submit", from_status=None, to_status="pending_review", actor=actor,
              now=now)
    ref = f"claim:{claim.id}"
    coupon = None
    for coupon_id in candidate_coupons(session, user=user, category=form.category, now=now):
        try:
            coupon = wallet.reserve(session, coupon_id=coupon_id, user=user, ref=ref, actor=actor, now=now)
            break
        except Conflict:
            continue  # taken by a concurrent claim or order in the meantime: the next one
    if coupon is None:
        claim.status, claim.reason = "refused", NO_COUPON
        add_event(session, claim_id=claim.id, action="refuse", from_status="pending_review", to_status="refused",
                  actor=actor, reason=NO_COUPON, now=now)
    else:
        claim.coupon_id, claim.payout_fen = coupon.id, coupon.face_fen
    session.add(claim)
    session.flush()
    record(session, actor=actor, action="claim.submitted", target_type="claim", target_id=claim.id,
           summary=f"提交{CATEGORIES[claim.category]}返现申请，实付 {claim.amount_paid_fen} 分"
                   + ("" if coupon else f"；{NO_COUPON_LABEL}，自动不通过"),
           after={"status": claim.status, "coupon_id": claim.coupon_id, "amount_paid_fen": claim.amount_paid_fen})
    return claim, True


def get_user_claim(session: Session, *, user: MpUser, claim_id: int) -> Claim:
    claim = session.get(Claim, claim_id)
    if claim is None or claim.user_id != user.id:
        raise NotFound("返现申请不存在", code="CLAIM_NOT_FOUND")
    return claim


def list_user_claims(session: Session, *, user: MpUser, status: str | None = None, offset: int = 0,
                     limit: int = 20) -> list[Claim]:
    q = select(Claim).where(Claim.user_id == user.id)
    if status:
        if status not in STATUSES:
            raise _bad("未知的申请状态", "INVALID_STATUS")
        q = q.where(Claim.status == status)
    return list(session.exec(q.order_by(col(Claim.id).desc()).offset(offset).limit(limit)).all())


def live_payout(session: Session, claim_id: int) -> ClaimPayout | None:
    return session.exec(select(ClaimPayout).where(ClaimPayout.claim_id == claim_id, ClaimPayout.status != "failed")
                        ).first()


def claim_view(session: Session, claim: Claim, *, n_images: int | None = None) -> dict[str, Any]:
    """The API's Claim shape (API.md): the account masked, never whole (``n_images`` if the caller knows)."""
    if n_images is None:
        n_images = len(session.exec(select(ClaimImage.id).where(ClaimImage.claim_id == claim.id)).all())
    return {
        "id": claim.id, "category": claim.category, "category_label": CATEGORIES[claim.category],
        "amount_paid_fen": claim.amount_paid_fen, "station": claim.station, "items": claim.items,
        "status": claim.status, "status_label": STATUSES[claim.status], "coupon_id": claim.coupon_id,
        "payout": {"method": claim.payout_method, "account_masked": claim.account_masked, "amount_fen": claim.payout_fen,
                   "reference": claim.payout_reference},
        "reason": claim.reason, "reason_label": reason_label(claim.reason), "images": n_images, "client_ref": claim.client_ref,
        "created_at": iso(claim.created_at), "paid_at": iso(claim.paid_at),
    }


def set_status(session: Session, *, claim_id: int, expect: tuple[str, ...], to: str, **values: Any) -> bool:
    """``UPDATE claim SET status = to ... WHERE id = ? AND status IN expect``; whether it changed."""
    res = session.execute(update(Claim).where(col(Claim.id) == claim_id, col(Claim.status).in_(expect))
                          .values(status=to, updated_at=utcnow(), **values).execution_options(synchronize_session=False))
    return res.rowcount == 1
