"""Claim processes that span storage and the database: submission (check → store → record), and the
payout (recorded, committed, then executed: see :mod:`gc_admin.claims.payout`).

Submission order, so that a refused upload leaves nothing behind (no claim row, no file):
1. the form is validated and every image is checked and re-encoded in memory (:mod:`.images`);
2. a replayed ``client_ref`` answers with the first claim before anything is stored;
3. the images are written to storage under fresh random keys;
4. one unit of work records the claim, its images and the coupon reservation;
5. if that unit fails — or a concurrent twin with the same ``client_ref`` won — the files of this try
   are deleted again.
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


def submit(*, user_id: int, form: service.ClaimForm, raw_images: list[bytes]) -> tuple[int, bool]:
    """File a claim for the user (see the module docstring); ``(claim_id, created)``."""
    with session_scope() as session:
        form = service.validate_form(session, form)
        user = session.get(MpUser, user_id)
        assert user is not None
        replay = service.find_replay(session, user=user, client_ref=form.client_ref)
        if replay is not None:
            return replay.id or 0, False
    checked = check_images(raw_images)
    storage = get_storage()
    now = utcnow()
    stored: list[service.StoredImage] = []
    try:
        for img in checked:
            key = _key(now, img.ext)
            storage.put(key, img.data, content_type=img.content_type)
            stored.append(service.StoredImage(key, img.content_type, len(img.data), img.sha256, img.phash, img.width,
                                              img.height))
        with session_scope() as session:
            user = session.get(MpUser, user_id)
            assert user is not None
            claim, created = service.submit_claim(session, user=user, form=form, images=stored, now=now)
            if created:
                from gc_admin.claims.checks import refresh_flags

                refresh_flags(session, claim=claim)
            claim_id = claim.id or 0
    except BaseException:
        _discard(stored)
        raise
    if not created:
        _discard(stored)
    return claim_id, created


def _discard(stored: list[service.StoredImage]) -> None:
    storage = get_storage()
    for img in stored:
        try:
            storage.delete(img.storage_key)
        except Exception:  # pragma: no cover - logged, a stray private file is no leak
            log.exception("could not delete stored receipt %s", img.storage_key)


def claim_view(claim_id: int) -> dict:
    with session_scope() as session:
        claim = session.get(Claim, claim_id)
        assert claim is not None
        return service.claim_view(session, claim)
