"""Cashback end to end, in a real browser against the app started as the README starts it.

A mini-program client (httpx) signs in with WeChat, buys a fuel cashback coupon (WeChat Pay simulator)
and files a fuel claim with a rendered PNG receipt; the task queue reads it (OCR) off the request path; the clerk opens
返现审核, finds the claim by phone, sees the OCR fields beside the claim's own figures, and approves it
with the keyboard (a, Enter); the Alipay simulator executed exactly one transfer; coupon, claim, ledger
and audit agree. Then the clerk rejects a demo claim with the keyboard (r, 2, Enter). Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import re
import secrets
import time

import httpx
from playwright.sync_api import expect

from gc_admin.claims.models import EVENT_ACTIONS, STATUSES
from gc_admin.claims.receipts import wechat_receipt
from tests.e2e.conftest import login, save_artifact
from tests.e2e.test_orders_ui import _mp_user, _pay


def _file_claim(c: httpx.Client) -> tuple[dict, dict[str, str], str]:
    auth = _mp_user(c)
    phone = c.get("/api/v1/mp/me", headers=auth).json()["phone"]
    order = c.post("/api/v1/mp/orders", json={"type": "coupon_purchase", "product_code": "fuel_cashback_50",
                                              "quantity": 1}, headers=auth)
    assert order.status_code == 201, order.text
    _pay(c, order.json())
    txn = "4200" + f"{secrets.randbelow(10**20):020d}"
    png = wechat_receipt(amount="128.00", txn=txn, mch_no="E2E" + txn[-8:])
    claim = c.post("/api/v1/mp/claims", data={
        "category": "fuel", "amount_paid_fen": "12800", "station": "中国石化南宁民族大道加油站", "payout_method": "alipay",
        "alipay_account": phone, "real_name": "张三", "contact_phone": phone, "client_ref": f"e2e-{txn[-6:]}"},
        files=[("images", ("receipt.png", png, "image/png"))], headers=auth)
    assert claim.status_code == 201, claim.text
    assert claim.json()["status"] == "pending_review"
    return claim.json(), auth, phone


def _no_raw_status(lines: list[str]) -> None:
    """The rendered 处理记录 names every action and status in Chinese: no code reaches the clerk."""
    raw = re.compile(r"\b(" + "|".join(sorted({*STATUSES, *EVENT_ACTIONS}, key=len, reverse=True)) + r")\b")
    assert lines and not [line for line in lines if raw.search(line) or "no valid coupon" in line], lines


def test_a_clerk_approves_a_claim_and_rejects_another_with_the_keyboard(page, app_server):
    with httpx.Client(base_url=app_server.base_url, timeout=60) as c:
        claim, auth, phone = _file_claim(c)
        staff = {"Authorization": f"Bearer {app_server.staff_token('clerk', 'clerk2026')}"}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the claims.ocr task the submission queued reads it
            ocr = c.get(f"/api/v1/admin/claims/{claim['id']}", headers=staff).json()["images"][0]["ocr"]
            if ocr["status"] == "done":
                break
            time.sleep(1)
        assert ocr["amount_fen"] == 12800

        login(page, app_server, "clerk", "clerk2026")
        expect(page.get_by_test_id("sidebar")).to_be_visible()
        page.get_by_test_id("nav-claims").click()
        expect(page.get_by_test_id("page-title")).to_have_text("返现审核")
        page.get_by_test_id("claims-q").fill(phone)
        page.get_by_test_id("claims-q").press("Enter")
        expect(page.get_by_test_id("claim-title")).to_contain_text(f"#{claim['id']}")
        expect(page.get_by_test_id("ocr-amount")).to_contain_text("¥128.00")
        expect(page.get_by_test_id("claim-amount")).to_contain_text("¥128.00")
        expect(page.get_by_test_id("ocr-txn")).not_to_have_text("—")
        expect(page.get_by_test_id("claim-image")).to_be_visible()
        expect(page.get_by_test_id("claim-history").first).to_contain_text("提交申请 → 待审核")
        _no_raw_status(page.get_by_test_id("claim-history").all_inner_texts())
        review = page.keyboard
        page.get_by_test_id("claims-keys").click()  # the search box gives the focus back: keys are commands
        expect(page.get_by_test_id("claims-keys-ready")).to_be_visible()  # once the page has taken the blur
        review.press("+")
        review.press("a")
        expect(page.get_by_test_id("claims-confirm-approve")).to_contain_text("¥50.00")
        save_artifact(page, "claims-approve.png")
        review.press("Enter")
        expect(page.get_by_text(f"申请 #{claim['id']} 已通过并打款")).to_be_visible()
        expect(page.get_by_test_id("claims-empty")).to_be_visible()  # it left the waiting queue

        done = c.get(f"/api/v1/admin/claims/{claim['id']}", headers=staff).json()
        assert done["status"] == "paid" and len(done["payouts"]) == 1
        out_biz_no = done["payouts"][0]["out_biz_no"]
        assert c.get("/sim/alipay/_transfers", params={"out_biz_no": out_biz_no}).json()["transfers"] == 1
        coupon = c.get(f"/api/v1/mp/coupons/{claim['coupon_id']}", headers=auth).json()
        assert coupon["status"] == "used"
        mine = c.get(f"/api/v1/mp/claims/{claim['id']}", headers=auth).json()
        assert mine["status"] == "paid" and mine["payout"]["reference"] == done["payouts"][0]["reference"]
        manager = {"Authorization": f"Bearer {app_server.staff_token('manager', 'manager2026')}"}
        ledger = c.get("/api/v1/admin/ledger", params={"kind": "cashback_payout"}, headers=manager).json()
        assert [e["amount_fen"] for e in ledger["items"] if e["ref"] == f"cashback:{out_biz_no}"] == [-5000]

        # reject a demo claim: clear the search, the first waiting claim is open
        page.get_by_test_id("claims-q").fill("")
        page.get_by_test_id("claims-q").press("Enter")
        expect(page.get_by_test_id("claim-status")).to_have_text("待审核")
        victim = page.get_by_test_id("claim-title").inner_text().split("#")[-1].strip()
        expect(page.get_by_test_id("claims-keys-paused")).to_be_visible()  # still in the search box: keys are text
        page.get_by_test_id("claims-keys").click()
        expect(page.get_by_test_id("claims-keys-ready")).to_be_visible()
        review.press("r")
        expect(page.get_by_test_id("claims-confirm-reject")).to_be_visible()
        review.press("2")
        review.press("Enter")
        expect(page.get_by_text(f"申请 #{victim} 已驳回")).to_be_visible()
        save_artifact(page, "claims-reject.png")
        rejected = c.get(f"/api/v1/admin/claims/{victim}", headers=staff).json()
        assert rejected["status"] == "rejected" and rejected["reason"] == "申请金额与支付凭证不符"
