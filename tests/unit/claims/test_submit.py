"""Filing a claim over the API (POST /mp/claims multipart): validation, images checked by content and
stored privately, the coupon reserved, replays, refusals that store nothing."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from PIL import Image

from tests.support import api_error, rows, scalar, sms_user
from tests.unit.claims.conftest import stored_files
from tests.unit.claims.support import CARD, give_coupons, gps_exif, post_claim, wechat_receipt

PHONE = "13812345678"


@pytest.fixture
def user(api, claims_env):
    give_coupons(PHONE, "fuel")
    return sms_user(api, PHONE)


def test_a_fuel_claim_reserves_the_coupon_and_stores_the_receipt_privately(api, user, claims_env):
    resp = post_claim(api, user)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "pending_review" and body["category"] == "fuel" and body["amount_paid_fen"] == 12800
    assert body["payout"] == {"method": "alipay", "account_masked": "138****5678", "amount_fen": 5000, "reference": None}
    coupon_id = body["coupon_id"]
    assert rows("SELECT status, reserved_for FROM coupon WHERE id = :i", i=coupon_id) == [("reserved", f"claim:{body['id']}")]
    files = stored_files(claims_env)
    assert len(files) == 1 and files[0].suffix == ".png"
    assert "assets" not in str(files[0]) and "13812345678" not in files[0].read_bytes().decode("latin-1")
    # the account is stored encrypted, not as text
    enc = scalar("SELECT account_enc FROM claim WHERE id = :i", i=body["id"])
    assert enc.startswith("v1:") and PHONE not in enc
    assert api.get(f"/api/v1/mp/claims/{body['id']}", headers=user).json()["id"] == body["id"]
    assert [c["id"] for c in api.get("/api/v1/mp/claims", headers=user).json()["items"]] == [body["id"]]


@pytest.mark.usefixtures("any_db")  # its statements are dialect-specific (ON CONFLICT, UPDATE ... RETURNING)
def test_filing_writes_its_history_and_audit_rows_and_answers_what_a_read_back_shows(api, user):
    body = post_claim(api, user).json()
    cid, coupon_id = body["id"], body["coupon_id"]
    assert api.get(f"/api/v1/mp/claims/{cid}", headers=user).json() == body  # the answer is built from what was written
    assert rows("SELECT action, from_status, to_status FROM claim_event WHERE claim_id = :c", c=cid) == [
        ("submit", None, "pending_review")]
    audit = rows("SELECT action, target_type, target_id, actor_type, after FROM audit_log "
                 "WHERE action IN ('coupon.reserved', 'claim.submitted') ORDER BY id")
    assert [(a, t, i, who) for a, t, i, who, _ in audit] == [("coupon.reserved", "coupon", str(coupon_id), "user"),
                                                           ("claim.submitted", "claim", str(cid), "user")]
    assert f'"ref": "claim:{cid}"' in audit[0][4] and f'"coupon_id": {coupon_id}' in audit[1][4]
    # a coupon that waited for the phone now belongs to the user who claimed with it
    assert scalar("SELECT user_id FROM coupon WHERE id = :i", i=coupon_id) == scalar("SELECT user_id FROM claim")
    assert rows("SELECT ocr_status, phash FROM claim_image WHERE claim_id = :c", c=cid) == [("pending", None)]


@pytest.mark.usefixtures("any_db")  # its statements are dialect-specific (ON CONFLICT, UPDATE ... RETURNING)
def test_a_refused_claim_has_its_refusal_in_history_and_audit_and_takes_no_coupon(api, user):
    body = post_claim(api, user, category="car_wash", station="南宁车之美洗车店", client_ref="w1").json()
    assert body["status"] == "refused"
    assert api.get(f"/api/v1/mp/claims/{body['id']}", headers=user).json() == body
    assert rows("SELECT action, to_status, reason FROM claim_event WHERE claim_id = :c ORDER BY id", c=body["id"]) == [
        ("submit", "pending_review", ""), ("refuse", "refused", "no valid coupon")]
    assert rows("SELECT action FROM audit_log WHERE action IN ('coupon.reserved', 'claim.submitted')") == [
        ("claim.submitted",)]
    assert rows("SELECT status, reserved_for FROM coupon") == [("available", None)]


@pytest.mark.usefixtures("any_db")  # its statements are dialect-specific (ON CONFLICT, UPDATE ... RETURNING)
def test_the_earliest_expiring_coupon_of_the_category_is_the_one_reserved(api, claims_env):
    from gc_admin.coupons.models import Coupon
    from gc_admin.db import session_scope

    ids = give_coupons(PHONE, "fuel", n=3)
    give_coupons(PHONE, "car_wash")
    with session_scope() as s:  # the first is used; the last one issued expires first
        s.get(Coupon, ids[0]).status = "used"
        s.get(Coupon, ids[1]).expires_at += dt.timedelta(days=1)
    me = sms_user(api, PHONE)
    first = post_claim(api, me, client_ref="a").json()
    second = post_claim(api, me, client_ref="b", amount_paid_fen=5000).json()
    third = post_claim(api, me, client_ref="c", amount_paid_fen=6000).json()
    assert (first["coupon_id"], second["coupon_id"], third["status"]) == (ids[2], ids[1], "refused")


def test_the_same_client_ref_returns_the_first_claim_and_stores_nothing_more(api, user, claims_env):
    first = post_claim(api, user, client_ref="same")
    again = post_claim(api, user, client_ref="same", amount_paid_fen=999)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert scalar("SELECT count(*) FROM claim") == 1 and len(stored_files(claims_env)) == 1


def test_no_coupon_of_the_category_records_a_refused_claim(api, user):
    resp = post_claim(api, user, category="car_wash", station="南宁车之美洗车店", client_ref="w1")
    assert resp.status_code == 201
    assert resp.json()["status"] == "refused" and resp.json()["reason"] == "no valid coupon"
    assert resp.json()["coupon_id"] is None
    # the fuel coupon was not touched
    assert scalar("SELECT status FROM coupon") == "available"


def test_a_rejected_coupon_elsewhere_or_another_users_claim_is_not_visible(api, user, claims_env):
    mine = post_claim(api, user).json()
    other = sms_user(api, "13900000002")
    api_error(api.get(f"/api/v1/mp/claims/{mine['id']}", headers=other), 404, "CLAIM_NOT_FOUND")
    assert api.get("/api/v1/mp/claims", headers=other).json()["items"] == []


def test_exif_is_stripped_and_orientation_kept(api, user, claims_env):
    jpeg = wechat_receipt(fmt="JPEG", exif=gps_exif())
    assert Image.open(io.BytesIO(jpeg)).getexif()  # the upload carries GPS and the phone's make
    resp = post_claim(api, user, images=[jpeg])
    assert resp.status_code == 201
    (stored,) = stored_files(claims_env)
    img = Image.open(stored)
    assert img.format == "JPEG" and not img.getexif() and "exif" not in img.info
    assert b"TestPhoneMaker" not in stored.read_bytes()


def test_bank_payout_needs_a_card_that_passes_luhn(api, user, claims_env):
    bad = CARD[:-1] + str((int(CARD[-1]) + 1) % 10)
    msg = api_error(post_claim(api, user, payout_method="bank", real_name="张三", bank_card_no=bad, bank_name="工商银行"),
                    422, "INVALID_BANK_CARD")
    assert "银行卡号" in msg
    ok = post_claim(api, user, payout_method="bank", real_name="张三", bank_card_no=CARD, bank_name="工商银行")
    assert ok.status_code == 201 and ok.json()["payout"]["account_masked"] == f"{CARD[:4]}****{CARD[-4:]}"
    assert CARD not in str(rows("SELECT * FROM claim"))


def test_form_rules(api, user, claims_env):
    api_error(post_claim(api, user, category="taxi"), 422, "INVALID_CATEGORY")
    api_error(post_claim(api, user, category="ev_charging", station="某不知名充电"), 422, "INVALID_OPERATOR")
    api_error(post_claim(api, user, category="maintenance", station="南宁途虎养车", items='["oil", "wings"]'), 422,
              "INVALID_ITEMS")
    api_error(post_claim(api, user, alipay_account="not an account"), 422, "INVALID_ALIPAY_ACCOUNT")
    api_error(post_claim(api, user, images=[wechat_receipt()] * 7), 422, "INVALID_IMAGES")
    assert scalar("SELECT count(*) FROM claim") == 0 and stored_files(claims_env) == []


def test_options_list_the_ev_operators(api, user):
    body = api.get("/api/v1/mp/claims/options", headers=user).json()
    assert body["ev_operators"] == ["小桔充电", "云快充", "特来电", "南方电网", "天天快充", "驴充充"]
    assert [c["code"] for c in body["categories"]] == ["fuel", "ev_charging", "car_wash", "maintenance", "paint"]


def _bomb() -> bytes:
    out = io.BytesIO()
    Image.new("1", (12000, 12000)).save(out, format="PNG")  # 144 MP that compress to ~20 KB
    return out.getvalue()


def _bad_crc(png: bytes) -> bytes:
    data = bytearray(png)
    data[len(data) // 2] ^= 0xFF  # a flipped byte inside the IDAT: its chunk's CRC no longer matches
    return bytes(data)


@pytest.mark.parametrize("case", ["not_image", "truncated", "truncated_jpeg", "truncated_webp", "bad_crc", "oversized",
                                  "bomb", "tiny", "broken_heic", "mp4_video"])
def test_bad_uploads_are_refused_and_nothing_is_stored(api, user, claims_env, monkeypatch, case):
    good = wechat_receipt()
    jpeg, webp = wechat_receipt(fmt="JPEG"), wechat_receipt(fmt="WEBP")
    data, code, status = {
        "not_image": (b"%PDF-1.7 not a picture" * 50, "IMAGE_TYPE", 422),
        "truncated": (good[: len(good) // 2], "IMAGE_CORRUPT", 422),
        "truncated_jpeg": (jpeg[: len(jpeg) * 2 // 3], "IMAGE_CORRUPT", 422),
        "truncated_webp": (webp[: len(webp) - 100], "IMAGE_CORRUPT", 422),
        "bad_crc": (_bad_crc(good), "IMAGE_CORRUPT", 422),
        "oversized": (good + b"\0" * (9 * 1024 * 1024), "IMAGE_TOO_LARGE", 413),
        "bomb": (_bomb(), "IMAGE_TOO_MANY_PIXELS", 422),
        "tiny": (_tiny(), "IMAGE_TOO_SMALL", 422),
        "broken_heic": (b"\0\0\0\x18ftypheic" + b"\0" * 4000, "IMAGE_CORRUPT", 422),  # HEIC by content, not decodable
        "mp4_video": (b"\0\0\0\x18ftypisom" + b"\0" * 4000, "IMAGE_TYPE", 422),
    }[case]
    assert len(_bomb()) < 100_000
    resp = post_claim(api, user, images=[good, data])  # the bad one second: the good one must not stay behind
    msg = api_error(resp, status, code)
    assert "第 2 张" in msg
    assert scalar("SELECT count(*) FROM claim") == 0 and scalar("SELECT count(*) FROM claim_image") == 0
    assert stored_files(claims_env) == []
    assert scalar("SELECT status FROM coupon") == "available"


def _tiny() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (10, 10), "white").save(out, format="PNG")
    return out.getvalue()


def _heic(png: bytes, *, exif: bytes | None = None) -> bytes:
    import pillow_heif

    heif = pillow_heif.from_pillow(Image.open(io.BytesIO(png)).convert("RGB"))
    out = io.BytesIO()
    heif.save(out, quality=92, exif=exif)
    return out.getvalue()


def test_a_heic_photo_is_accepted_by_content_and_stored_as_jpeg_without_exif(api, user, claims_env):
    heic = _heic(wechat_receipt(), exif=gps_exif())
    assert heic[4:12] == b"ftypheic" and b"TestPhoneMaker" in heic  # a phone's photo, location and all
    resp = post_claim(api, user, images=[heic], names=["IMG_0001.HEIC"])
    assert resp.status_code == 201, resp.text
    (stored,) = stored_files(claims_env)
    assert stored.suffix == ".jpg"
    data = stored.read_bytes()
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG" and img.size == (720, 900) and not img.getexif() and b"TestPhoneMaker" not in data
    assert rows("SELECT content_type, width, height FROM claim_image") == [("image/jpeg", 720, 900)]
    from gc_admin.claims.ocr import read_receipt  # and it still reads as the receipt it is

    r = read_receipt(data)
    assert r.amount_fen.value == 12800 and r.transaction_no.value == "4200002345202611281234567890"


def test_metadata_is_stripped_losslessly_from_png_and_webp(api, user, claims_env):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "TestPhoneMaker GPS 22.49N")
    img = Image.open(io.BytesIO(wechat_receipt()))
    png, webp = io.BytesIO(), io.BytesIO()
    img.save(png, format="PNG", pnginfo=info, exif=gps_exif())
    img.save(webp, format="WEBP", exif=gps_exif(), xmp=b"<x:xmpmeta>TestPhoneMaker</x:xmpmeta>")
    for n, data in enumerate((png.getvalue() + b"PK\x03\x04 a zip appended", webp.getvalue()), start=1):
        assert b"TestPhoneMaker" in data
        resp = post_claim(api, user, images=[data], client_ref=f"m{n}")  # the second: no coupon left, still stored
        assert resp.status_code == 201, resp.text
    png_file, webp_file = sorted(stored_files(claims_env), key=lambda p: p.suffix)
    for path, upload in ((png_file, png), (webp_file, webp)):
        data = path.read_bytes()
        stored = Image.open(path)
        assert b"TestPhoneMaker" not in data and not stored.getexif() and "exif" not in stored.info
        assert "xmp" not in stored.info and "Comment" not in stored.info
        sent = Image.open(io.BytesIO(upload.getvalue()))
        assert stored.convert("RGB").tobytes() == sent.convert("RGB").tobytes()  # the pixels untouched
    assert not png_file.read_bytes().endswith(b"appended")  # what followed IEND is gone
    assert Image.open(webp_file).format == "WEBP"


def test_a_turned_phone_photo_is_stored_upright_without_exif(api, user, claims_env):
    ex = Image.Exif()
    ex[0x0112] = 6  # rotate 90° clockwise to view
    ex[0x010F] = "TestPhoneMaker"
    sideways = Image.open(io.BytesIO(wechat_receipt())).convert("RGB").rotate(90, expand=True)  # 900 x 720 as shot
    out = io.BytesIO()
    sideways.save(out, format="JPEG", quality=92, exif=ex.tobytes())
    assert post_claim(api, user, images=[out.getvalue()]).status_code == 201
    (stored,) = stored_files(claims_env)
    img = Image.open(stored)
    assert img.size == (720, 900) and not img.getexif() and b"TestPhoneMaker" not in stored.read_bytes()
