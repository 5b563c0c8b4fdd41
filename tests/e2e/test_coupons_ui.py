"""A clerk's day with coupons, in a real browser: import codes → read the report → issue to three
pasted phones → confirm the numbers → see the result → the stock summary has moved. Screenshots
of each page go to test-artifacts/."""

from __future__ import annotations

import datetime as dt
import re
import secrets

from playwright.sync_api import expect

from gc_admin.core.clock import SHANGHAI
from tests.e2e.conftest import login, save_artifact

PRODUCT = "tpp_tongdui_60"  # a demo product (淘票票通兑券 60 元) with code stock and nothing issued yet
PRODUCT_NAME = "淘票票通兑券 60 元"


def _count(page, product: str, state: str) -> int:
    cell = page.get_by_test_id(f"sum-{product}-{state}-total")
    expect(cell).to_be_visible()
    return int(cell.inner_text().replace(",", ""))


def _expect_count(page, product: str, state: str, value: int) -> None:
    expect(page.get_by_test_id(f"sum-{product}-{state}-total")).to_have_text(f"{value:,}")


def test_clerk_imports_codes_issues_them_and_sees_stock_move(page, app_server, tmp_path):
    login(page, app_server, "clerk", "clerk2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()

    # 券库存: the summary per product
    page.get_by_test_id("nav-stock").click()
    expect(page.get_by_test_id("page-title")).to_have_text("券库存")
    in_stock, issued = _count(page, PRODUCT, "in_stock"), _count(page, PRODUCT, "issued")
    assert in_stock > 0
    save_artifact(page, "coupons-stock-overview.png")

    # import a small CSV: 5 good codes, one repeated row, one code too close to expiry
    today = dt.datetime.now(SHANGHAI).date()
    tag = secrets.token_hex(3).upper()
    good = [f"E2E{tag}{i:03d}XYZ" for i in range(5)]
    lines = ["券码,有效期"] + [f"{c},{today + dt.timedelta(days=80)}" for c in good]
    lines += [f"{good[0]},{today + dt.timedelta(days=80)}", f"E2E{tag}NEARXYZ,{today + dt.timedelta(days=10)}"]
    path = tmp_path / "淘票票60-e2e.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    page.get_by_test_id("tab-import").click()
    page.get_by_test_id("import-product").click()
    page.get_by_role("option", name=re.compile(PRODUCT_NAME)).click()
    page.get_by_test_id("import-upload").locator("input[type=file]").set_input_files(str(path))
    expect(page.get_by_test_id("import-selected")).to_contain_text("e2e.csv")
    page.get_by_test_id("import-start").click()
    report = page.get_by_test_id("import-report")
    expect(report).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("report-rows")).to_have_text("7")
    expect(page.get_by_test_id("report-imported")).to_have_text("6")
    expect(page.get_by_test_id("report-in-stock")).to_have_text("5")
    expect(page.get_by_test_id("report-dup-file")).to_have_text("1")
    expect(page.get_by_test_id("report-discarded")).to_have_text("1")
    expect(page.get_by_test_id("report-loss")).to_have_text("¥50.00")
    expect(page.get_by_test_id("import-row").first).to_contain_text("e2e.csv")
    expect(page.get_by_text(good[0])).to_have_count(0)  # codes are never shown whole
    with page.expect_download() as dl:
        page.get_by_test_id("report-download").click()
    report_csv = dl.value.path().read_text(encoding="utf-8-sig")
    assert "新增券码,6" in report_csv and good[0] not in report_csv
    save_artifact(page, "coupons-stock-import.png")

    page.get_by_test_id("tab-overview").click()
    _expect_count(page, PRODUCT, "in_stock", in_stock + 5)
    in_stock += 5

    # 券码明细: masked codes, filtered by product
    page.get_by_test_id("tab-codes").click()
    expect(page.get_by_test_id("code-row").first).to_be_visible()
    expect(page.get_by_test_id("code-row").first).to_contain_text("****")
    save_artifact(page, "coupons-stock-codes.png")

    page.get_by_test_id("tab-products").click()
    expect(page.get_by_test_id("product-row").filter(has_text=PRODUCT)).to_have_count(1)
    expect(page.get_by_test_id("product-new")).to_have_count(0)  # a clerk does not create products
    save_artifact(page, "coupons-stock-products.png")

    # 发券: three pasted phones (plus a bad one and a repeat), preview, confirm
    page.get_by_test_id("nav-issuance").click()
    expect(page.get_by_test_id("page-title")).to_have_text("发券")
    expect(page.get_by_test_id("issue-batch-id")).to_have_value(re.compile(r"^B\d{8}-[A-Z0-9]{4}$"))  # prefilled
    batch_id = page.get_by_test_id("issue-batch-id").input_value()
    page.get_by_test_id("issue-product").click()
    page.get_by_role("option", name=re.compile(PRODUCT_NAME)).click()
    page.get_by_test_id("phones-text").fill("13700000001\n13700000002, 1370000\n13700000003\n13700000001")
    page.get_by_test_id("issue-preview").click()
    dialog = page.get_by_test_id("preview-dialog")
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("preview-headline")).to_have_text(f"将向 3 个手机号发放 3 张券，剩余库存 {in_stock - 3:,}")
    expect(page.get_by_test_id("preview-invalid")).to_have_text("1")
    expect(page.get_by_test_id("preview-duplicate")).to_have_text("1")
    expect(page.get_by_test_id("preview-no-stock")).to_have_text("0")
    save_artifact(page, "coupons-issue-preview.png")
    page.get_by_test_id("issue-confirm").click()
    expect(dialog).to_have_count(0)
    result = page.get_by_test_id("issue-result")
    expect(result).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("result-issued")).to_have_text("3")
    expect(page.get_by_test_id("result-failed")).to_have_text("2")
    expect(page.get_by_test_id("result-row")).to_have_count(5)
    expect(page.get_by_test_id("result-row").first).to_contain_text("137****0001")
    expect(page.get_by_text("13700000001")).to_have_count(0)  # masked on screen
    expect(page.get_by_test_id("batch-row").first).to_contain_text(batch_id)
    with page.expect_download() as dl:
        page.get_by_test_id("result-download").click()
    result_csv = dl.value.path().read_text(encoding="utf-8-sig")
    assert "1,13700000001,已发放" in result_csv  # whole phones in the clerk's own download
    save_artifact(page, "coupons-issue-result.png")

    # the same batch id again: nothing new, the first result is shown
    page.get_by_test_id("issue-preview").click()
    expect(page.get_by_test_id("preview-replay")).to_be_visible()
    page.get_by_test_id("issue-confirm").click()
    expect(page.get_by_test_id("result-replayed")).to_contain_text("该批次已发放过，以下为首次结果")

    # back on 券库存: three codes left the stock and are issued
    page.get_by_test_id("nav-stock").click()
    _expect_count(page, PRODUCT, "in_stock", in_stock - 3)
    _expect_count(page, PRODUCT, "issued", issued + 3)

    # the daily expiry run, by hand: a confirmation that says what it does, then the result panel
    page.get_by_test_id("run-expiry").click()
    expect(page.get_by_role("alertdialog")).to_contain_text("转为弃票")
    page.get_by_test_id("run-expiry-confirm").click()
    expect(page.get_by_test_id("expiry-panel")).to_contain_text("本次过期处理")
    save_artifact(page, "coupons-stock-after.png")


