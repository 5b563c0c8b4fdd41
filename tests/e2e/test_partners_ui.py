"""An admin issues a partner API key in the dashboard; the insurer's club uses it over HTTP."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.e2e.conftest import login, save_artifact


def test_admin_creates_key_partner_issues_then_key_is_revoked(page, app_server):
    login(page, app_server, "admin", "admin2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    page.get_by_test_id("nav-partners").click()
    page.get_by_test_id("partner-new").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_placeholder("合作方名称，如 人保之友俱乐部").fill("人保之友俱乐部（测试）")
    dialog.get_by_role("button", name="创建").click()
    key = page.get_by_test_id("partner-key").inner_text().strip()
    assert key.startswith("gcp_")
    save_artifact(page, "partners-key-shown-once.png")
    dialog.get_by_role("button", name="我已保存").click()
    row = page.get_by_test_id("partner-row").filter(has_text="人保之友俱乐部（测试）")
    expect(row).to_have_count(1)
    expect(row).not_to_contain_text(key)  # the full key is never listed

    body = {"batch_id": "e2e-club-1", "product_code": "tpp_tongdui_50", "phones": ["13966660001", "13966660002"]}
    with httpx.Client(base_url=app_server.base_url, timeout=30) as c:
        issued = c.post("/api/v1/partner/issuances", json=body, headers={"X-Api-Key": key})
        assert issued.status_code == 200, issued.text
        assert issued.json()["issued"] == 2
        member = c.get("/api/v1/partner/members/13966660001/coupons", headers={"X-Api-Key": key}).json()
        assert len(member["items"]) == 1 and "****" in member["items"][0]["code_masked"]

    row.get_by_role("button", name="吊销").click()
    page.get_by_role("alertdialog").get_by_role("button", name="确定吊销").click()
    expect(row).to_contain_text("已吊销")
    with httpx.Client(base_url=app_server.base_url, timeout=30) as c:
        denied = c.post("/api/v1/partner/issuances", json={**body, "batch_id": "e2e-club-2"}, headers={"X-Api-Key": key})
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "INVALID_API_KEY"
