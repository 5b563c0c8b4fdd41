"""The bouquet catalogue over the admin API: who may change it, codes, prices, audit; and photo uploads that
are not what they claim (checked by content, size and pixels before anything is stored)."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from gc_admin.config import get_settings
from tests.support import CJK, api_error, rows, staff_headers
from tests.unit.orders.flowers.support import A, M, add_bouquet, jpeg, png


@pytest.fixture
def staff(api, make_staff, private_uploads):
    for username, role in (("boss", "admin"), ("mgr", "manager"), ("chen", "clerk"), ("liu", "service")):
        make_staff(username, role)
    return {u: staff_headers(api, u) for u in ("boss", "mgr", "chen", "liu")}


def _upload(api, headers, data: bytes, name: str = "photo.png", ctype: str = "image/png", code: str = "Rose-11"):
    return api.post(f"{A}/bouquets/{code}/image", files={"file": (name, data, ctype)}, headers=headers)


def _stored(private_uploads) -> list[str]:
    folder = private_uploads / "bouquets"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` × ``height`` (a decompression bomb's shape) over a tiny body."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


def test_managers_keep_the_catalogue_clerks_read_it(api, staff) -> None:
    made = api.post(f"{A}/bouquets", json={"code": "Rose-11", "name": " 红玫瑰  11 枝 ", "price_fen": 15_000},
                    headers=staff["mgr"])
    assert made.status_code == 201, made.text
    b = made.json()
    assert (b["code"], b["name"], b["active"], b["image_url"]) == ("Rose-11", "红玫瑰 11 枝", True, None)
    assert "可能与图片略有不同" in b["note"]
    # the code keeps its case and is unique without it
    api_error(api.post(f"{A}/bouquets", json={"code": "ROSE-11", "name": "x", "price_fen": 9_900},
                       headers=staff["boss"]), 409, "BOUQUET_EXISTS")
    for bad in ({"price_fen": 15_000.0}, {"price_fen": "15000"}, {"price_fen": 50}, {"price_fen": 10**6}):
        api_error(api.post(f"{A}/bouquets", json={"code": "x-1", "name": "x", **bad}, headers=staff["mgr"]),
                  422, "VALIDATION_ERROR")
    for who in ("chen", "liu"):
        api_error(api.post(f"{A}/bouquets", json={"code": "x-2", "name": "x", "price_fen": 9_900},
                           headers=staff[who]), 403, "FORBIDDEN")
    api_error(api.patch(f"{A}/bouquets/rose-11", json={"price_fen": 100}, headers=staff["chen"]), 403, "FORBIDDEN")
    api_error(api.get(f"{A}/bouquets", headers=staff["liu"]), 403, "FORBIDDEN")  # customer service: not its section

    changed = api.patch(f"{A}/bouquets/rose-11", json={"price_fen": 16_800, "sort": 3}, headers=staff["mgr"])
    assert changed.status_code == 200 and (changed.json()["price_fen"], changed.json()["sort"]) == (16_800, 3)
    listed = api.get(f"{A}/bouquets", headers=staff["chen"]).json()
    assert listed["total"] == 1 and listed["items"][0]["code"] == "Rose-11"
    api_error(api.patch(f"{A}/bouquets/none", json={"sort": 1}, headers=staff["mgr"]), 404, "BOUQUET_NOT_FOUND")
    audit = rows("SELECT action, summary FROM audit_log WHERE target_type = 'bouquet' ORDER BY id")
    assert [a for a, _ in audit] == ["bouquet.created", "bouquet.updated"]
    assert "价格" in audit[1][1] and "排序" in audit[1][1]


def test_a_photo_is_stored_privately_and_served_re_encoded(api, staff, private_uploads) -> None:
    api.post(f"{A}/bouquets", json={"code": "Rose-11", "name": "红玫瑰", "price_fen": 15_000}, headers=staff["mgr"])
    # a real PNG with an HTML page glued behind it (a polyglot): accepted as the picture it is, served without the rest
    data = png(2400, 1800) + b"<html><script>alert(1)</script></html>"
    up = _upload(api, staff["mgr"], data, name="rose.html", ctype="text/html")
    assert up.status_code == 200, up.text
    b = up.json()
    assert (b["image_width"], b["image_height"]) == (1600, 1200)  # shrunk to 1600 a side
    served = api.get(b["image_url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert b"<script" not in served.content and Image.open(io.BytesIO(served.content)).size == (1600, 1200)
    assert "immutable" in served.headers["cache-control"]
    (name,) = _stored(private_uploads)
    assert name.endswith(".png") and len(name) == 64 + 4  # named by content, outside any public folder
    # a JPEG with camera metadata: served without it
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    out = io.BytesIO()
    Image.new("RGB", (80, 60), (10, 200, 10)).save(out, format="JPEG", exif=exif.tobytes())
    up = _upload(api, staff["mgr"], out.getvalue(), name="x.jpg", ctype="image/jpeg")
    assert up.status_code == 200, up.text
    served = api.get(up.json()["image_url"])
    assert served.headers["content-type"] == "image/jpeg" and b"SecretCam" not in served.content
    assert up.json()["image_url"] != b["image_url"]  # a new photo is a new URL
    audit = rows("SELECT action FROM audit_log WHERE action = 'bouquet.image_set'")
    assert len(audit) == 2


@pytest.mark.parametrize("name, data, code", [
    ("fake.png", b"<html><body>not a picture</body></html>", "UPLOAD_NOT_IMAGE"),
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "UPLOAD_NOT_IMAGE"),
    ("anim.gif", b"GIF89a" + b"\x00" * 64, "UPLOAD_NOT_IMAGE"),
    ("empty.png", b"", "UPLOAD_NOT_IMAGE"),
    ("cut.png", png(200, 200, (1, 2, 3))[:120], "UPLOAD_BAD_IMAGE"),
    ("cut.jpg", jpeg(300, 300)[:200], "UPLOAD_BAD_IMAGE"),
    ("bomb.png", _png_header(60_000, 60_000), "UPLOAD_TOO_MANY_PIXELS"),
    ("wide.png", _png_header(2_000_000, 1), "UPLOAD_TOO_MANY_PIXELS"),
    ("zero.png", _png_header(0, 10), "UPLOAD_BAD_IMAGE"),
    ("garbage.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\xff" * 32, "UPLOAD_BAD_IMAGE"),
])
def test_a_file_that_is_not_a_sane_picture_is_refused_and_nothing_is_stored(api, staff, private_uploads, name, data,
                                                                            code) -> None:
    api.post(f"{A}/bouquets", json={"code": "Rose-11", "name": "红玫瑰", "price_fen": 15_000}, headers=staff["mgr"])
    message = api_error(_upload(api, staff["mgr"], data, name=name), 422, code)
    assert CJK.search(message)  # Chinese, for the person uploading
    assert _stored(private_uploads) == []
    b = api.get(f"{A}/bouquets", headers=staff["mgr"]).json()["items"][0]
    assert b["image_url"] is None
    api_error(api.get(f"{M}/bouquets/Rose-11/image"), 404, "BOUQUET_IMAGE_NOT_FOUND")


def test_a_photo_over_the_byte_limit_is_refused_unread(api, staff, private_uploads, monkeypatch) -> None:
    monkeypatch.setenv("GC_UPLOAD_IMAGE_MAX_MB", "1")
    get_settings.cache_clear()
    api.post(f"{A}/bouquets", json={"code": "Rose-11", "name": "红玫瑰", "price_fen": 15_000}, headers=staff["mgr"])
    big = png(16, 16) + b"\x00" * (1024 * 1024 + 1)
    api_error(_upload(api, staff["mgr"], big), 413, "UPLOAD_TOO_LARGE")
    assert _stored(private_uploads) == []
    assert _upload(api, staff["mgr"], png()).status_code == 200  # a normal photo still goes


def test_only_a_bouquet_s_own_stored_file_is_served(api, staff, private_uploads) -> None:
    add_bouquet(api, staff["mgr"])
    for path in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "Rose-11%00", "x" * 40):
        assert api.get(f"{M}/bouquets/{path}/image").status_code in (404, 422)
    assert api.get(f"{M}/bouquets/ROSE-11/image").status_code == 200
