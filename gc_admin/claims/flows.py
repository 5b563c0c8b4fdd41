"""Claim processes that span storage and the database: submission (check → store → record), and the
payout (recorded, committed, then executed: see :mod:`gc_admin.claims.payout`).

Submission order, so that a refused upload leaves nothing behind (no claim row, no file), all in one
unit of work:
1. the form is validated and a replayed ``client_ref`` answers with the first claim before anything
   is checked or stored (that read also finds the same-amount claims the new one is flagged with);
2. every image is checked and its metadata stripped in memory (:mod:`.images`: cheap checks only; the
   perceptual hash and the OCR are the queue's);
3. the images are written to storage under fresh random keys;
4. the claim (with the flags known before OCR), its images and the coupon reservation are recorded in a
   few set-based statements (:func:`gc_admin.claims.service.file_claim`), the ``claims.ocr`` task is
   queued (committed with the claim; the receipts are read by the queue, never in the request), the
   answer is the claim's view built from what was written (nothing is read back), and the unit commits;
5. if that fails — or a concurrent twin with the same ``client_ref`` won — the files of this try are
   deleted again.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from gc_admin.claims import images as checks
from gc_admin.claims import service
from gc_admin.claims.models import Claim
from gc_admin.claims.storage import get_storage
from gc_admin.config import get_settings
from gc_admin.core import tasks
from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.core.errors import InvalidInput
from gc_admin.db import session_scope
from gc_admin.users.models import MpUser

log = logging.getLogger(__name__)


def check_images(raw: list[bytes]) -> list[checks.CheckedImage]:
    """Every upload checked (the first refusal raises); nothing stored yet."""
    if not 1 <= len(raw) <= 6:
        raise InvalidInput("请上传 1–6 张支付凭证图片", code="INVALID_IMAGES")
    c = get_settings().claims
    return [checks.check_image(data, n=n, max_bytes=c.image_max_bytes, max_pixels=c.image_max_pixels)
            for n, data in enumerate(raw, start=1)]


def _key(now: dt.datetime, ext: str) -> str:
    local = now.astimezone(SHANGHAI)
    return f"{local:%Y/%m}/{secrets.token_hex(16)}.{ext}"


def submit(*, user: MpUser, form: service.ClaimForm, raw_images: list[bytes]) -> tuple[dict, bool]:
    """File a claim for the signed-in ``user`` (see the module docstring); ``(the claim's API view, created)``.
    One unit of work: its reads (the replay check), then the image checks and the files, then its writes."""
    assert user.id is not None
    now = utcnow()
    stored: list[service.StoredImage] = []
    with session_scope() as session:
        form = service.validate_form(session, form)
        prior = service.prior_claims(session, user=user, client_ref=form.client_ref, amount_fen=form.amount_paid_fen,
                                     at=now)
        if prior.first_id is not None:
            replay = session.get(Claim, prior.first_id)
            return service.claim_view(session, replay), False
        checked = check_images(raw_images)
        storage = get_storage()
        try:
            for img in checked:
                key = _key(now, img.ext)
                storage.put(key, img.data, content_type=img.content_type)
                stored.append(service.StoredImage(key, img.content_type, len(img.data), img.sha256, img.width,
                                                  img.height))
            claim, created = service.file_claim(session, user=user, form=form, images=stored, now=now, prior=prior)
            if created:
                # read the receipts off the request path: queued with the claim (one waiting job reads them all)
                tasks.defer("claims.ocr", key="claims.ocr", session=session)
            view = service.claim_view(session, claim, n_images=len(stored) if created else None)
            session.commit()  # here, so that a failed commit removes the files too
        except BaseException:
            _discard(stored)
            raise
    if not created:
        _discard(stored)
    return view, created


def _discard(stored: list[service.StoredImage]) -> None:
    storage = get_storage()
    for img in stored:
        try:
            storage.delete(img.storage_key)
        except Exception:  # pragma: no cover - logged, a stray private file is no leak
            log.exception("could not delete stored receipt %s", img.storage_key)


# --- staff decisions that end in a payout --------------------------------------------------------

def alipay_enabled() -> bool:
    from gc_admin.integrations.alipay.setup import configured

    return configured()


def approve(*, claim_id: int, principal, note: str = "") -> dict:
    """Approve (one unit of work, committed), then — for an Alipay claim that needs no second approver —
    pay it at once (:func:`gc_admin.claims.payout.pay`, its own units). The answer says what happened."""
    from gc_admin.claims import payout, review

    with session_scope() as session:
        decision = review.approve(session, claim_id=claim_id, principal=principal, note=note)
        claim = session.get(Claim, claim_id)
        assert claim is not None
        auto = decision.status == "approved" and claim.payout_method == "alipay" and not claim.four_eyes
    out = {"claim_id": claim_id, "status": decision.status, "awaiting_second": decision.awaiting_second, "payout": None}
    if auto and alipay_enabled():
        result = payout.pay(claim_id=claim_id, principal=principal)
        out.update(status=result.status, payout={"status": result.payout_status, "out_biz_no": result.out_biz_no,
                                                  "message": result.message})
    return out


def payout_now(*, claim_id: int, principal, reference: str | None = None) -> dict:
    """A manual transfer's reference recorded, or the Alipay payout executed / resumed."""
    from gc_admin.claims import payout

    if reference:
        with session_scope() as session:
            p = payout.pay_manual(session, claim_id=claim_id, principal=principal, reference=reference)
            return {"claim_id": claim_id, "status": "paid",
                    "payout": {"status": p.status, "out_biz_no": p.out_biz_no, "reference": p.reference,
                               "message": "已登记人工转账"}}
    if not alipay_enabled():
        raise InvalidInput("未配置支付宝打款，请人工转账后填写转账流水号", code="ALIPAY_NOT_CONFIGURED")
    result = payout.pay(claim_id=claim_id, principal=principal)
    return {"claim_id": claim_id, "status": result.status,
            "payout": {"status": result.payout_status, "out_biz_no": result.out_biz_no, "message": result.message}}


def bulk_approve(*, claim_ids: list[int], principal) -> list[dict]:
    """Approve several claims, each in its own units (one failure does not stop the rest); claims with
    flags are refused here (``CLAIM_FLAGGED``): a flagged claim is looked at one by one; so are claims
    whose receipts the OCR job has not read yet (``CLAIM_CHECKS_PENDING``): their duplicate and mismatch
    flags are not known."""
    from gc_admin.claims import review
    from gc_admin.claims.checks import checks_pending
    from gc_admin.core.errors import Conflict, DomainError

    results = []
    for claim_id in dict.fromkeys(claim_ids):
        try:
            with session_scope() as session:
                claim = review.get_claim(session, claim_id=claim_id)
                if claim.flags:
                    raise Conflict("该申请有异常提示，请逐条审核", code="CLAIM_FLAGGED")
                if checks_pending(session, claim_id):
                    raise Conflict("该申请的凭证尚在识别中（查重、比对未完成），请稍后再批量通过或逐条审核",
                                   code="CLAIM_CHECKS_PENDING")
            results.append({**approve(claim_id=claim_id, principal=principal), "ok": True})
        except DomainError as exc:
            results.append({"claim_id": claim_id, "ok": False, "error": exc.to_dict()})
    return results
