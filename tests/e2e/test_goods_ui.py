"""Goods and suppliers in a real browser against the app started as the README starts it. The demo supplier
(周凯, 桂林香氛工坊) signs in and lands on its 工作台: 待发货订单 and the 订单看板 badge count its paid goods
orders; the board links to 订单导入与批量发货, where it uploads a sheet for one of them, sees the preview,
confirms, and the order is shipped with the tracking no.; uploading the same sheet again previews nothing to
ship. On 商品管理 it sees only its own goods, uploads a photo (checked by content on the server) that the
mini-program's catalogue then serves, and takes an item off sale. Screenshots go to test-artifacts/."""

from __future__ import annotations

import io

import httpx
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.conftest import login, save_artifact
from tests.e2e.test_flowers_ui import _mp_user, upload_photo_then_a_fake


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
    expect(page.get_by_test_id("stat-to_ship")).to_contain_text(str(len(waiting)))
    expect(page.get_by_test_id("orders-badge").first).to_have_text(str(len(waiting)))
    save_artifact(page, "supplier-home.png")
    page.get_by_test_id("nav-orders").click()
    expect(page.get_by_test_id("column-paid").get_by_test_id("card")).to_have_count(min(len(waiting), 10))
    expect(page.get_by_test_id("column-shipped")).to_be_visible()
    for never in ("accepted", "arrived", "in_fulfilment", "awaiting_payment"):  # no goods order is ever in them
        expect(page.get_by_test_id(f"column-{never}")).to_have_count(0)
    save_artifact(page, "supplier-board.png")
    page.get_by_test_id("orders-imports-link").click()
    expect(page.get_by_test_id("page-title")).to_have_text("订单导入与批量发货")
    page.get_by_test_id("ship-upload").locator("input[type=file]").set_input_files(str(sheet))
    expect(page.get_by_test_id("ship-summary")).to_contain_text("将发货 1 单")
    expect(page.get_by_test_id("ship-report")).to_contain_text(order["order_no"])
    save_artifact(page, "goods-ship-preview.png")
    page.get_by_test_id("ship-confirm").click()
    page.get_by_test_id("ship-apply").click()
    expect(page.get_by_test_id("ship-summary")).to_contain_text("已完成：发货 1 单")  # not the preview's "将发货 1 单"
    save_artifact(page, "goods-shipped.png")
    seen = c.get(f"/api/v1/admin/orders/{order['id']}", headers=supplier).json()
    assert seen["status"] == "shipped" and seen["fulfilment"]["tracking_no"] == "SF9900112233"

    again = tmp_path / "发货表（再次）.csv"  # the same sheet, uploaded again (a new file input value)
    again.write_bytes(sheet.read_bytes())
    page.get_by_test_id("ship-upload").locator("input[type=file]").set_input_files(str(again))
    expect(page.get_by_test_id("ship-summary")).to_contain_text("将发货 0 单")
    expect(page.get_by_test_id("ship-confirm")).to_be_disabled()


def test_supplier_manages_its_goods_with_a_photo(page, app_server, tmp_path):
    c = httpx.Client(base_url=app_server.base_url, timeout=60)
    login(page, app_server, "supplier", "supplier2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    page.get_by_test_id("nav-goods").click()
    expect(page.get_by_test_id("page-title")).to_have_text("商品管理")
    table = page.get_by_test_id("goods-table")
    expect(page.get_by_test_id("goods-scope")).to_contain_text("桂林香氛工坊")
    codes = table.get_by_test_id("goods-row").evaluate_all("rows => rows.map(r => r.dataset.code)")
    mine = {g["code"] for g in c.get("/api/v1/admin/goods", headers={
        "Authorization": f"Bearer {app_server.staff_token('supplier', 'supplier2026')}"}).json()["items"]}
    assert set(codes) == mine and "aroma_car" in mine, (codes, mine)

    row = table.get_by_test_id("goods-row").filter(has_text="aroma_car")
    upload_photo_then_a_fake(page, tmp_path, row, "goods", "aroma_car", (640, 480))
    save_artifact(page, "goods-page.png")

    me = _mp_user(c)
    item = next(g for g in c.get("/api/v1/mp/catalog", headers=me).json()["goods"] if g["code"] == "aroma_car")
    picture = c.get(item["image_url"])
    assert picture.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(picture.content)).size == (640, 480)

    page.get_by_test_id("goods-on-sale-aroma_refill").click()
    expect(page.get_by_text("香薰补充液 已下架")).to_be_visible()
    assert "aroma_refill" not in {g["code"] for g in c.get("/api/v1/mp/catalog", headers=me).json()["goods"]}


def test_clerk_imports_channel_orders_on_the_page(page, app_server, tmp_path):
    """A clerk imports a channel's order sheet on 订单导入与批量发货: the source's saved mapping (default type
    shown by its label, 实物), preview, confirm, and the applied report (the orders.import task ran)."""
    c = httpx.Client(base_url=app_server.base_url, timeout=60)
    clerk = {"Authorization": f"Bearer {app_server.staff_token('clerk', 'clerk2026')}"}
    saved = c.put("/api/v1/admin/order-sources/e2eshop/mapping", headers=clerk, json={"mapping": {
        "external_id": "单号", "phone": "手机", "item": "商品", "amount": "金额", "paid": "实付"}, "default_type": "goods"})
    assert saved.status_code == 200, saved.text
    sheet = tmp_path / "渠道订单.csv"
    sheet.write_text("单号,手机,商品,金额,实付\n" + "".join(f"E2E-{i},1390001{i:04d},香薰 {i},{20 + i}.00,{20 + i}.00\n"
                                                       for i in range(3)), encoding="utf-8")
    login(page, app_server, "clerk", "clerk2026")
    page.get_by_test_id("nav-orders").click()
    page.get_by_test_id("orders-imports-link").click()
    expect(page.get_by_test_id("page-title")).to_have_text("订单导入与批量发货")
    page.get_by_test_id("import-source").fill("e2eshop")
    page.get_by_text("读取列映射").click()
    expect(page.get_by_test_id("map-external_id")).to_have_value("单号")
    expect(page.get_by_test_id("import-default-type")).to_have_text("实物")
    page.get_by_test_id("orders-upload").locator("input[type=file]").set_input_files(str(sheet))
    expect(page.get_by_test_id("import-summary")).to_contain_text("将导入 3 单")
    page.get_by_test_id("import-confirm").click()
    page.get_by_test_id("import-apply").click()
    expect(page.get_by_test_id("import-summary")).to_contain_text("已完成：导入 3 单")
    save_artifact(page, "orders-import.png")
    listed = c.get("/api/v1/admin/orders", params={"q": "13900010001"}, headers=clerk).json()["items"]
    assert len(listed) == 1 and listed[0]["type"] == "goods", listed
