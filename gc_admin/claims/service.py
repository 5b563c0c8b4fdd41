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
import types
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from gc_admin.audit.service import Actor, entry, record_many
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
from gc_admin.core.errors import InvalidInput, NotFound
from gc_admin.core.phone import mask_phone, normalize_phone
from gc_admin.coupons.wallet import service as wallet
from gc_admin.core.bulk import dialect
from gc_admin.db import lock_for_write
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


@dataclasses.dataclass(frozen=True)
class Prior:
    """What :func:`prior_claims` found: the claim already filed under the ``client_ref`` (if any), and the
    ``same_amount`` duplicate flags a new claim is filed with."""

    first_id: int | None
    flags: list[dict[str, Any]]


_CLAIM = Claim.__table__
# built once: building a statement costs more than running it
_REPLAY = select(_CLAIM.c.id).where(_CLAIM.c.user_id == bindparam("user_id"), _CLAIM.c.client_ref == bindparam("client_ref"))
_INSERT = {name: insert(_CLAIM).on_conflict_do_nothing(index_elements=["user_id", "client_ref"]).returning(_CLAIM.c.id)
           for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))}
_OUTCOME = update(_CLAIM).where(_CLAIM.c.id == bindparam("claim_id"))  # SET: the parameters given
_IMAGES = ClaimImage.__table__.insert()
_EVENTS = ClaimEvent.__table__.insert()


def prior_claims(session: Session, *, user: MpUser, client_ref: str, amount_fen: int, at: dt.datetime) -> Prior:
    """What is read before a claim is filed: the user's claim of ``client_ref`` (a replay) and the
    ``same_amount`` flags of a new one (:func:`gc_admin.claims.checks.same_amount`; the OCR job
    recomputes every flag later, so a twin filed in between is named then)."""
    from gc_admin.claims.checks import same_amount

    first = session.connection().execute(_REPLAY, {"user_id": user.id, "client_ref": client_ref}).scalar()
    if first is not None:
        return Prior(first, [])
    return Prior(None, same_amount(session, user_id=user.id or 0, amount_fen=amount_fen, at=at, before_id=None))


def file_claim(session: Session, *, user: MpUser, form: ClaimForm, images: list[StoredImage],
               now: dt.datetime | None = None, prior: Prior | None = None) -> tuple[Any, bool]:
    """Record a claim with its images and reserve a coupon for it, in a few statements; ``(claim, created)``.

    ``form`` must have passed :func:`validate_form`; ``prior``: what :func:`prior_claims` found for it
    (read here if not given). Created: ``claim`` holds the row's values as written (what
    :func:`claim_view` shows; nothing is read back). The same ``client_ref`` again — even racing:
    ``INSERT ... ON CONFLICT (user_id, client_ref) DO NOTHING`` inserts nothing, waiting on PostgreSQL
    for the twin to commit — answers with the first :class:`Claim` and ``created=False``: the caller
    then discards what it stored for this try.

    The statements (prepared once, run on the unit of work's connection; on SQLite under the write lock
    taken first): the claim's ``INSERT ... RETURNING id`` with its ``same_amount`` flags (the duplicate
    flags known without OCR), the coupon taken by one conditional ``UPDATE ... RETURNING``
    (:func:`gc_admin.coupons.wallet.service.reserve_first`), the claim's coupon (or its refusal), its
    images, its history lines and the audit rows (``coupon.reserved``, ``claim.submitted``) each in one
    ``INSERT``.
    """
    now = now or utcnow()
    assert user.id is not None
    if not 1 <= len(images) <= 6:
        raise _bad("请上传 1–6 张支付凭证图片", "INVALID_IMAGES")
    if prior is None:
        prior = prior_claims(session, user=user, client_ref=form.client_ref, amount_fen=form.amount_paid_fen, at=now)
    lock_for_write(session)
    conn = session.connection()
    account = form.bank_card_no if form.payout_method == "bank" else form.alipay_account
    values: dict[str, Any] = dict(
        user_id=user.id, client_ref=form.client_ref, category=form.category, amount_paid_fen=form.amount_paid_fen,
        station=form.station, items=list(form.items), city=user.city or "", phone=user.phone or "",
        payout_method=form.payout_method, account_enc=crypto.encrypt(account, field="account"),
        account_masked=crypto.mask_account(account), real_name_enc=crypto.encrypt(form.real_name, field="real_name"),
        real_name_masked=crypto.mask_name(form.real_name), contact_phone=form.contact_phone, bank_name=form.bank_name,
        status="pending_review", reason=None, coupon_id=None, payout_fen=0, flags=prior.flags, created_at=now,
        updated_at=now)
    claim_id = conn.execute(_INSERT[dialect(session)], values).scalar_one_or_none()
    if claim_id is None:  # this client_ref was filed before (or by a twin that committed first)
        first = _by_client_ref(session, user.id, form.client_ref)
        assert first is not None
        return first, False
    actor = user_actor(user)
    reserved = wallet.reserve_first(session, user=user, ref=f"claim:{claim_id}", kind="cashback", category=form.category,
                                    actor=actor, now=now, write_audit=False)
    events = [dict(action="submit", from_status=None, to_status="pending_review", reason="")]
    if reserved is None:
        values.update(status="refused", reason=NO_COUPON)
        events.append(dict(action="refuse", from_status="pending_review", to_status="refused", reason=NO_COUPON))
    else:
        values.update(coupon_id=reserved.coupon_id, payout_fen=reserved.face_fen)
    conn.execute(_OUTCOME, {"claim_id": claim_id, "status": values["status"], "reason": values["reason"],
                            "coupon_id": values["coupon_id"], "payout_fen": values["payout_fen"]})
    conn.execute(_IMAGES, [
        dict(claim_id=claim_id, n=n, storage_key=img.storage_key, content_type=img.content_type, size_bytes=img.size_bytes,
             sha256=img.sha256, width=img.width, height=img.height, ocr_status="pending", created_at=now)
        for n, img in enumerate(images, start=1)])
    conn.execute(_EVENTS, [
        dict(claim_id=claim_id, actor_type=actor.type, actor_id=actor.id, actor_name=actor.name[:64], at=now, **e)
        for e in events])
    submitted = entry(actor=actor, action="claim.submitted", target_type="claim", target_id=claim_id, at=now,
                      summary=f"提交{CATEGORIES[form.category]}返现申请，实付 {form.amount_paid_fen} 分"
                              + ("" if reserved else f"；{NO_COUPON_LABEL}，自动不通过"),
                      after={"status": values["status"], "coupon_id": values["coupon_id"],
                             "amount_paid_fen": form.amount_paid_fen})
    record_many(session, ([reserved.audit] if reserved else []) + [submitted])
    return types.SimpleNamespace(**values, id=claim_id, payout_reference=None, paid_at=None), True


def submit_claim(session: Session, *, user: MpUser, form: ClaimForm, images: list[StoredImage],
                 now: dt.datetime | None = None) -> tuple[Claim, bool]:
    """:func:`file_claim`, answering with the :class:`Claim` row (read back) either way."""
    claim, created = file_claim(session, user=user, form=form, images=images, now=now)
    if created:
        claim = session.get(Claim, claim.id)
        assert claim is not None
    return claim, created


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


def claim_view(session: Session, claim: Any, *, n_images: int | None = None) -> dict[str, Any]:
    """The API's Claim shape (API.md) of a :class:`Claim` (or what :func:`file_claim` wrote): the account
    masked, never whole (``n_images`` if the caller knows)."""
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