def test_user_detail_lists_coupons_masked(page, app_server):
    login(page, app_server, "service", "service2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    page.get_by_test_id("nav-users").click()
    expect(page.get_by_test_id("user-row").first).to_be_visible()
    # demo users hold coupons; open users until one has some
    rows = page.get_by_test_id("user-row")
    for i in range(min(rows.count(), 20)):
        rows.nth(i).click()
        detail = page.get_by_test_id("user-detail")
        expect(detail).to_be_visible()
        if page.get_by_test_id("user-coupon-row").count():
            break
        page.keyboard.press("Escape")
        expect(detail).to_have_count(0)
    coupon = page.get_by_test_id("user-coupon-row").first
    expect(coupon).to_be_visible()
    expect(page.get_by_test_id("user-detail")).to_contain_text("****")
    coupon.get_by_role("button", name="历史").click()
    # newest first: a later reservation may top the list, the issuance is always in it
    history = page.get_by_test_id("coupon-history-row")
    expect(history.first).to_be_visible()
    expect(history.filter(has_text="发放")).to_have_count(1)
    save_artifact(page, "coupons-user-detail.png")


def test_manager_creates_a_product_with_inline_errors_and_puts_it_on_sale(page, app_server):
    login(page, app_server, "manager", "manager2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    page.get_by_test_id("nav-stock").click()
    page.get_by_test_id("tab-products").click()
    page.get_by_test_id("product-new").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_placeholder("如 tpp_tongdui_50").fill("tpp_e2e_40")
    dialog.get_by_placeholder("如 淘票票通兑券 50 元").fill("淘票票通兑券 40 元（测试）")
    dialog.get_by_placeholder("如 50；返现券为返现金额").fill("四十")
    dialog.get_by_role("button", name="创建").click()
    expect(page.get_by_test_id("product-form-error")).to_contain_text("面值需填写金额（元）")
    dialog.get_by_placeholder("如 50；返现券为返现金额").fill("40")
    dialog.get_by_placeholder("每张采购成本").fill("33.5")
    dialog.get_by_placeholder("如 淘票票", exact=True).fill("淘票票")
    dialog.get_by_placeholder("wx 开头，共 18 位").fill("wx123")
    dialog.get_by_role("button", name="创建").click()
    expect(page.get_by_test_id("product-form-error")).to_contain_text("跳转小程序 AppID 格式不正确")
    save_artifact(page, "coupons-product-dialog.png")
    dialog.get_by_placeholder("wx 开头，共 18 位").fill("wxabcdef0123456789")
    dialog.get_by_placeholder("如 pages/index").fill("pages/index")
    dialog.get_by_role("button", name="创建").click()
    expect(page.get_by_text("已创建券种 淘票票通兑券 40 元（测试）（tpp_e2e_40）")).to_be_visible()
    row = page.get_by_test_id("product-row").filter(has_text="tpp_e2e_40")
    expect(row).to_contain_text("¥40.00")
    expect(row).to_contain_text("¥33.50")
    page.get_by_test_id("on-sale-tpp_e2e_40").click()
    expect(page.get_by_text("淘票票通兑券 40 元（测试） 已上架")).to_be_visible()
    # the new product is offered for import at once
    page.get_by_test_id("tab-import").click()
    page.get_by_test_id("import-product").click()
    expect(page.get_by_role("option", name=re.compile("tpp_e2e_40"))).to_be_visible()
