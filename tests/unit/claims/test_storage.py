"""The receipt storage: the local directory (default) and an S3-compatible bucket, the latter against
moto's real HTTP server (server mode) on a free port — boto3 speaks S3 over the wire to it."""

from __future__ import annotations

import socket

import pytest

from gc_admin.claims.storage import LocalStorage, make_storage
from tests.support import scalar, sms_user
from tests.unit.claims.support import give_coupons, post_claim


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3(monkeypatch):
    from moto.server import ThreadedMotoServer

    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_local_storage_refuses_keys_that_leave_its_folder(tmp_path):
    st = LocalStorage(tmp_path / "root")
    st.put("2026/12/a.png", b"x", content_type="image/png")
    assert st.get("2026/12/a.png") == b"x" and st.exists("2026/12/a.png")
    for bad in ("../evil.png", "/etc/passwd", "a//b", "2026/../../x"):
        with pytest.raises(ValueError):
            st.put(bad, b"x", content_type="image/png")
    st.delete("2026/12/a.png")
    assert not st.exists("2026/12/a.png")


def test_s3_bucket_round_trip(s3):
    import boto3

    boto3.client("s3", endpoint_url=s3).create_bucket(Bucket="receipts")
    st = make_storage("s3://receipts/claims", s3_endpoint=s3)
    st.put("2026/12/k.png", b"\x89PNG data", content_type="image/png")
    assert st.exists("2026/12/k.png") and st.get("2026/12/k.png") == b"\x89PNG data"
    head = boto3.client("s3", endpoint_url=s3).head_object(Bucket="receipts", Key="claims/2026/12/k.png")
    assert head["ContentType"] == "image/png"
    st.delete("2026/12/k.png")
    assert not st.exists("2026/12/k.png")


def test_a_claim_filed_with_s3_storage_lands_in_the_bucket(api, claims_env, s3, monkeypatch):
    import boto3

    from gc_admin.config import get_settings

    boto3.client("s3", endpoint_url=s3).create_bucket(Bucket="gc-claims")
    monkeypatch.setenv("GC_CLAIMS_STORAGE", "s3://gc-claims/receipts")
    monkeypatch.setenv("GC_CLAIMS_S3_ENDPOINT", s3)
    get_settings.cache_clear()
    give_coupons("13812345678")
    user = sms_user(api, "13812345678")
    resp = post_claim(api, user)
    assert resp.status_code == 201, resp.text
    key = scalar("SELECT storage_key FROM claim_image")
    objs = boto3.client("s3", endpoint_url=s3).list_objects_v2(Bucket="gc-claims")["Contents"]
    assert [o["Key"] for o in objs] == [f"receipts/{key}"]
    bad = post_claim(api, user, images=[b"GIF89a nope" * 20], client_ref="x2")
    assert bad.status_code == 422
    assert len(boto3.client("s3", endpoint_url=s3).list_objects_v2(Bucket="gc-claims")["Contents"]) == 1
