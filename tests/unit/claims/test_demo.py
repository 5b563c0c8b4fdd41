"""The demo data: claims waiting for review with generated receipts — clean, mismatched, one duplicate —
and cashback products of all five categories on sale."""

from __future__ import annotations

from sqlmodel import select

from gc_admin.claims.models import Claim
from gc_admin.db import session_scope
from tests.support import rows
from tests.unit.claims.test_ocr import _run_job


def test_demo_claims_wait_for_review_with_their_flags(db, claims_env):
    from gc_admin import demo

    with session_scope() as s:
        demo.load(s)
    cats = {r[0] for r in rows("SELECT category FROM product WHERE kind = 'cashback' AND on_sale")}
    assert {"fuel", "ev_charging", "car_wash", "maintenance", "paint"} <= cats
    assert rows("SELECT count(*), min(status), max(status) FROM claim") == [(6, "pending_review", "pending_review")]
    assert _run_job()["done"] == 6
    with session_scope() as s:
        claims = list(s.exec(select(Claim).order_by(Claim.id)).all())
        flags = [{f.get("code") or f.get("by") for f in c.flags} for c in claims]
        first = claims[0].id
        dup = claims[5]
    assert flags[:3] == [set(), set(), set()]
    assert "amount" in flags[3] and "merchant_category" in flags[4]
    assert {(f["by"], f["claim_id"]) for f in dup.flags if f["kind"] == "duplicate"} >= {("image", first),
                                                                                       ("transaction_no", first)}
