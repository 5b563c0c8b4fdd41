"""Lists in a real browser: a header click sorts on the server (arrow shown, order changes), the export
downloads every filtered row as Excel with Chinese headers and masked phones, and the audit log and the
issuance preview read in Chinese. Screenshots go to test-artifacts/."""

from __future__ import annotations

import io
import re

import polars as pl
from playwright.sync_api import expect

from tests.e2e.conftest import login, save_artifact


def _column(page, testid: str, index: int) -> list[str]:
    rows = page.get_by_test_id(testid)
    expect(rows.first).to_be_visible()
    return [rows.nth(i).locator("td").nth(index).inner_text().strip() for i in range(rows.count())]


def test_admin_sorts_users_by_a_header_and_exports_them(page, app_server):
    login(page, app_server, "admin", "admin2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    page.get_by_test_id("nav-users").click()
    expect(page.get_by_test_id("page-title")).to_have_text("用户")
    default_ids = _column(page, "user-row", 0)
    assert [int(i) for i in default_ids] == sorted((int(i) for i in default_ids), reverse=True)  # newest first

    header = page.get_by_test_id("sort-id")
    expect(header).to_have_attribute("aria-sort", "none")
    header.click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(page.get_by_test_id("user-row").first.locator("td").first).to_have_text("1")
    ascending = [int(i) for i in _column(page, "user-row", 0)]
    assert ascending == sorted(ascending) and ascending[0] == 1
    save_artifact(page, "lists-users-sorted.png")

    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(page.get_by_test_id("user-row").first.locator("td").first).to_have_text(default_ids[0])

    # filter, then export: every matching user, not just the page
    everyone = page.get_by_test_id("total").inner_text()
    page.get_by_test_id("users-phone").fill("13")
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_test_id("total")).not_to_have_text(everyone)
    total = int(re.sub(r"\D", "", page.get_by_test_id("total").inner_text()))
    assert 20 < total < int(re.sub(r"\D", "", everyone))
    with page.expect_download() as dl:
        page.get_by_test_id("users-export").click()
    download = dl.value
    assert re.fullmatch(r"用户-\d{8}-\d{4}\.xlsx", download.suggested_filename)
    frame = pl.read_excel(io.BytesIO(download.path().read_bytes()))
    assert frame.columns == ["用户ID", "手机号", "微信", "昵称", "城市", "注册时间", "最近登录"]
    assert frame.height == total
    assert frame["用户ID"].to_list() == sorted(frame["用户ID"].to_list(), reverse=True)  # the list's order
    assert frame["手机号"].str.contains(r"^\d{3}\*{4}\d{4}$").all()


def test_audit_log_and_issuance_preview_read_in_chinese(page, app_server):
    login(page, app_server, "admin", "admin2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()

    page.get_by_test_id("nav-audit").click()
    expect(page.get_by_test_id("audit-row").first).to_be_visible()
    page.get_by_placeholder("对象 ID / 类型（如 订单）").fill("券码导入")  # the label finds stock_import rows
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_test_id("audit-row").first).to_contain_text("券码导入 #")  # not just "stock_import 437"
    expect(page.get_by_test_id("audit-row").first).to_contain_text("stock_import")  # the code, smaller, beside
    page.get_by_test_id("sort-at").click()
    expect(page.get_by_test_id("sort-at")).to_have_attribute("aria-sort", "ascending")
    save_artifact(page, "lists-audit.png")

    page.get_by_test_id("nav-issuance").click()
    page.get_by_test_id("issue-product").click()
    page.get_by_role("option").first.click()
    page.get_by_test_id("phones-text").fill("13700000001\n12345\n13700000001\n")
    page.get_by_test_id("issue-preview").click()
    problems = page.get_by_test_id("preview-problem")
    expect(problems).to_have_count(2)
    expect(problems.nth(0)).to_contain_text("2")
    expect(problems.nth(0)).to_contain_text("12345")
    expect(problems.nth(0)).to_contain_text("手机号格式不正确")
    expect(problems.nth(1)).to_contain_text("与第 1 行手机号重复")
    save_artifact(page, "lists-issuance-preview.png")
    page.get_by_role("button", name="取消").click()

    page.get_by_test_id("nav-orders").click()
    expect(page.get_by_test_id("column-paid")).to_be_visible()  # 订单看板 (its own tests: test_orders_ui.py)
    save_artifact(page, "lists-orders.png")

    page.get_by_test_id("nav-stock").click()
    page.get_by_test_id("tab-codes").click()
    expect(page.get_by_test_id("code-row").first).to_be_visible()
    page.get_by_test_id("sort-face_fen").click()
    expect(page.get_by_test_id("sort-face_fen")).to_have_attribute("aria-sort", "ascending")
    save_artifact(page, "lists-codes.png")

    page.get_by_test_id("nav-sms").click()
    expect(page.get_by_test_id("sort-created_at")).to_be_visible()
    save_artifact(page, "lists-sms.png")
