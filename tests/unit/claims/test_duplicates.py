"""Duplicate receipts are flagged with the claim they were used in: by OCR'd transaction number (per
category), by perceptual hash (re-compressed or cropped still matches), by same user + amount + window."""

from __future__ import annotations

import io

from PIL import Image

from gc_admin.claims.models import Claim
from gc_admin.db import session_scope
from tests.support import rows, sms_user
from tests.unit.claims.support import give_coupons, post_claim, wechat_receipt
from tests.unit.claims.test_ocr import _run_job


def _flags(claim_id: int) -> list[dict]:
    with session_scope() as s:
        return [f for f in s.get(Claim, claim_id).flags if f["kind"] == "duplicate"]


def _recompressed_and_cropped(png: bytes) -> bytes:
    img = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = img.size
    out = io.BytesIO()
    img.crop((int(w * 0.04), int(h * 0.05), int(w * 0.97), int(h * 0.93))).resize((600, 690)).save(out, "JPEG",
                                                                                                 quality=55)
    return out.getvalue()


def _two_users(api):
    give_coupons("13812345678")
    give_coupons("13900000002")
    return sms_user(api, "13812345678"), sms_user(api, "13900000002")


def test_a_recompressed_cropped_copy_of_a_used_receipt_is_flagged_naming_the_first_claim(api, claims_env):
    a, b = _two_users(api)
    receipt = wechat_receipt()
    first = post_claim(api, a, images=[receipt]).json()
    second = post_claim(api, b, images=[_recompressed_and_cropped(receipt)], client_ref="b1").json()
    # the perceptual hash comes with the OCR job (one decode per image), never on the request path
    assert rows("SELECT phash FROM claim_image") == [(None,), (None,)]
    assert _run_job() == {"done": 2, "failed": 0}
    assert {(f["by"], f["claim_id"]) for f in _flags(second["id"])} == {("image", first["id"]),
                                                                      ("transaction_no", first["id"])}
    assert any("#%d" % first["id"] in f["message"] for f in _flags(second["id"]) if f["by"] == "image")
    assert _flags(first["id"]) == []  # the first use is not the duplicate


def test_a_later_copy_read_before_the_first_use_is_still_flagged(api, claims_env):
    """Two workers, a retry: the later claim's image can be read first; reading the first use then
    refreshes the later claim, which names it."""
    from gc_admin.claims import ocr

    a, b = _two_users(api)
    receipt = wechat_receipt()
    first = post_claim(api, a, images=[receipt]).json()
    second = post_claim(api, b, images=[_recompressed_and_cropped(receipt)], client_ref="b1").json()
    (later_image,) = [r[0] for r in rows("SELECT id FROM claim_image WHERE claim_id = :c", c=second["id"])]
    assert ocr.process_images([later_image]) == {"done": 1, "failed": 0}
    assert _flags(second["id"]) == []  # the first use is not hashed yet
    assert ocr.process_pending() == {"done": 1, "failed": 0}
    assert {(f["by"], f["claim_id"]) for f in _flags(second["id"])} == {("image", first["id"]),
                                                                      ("transaction_no", first["id"])}
    assert _flags(first["id"]) == []


def test_a_different_receipt_of_the_same_layout_is_no_duplicate(api, claims_env):
    a, b = _two_users(api)
    post_claim(api, a, images=[wechat_receipt()])
    other = wechat_receipt(merchant="中国石油桂林七星加油站", amount="350.00", paid_at="2026-11-20 08:01:02",
                           txn="4200009999202611200000000001", mch_no="GL20261120080102")
    second = post_claim(api, b, images=[other], amount_paid_fen=35000, client_ref="b1").json()
    _run_job()
    assert _flags(second["id"]) == []


def test_the_same_transaction_number_in_another_category_is_not_a_duplicate(api, claims_env):
    a, b = _two_users(api)
    give_coupons("13900000002", "car_wash")
    post_claim(api, a, images=[wechat_receipt()])
    # a different-looking receipt carrying the same number, filed as a car wash
    same_no = wechat_receipt(merchant="南宁车之美洗车店", amount="35.00", paid_at="2026-11-21 09:00:00",
                             seed_text="洗车 精洗 套餐 一次 另加 轮毂 清洗 打蜡")
    wash = post_claim(api, b, images=[same_no], category="car_wash", station="南宁车之美洗车店", amount_paid_fen=3500,
                      client_ref="w1").json()
    _run_job()
    assert [f for f in _flags(wash["id"]) if f["by"] == "transaction_no"] == []


def test_same_user_same_amount_within_the_window(api, claims_env):
    give_coupons("13812345678", n=2)
    me = sms_user(api, "13812345678")
    first = post_claim(api, me, client_ref="x1").json()
    other = wechat_receipt(merchant="中国石油桂林七星加油站", amount="128.00", paid_at="2026-11-29 18:00:00",
                           txn="4200007777202611290000000002", mch_no="GL2")
    second = post_claim(api, me, images=[other], client_ref="x2").json()
    assert [(f["by"], f["claim_id"]) for f in _flags(second["id"])] == [("same_amount", first["id"])]


def test_only_the_latest_claims_of_the_same_amount_are_named(api, claims_env):
    from gc_admin.claims.checks import SAME_AMOUNT_NAMED

    me = sms_user(api, "13812345678")
    ids = [post_claim(api, me, client_ref=f"x{i}").json()["id"] for i in range(SAME_AMOUNT_NAMED + 2)]
    latest = ids[-1 - SAME_AMOUNT_NAMED:-1]
    assert [f["claim_id"] for f in _flags(ids[-1])] == latest
    assert _run_job()["done"] == len(ids)  # the OCR job's refresh names the same ones
    assert [f["claim_id"] for f in _flags(ids[-1]) if f["by"] == "same_amount"] == latest
