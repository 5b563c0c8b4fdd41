"""Receipt reading: rendered WeChat Pay / Alipay receipts and a station slip read back (rapidocr, offline),
the job that reads them off the request path, and the mismatch flags beside the claim's figures."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap

import pytest

from gc_admin.claims.ocr import read_receipt
from gc_admin.core.clock import SHANGHAI, utcnow
from tests.support import rows, scalar, sms_user
from tests.unit.claims.support import alipay_receipt, give_coupons, post_claim, station_slip, wechat_receipt


def _shanghai(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def test_the_engine_loads_and_reads_with_the_network_blocked(tmp_path):
    """In a fresh interpreter whose sockets refuse to connect or resolve: the models come from the wheel."""
    (tmp_path / "r.png").write_bytes(wechat_receipt())
    code = textwrap.dedent(f"""
        import socket
        def refuse(*a, **k):
            raise OSError("network blocked by the test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from gc_admin.claims.ocr import read_receipt
        r = read_receipt(open({str(tmp_path / 'r.png')!r}, 'rb').read())
        print(r.amount_fen.value, r.transaction_no.value)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["12800", "4200002345202611281234567890"]


def test_a_wechat_pay_receipt_reads_back():
    r = read_receipt(wechat_receipt(amount="128.00", paid_at="2026-11-28 10:15:32"))
    assert r.source == "wechat"
    assert r.amount_fen.value == 12800 and r.amount_fen.confidence > 0.8
    assert r.paid_at.value == _shanghai("2026-11-28 10:15:32")
    assert "加油站" in r.merchant.value and r.merchant.confidence > 0.8
    assert r.transaction_no.value == "4200002345202611281234567890"


@pytest.mark.parametrize(("receipt", "source", "amount_fen", "paid_at", "merchant", "whole_merchant", "transaction_no"), [
    (alipay_receipt, "alipay", 6650, "2026-11-27 21:03:11", "特来电新能源南宁站", True, "2026112722001412345678901234"),
    (station_slip, "slip", 30000, "2026-11-26 08:40:00", "加油站", False, "SN20261126084000123"),
], ids=["alipay", "station-slip"])
def test_a_receipt_reads_back(receipt, source, amount_fen, paid_at, merchant, whole_merchant, transaction_no):
    """An Alipay receipt and a station slip: every field read (the slip's merchant name contains 加油站)."""
    r = read_receipt(receipt())
    assert r.source == source
    assert r.amount_fen.value == amount_fen
    assert r.paid_at.value == _shanghai(paid_at)
    assert (r.merchant.value == merchant) if whole_merchant else (merchant in r.merchant.value)
    assert r.transaction_no.value == transaction_no


def _run_job():
    from gc_admin import jobs

    (job,) = [j for j in jobs.JOBS if j.name == "claims.ocr"]
    return jobs.run_once(job)


def test_the_job_reads_receipts_after_submission_and_flags_mismatches(api, claims_env):
    give_coupons("13812345678")
    me = sms_user(api, "13812345678")
    future = (utcnow() + dt.timedelta(days=1)).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    receipt = wechat_receipt(merchant="南宁老友粉餐饮店", amount="128.00", paid_at=future)
    claim = post_claim(api, me, amount_paid_fen=20000, images=[receipt]).json()
    # reviewable before OCR: the claim exists, its image waits
    assert claim["status"] == "pending_review"
    assert scalar("SELECT ocr_status FROM claim_image") == "pending"
    assert _run_job() == {"done": 1, "failed": 0}
    assert _run_job() == {"done": 0, "failed": 0}  # read once
    (img,) = rows("SELECT ocr_status, ocr_amount_fen, ocr_merchant, ocr_txn_no, ocr_amount_conf FROM claim_image")
    assert img[:4] == ("done", 12800, "南宁老友粉餐饮店", "4200002345202611281234567890") and img[4] > 0.8
    from gc_admin.claims.models import Claim
    from gc_admin.db import session_scope

    with session_scope() as s:
        flags = s.get(Claim, claim["id"]).flags
    codes = {f["code"] for f in flags if f["kind"] == "mismatch"}
    assert codes == {"amount", "paid_after_claim", "merchant_category"}
    amount = next(f for f in flags if f.get("code") == "amount")
    assert (amount["claimed_fen"], amount["receipt_fen"]) == (20000, 12800) and "¥200.00" in amount["message"]


def test_a_clean_receipt_raises_no_flag(api, claims_env):
    give_coupons("13812345678")
    me = sms_user(api, "13812345678")
    claim = post_claim(api, me, amount_paid_fen=12800).json()
    _run_job()
    from gc_admin.claims.models import Claim
    from gc_admin.db import session_scope

    with session_scope() as s:
        assert s.get(Claim, claim["id"]).flags == []


def test_a_broken_stored_file_fails_its_image_and_not_the_queue(api, claims_env):
    give_coupons("13812345678", n=2)
    me = sms_user(api, "13812345678")
    post_claim(api, me, client_ref="a")
    post_claim(api, me, client_ref="b", amount_paid_fen=12900)
    key = scalar("SELECT storage_key FROM claim_image ORDER BY id LIMIT 1")
    (claims_env / key).write_bytes(b"garbage")
    assert _run_job() == {"done": 1, "failed": 1}
    assert [r[0] for r in rows("SELECT ocr_status FROM claim_image ORDER BY id")] == ["failed", "done"]


def test_after_response_ocr_runs_for_the_new_claim(api, claims_env, monkeypatch):
    from gc_admin.config import get_settings

    monkeypatch.setenv("GC_CLAIMS_OCR_AFTER_RESPONSE", "1")
    get_settings.cache_clear()
    give_coupons("13812345678")
    post_claim(api, sms_user(api, "13812345678"))
    assert scalar("SELECT ocr_status FROM claim_image") == "done"  # TestClient runs the background task
