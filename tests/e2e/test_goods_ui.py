"""A supplier ships by sheet, in a real browser against the app started as the README starts it: the demo
supplier (周凯, 桂林香氛工坊) signs in, opens 订单导入与批量发货, uploads a sheet for one of its paid goods
orders, sees the preview, confirms, and the order is shipped with the tracking no.; uploading the same
sheet again previews nothing to ship. Screenshots go to test-artifacts/."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.e2e.conftest import login, save_artifact


def test_supplier_ships_by_sheet(page, app_server, tmp_path):
    c = httpx.Client(base_url=app_server.base_url, timeout=60)
    supplier = {"Authorization": f"Bearer {app_server.staff_token('supplier', 'supplier2026')}"}
    waiting = c.get("/api/v1/admin/orders", params={"status": "paid"}, headers=supplier).json()["items"]
    assert waiting and {r["type"] for r in waiting} == {"goods"}, waiting
    order = waiting[0]
    sheet = tmp_path / "发货表.csv"
    sheet.write_text(f"订单号,快递公司,快递单号\n{order['order_no']},顺丰速运,SF9900112233\n", encoding="utf-8")

    login(page, app_server, "supplier", "supplier2026")
    expect(page.get_by_test_id("page-title")).to_be_visible()
    page.goto(app_server.url("/orders/imports/"))
    expect(page.get_by_test_id("page-title")).to_have_text("订单导入与批量发货")
    page.get_by_test_id("ship-upload").locator("input[type=file]").set_input_files(str(sheet))
    expect(page.get_by_test_id("ship-summary")).to_contain_text("将发货 1 单")
    expect(page.get_by_test_id("ship-report")).to_contain_text(order["order_no"])
    save_artifact(page, "goods-ship-preview.png")
    page.get_by_test_id("ship-confirm").click()
    page.get_by_test_id("ship-apply").click()
    expect(page.get_by_test_id("ship-summary")).to_contain_text("发货 1 单")
    save_artifact(page, "goods-shipped.png")
    seen = c.get(f"/api/v1/admin/orders/{order['id']}", headers=supplier).json()
    assert seen["status"] == "shipped" and seen["fulfilment"]["tracking_no"] == "SF9900112233"

    again = tmp_path / "发货表（再次）.csv"  # the same sheet, uploaded again (a new file input value)
    again.write_bytes(sheet.read_bytes())
    page.get_by_test_id("ship-upload").locator("input[type=file]").set_input_files(str(again))
    expect(page.get_by_test_id("ship-summary")).to_contain_text("将发货 0 单")
    expect(page.get_by_test_id("ship-confirm")).to_be_disabled()
