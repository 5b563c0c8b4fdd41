"""Money end to end, in a real browser against the app started as the README starts it.

A mini-program client (httpx) signs in with WeChat through the simulator, buys 3 movie coupons,
pays through the WeChat Pay simulator (whose notify comes back over loopback to the running app)
and sees its coupons; a clerk finds the order on 订单看板 and refunds one coupon (¥9.00) with a
reason, confirming the consequence; WeChat finishes the refund (the simulator's ``/_refund`` hook,
its notify again over loopback); the order shows the refund, the user has 2 coupons left, the code
is back in stock, and the manager's 流水 page shows the payment and the refund, exports them to
Excel and reconciles the day's trade bill. A second test shows the sidebar's 新订单 badge for a
paid top-up and a clerk accepting it from the queue. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import secrets

import httpx
import polars as pl
from playwright.sync_api import expect

from gc_admin.core.clock import SHANGHAI
from tests.e2e.conftest import login, save_artifact

PRODUCT = "tpp_daijin_10_platform"  # demo: 淘票票代金券 10 元（平台促销）, on sale for ¥9.00, 5 per user


def _mp_user(c: httpx.Client) -> dict[str, str]:
    """A new mini-program user signed in with WeChat (code2session + phone) through the simulator."""
    phone = "199" + f"{secrets.randbelow(10**8):08d}"
    minted = c.post("/sim/wechat/_mint", json={"openid": f"e2e-{secrets.token_hex(8)}", "phone": phone}).json()
    grant = c.post("/api/v1/mp/auth/wechat", json={"code": minted["code"]})
    assert grant.status_code == 200, grant.text
    auth = {"Authorization": f"Bearer {grant.json()['token']}"}
    bound = c.post("/api/v1/mp/auth/wechat/phone", json={"phone_code": minted["phone_code"]}, headers=auth)
    assert bound.status_code == 200, bound.text
    return {"Authorization": f"Bearer {bound.json().get('token') or grant.json()['token']}"}


def _pay(c: httpx.Client, order: dict) -> dict:
    package = order["payment"]["package"]
    assert package.startswith("prepay_id=")
    paid = c.post("/sim/wechatpay/_pay", json={"prepay_id": package.removeprefix("prepay_id=")})
    assert paid.status_code == 200, paid.text
    assert paid.json()["notify_status"] == 204  # the app accepted the signed, encrypted notify
    return paid.json()


def _in_stock(c: httpx.Client, staff: dict[str, str]) -> int:
    rows = c.get("/api/v1/admin/stock/summary", headers=staff).json()
    return sum(r["count"] for r in rows if r["product_code"] == PRODUCT and r["state"] == "in_stock")


def _my_coupons(c: httpx.Client, auth: dict[str, str], ids: list[int]) -> list[str]:
    items = c.get("/api/v1/mp/coupons", headers=auth).json()["items"]
    return sorted(i["status"] for i in items if i["id"] in ids)


def test_user_buys_three_coupons_and_a_clerk_refunds_one(page, app_server):
    c = httpx.Client(base_url=app_server.base_url, timeout=60)
    auth = _mp_user(c)
    manager = {"Authorization": f"Bearer {app_server.staff_token('manager', 'manager2026')}"}

    # the catalogue, the order, the payment
    item = next(p for p in c.get("/api/v1/mp/catalog", headers=auth).json()["coupons"] if p["code"] == PRODUCT)
    assert (item["price_fen"], item["per_user_limit"]) == (900, 5) and item["can_buy"] == 5
    stock_before = _in_stock(c, manager)
    created = c.post("/api/v1/mp/orders", headers=auth,
                     json={"type": "coupon_purchase", "product_code": PRODUCT, "quantity": 3})
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "created" and order["pricing"]["payable_fen"] == 2_700
    assert _in_stock(c, manager) == stock_before - 3  # reserved for the order
    paid = _pay(c, order)
    mine = c.get(f"/api/v1/mp/orders/{order['id']}", headers=auth).json()
    assert mine["status"] == "completed" and mine["paid_fen"] == 2_700 and len(mine["coupon_ids"]) == 3
    coupon_ids = mine["coupon_ids"]
    assert _my_coupons(c, auth, coupon_ids) == ["available"] * 3
    order_no = order["order_no"]

    # 订单看板: the clerk finds the order
    login(page, app_server, "clerk", "clerk2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    page.get_by_test_id("nav-orders").click()
    expect(page.get_by_test_id("page-title")).to_have_text("订单看板")
    expect(page.get_by_test_id("card").first).to_be_visible()
    page.get_by_test_id("board-q").fill(order_no)
    page.get_by_test_id("board-search").click()
    row = page.get_by_test_id("column-completed").get_by_test_id("card")
    expect(row).to_have_count(1)
    expect(page.get_by_test_id("card")).to_have_count(1)  # the search leaves one card on the whole board
    expect(row).to_contain_text(order_no)
    expect(row).to_contain_text("¥27.00")
    expect(row).to_contain_text("****")  # the phone is masked
    save_artifact(page, "orders-queue.png")

    # the panel: price steps, payment, history
    row.get_by_test_id("card-open").click()
    detail = page.get_by_test_id("order-detail")
    expect(detail).to_be_visible()
    expect(page.get_by_test_id("detail-order-no")).to_have_text(order_no)
    expect(page.get_by_test_id("detail-status")).to_have_text("已完成")
    expect(page.get_by_test_id("detail-txn")).to_have_text(paid["transaction_id"])
    expect(page.get_by_test_id("detail-refundable")).to_have_text("¥27.00")
    expect(detail.get_by_test_id("history-row")).to_have_count(3)  # 下单, 支付, 完成 (coupons issued)
    save_artifact(page, "orders-detail.png")

    # refund one coupon: the form, then the confirmation stating the consequence
    page.get_by_test_id("open-refund").click()
    dialog = page.get_by_test_id("refund-dialog")
    expect(dialog).to_be_visible()
    amount = page.get_by_test_id("refund-amount-input")
    expect(amount).to_have_value("27.00")
    amount.fill("9")
    page.get_by_test_id("refund-next").click()
    expect(page.get_by_test_id("refund-error")).to_have_text("请填写退款原因（将记入订单记录）")
    page.get_by_test_id("refund-reason").fill("用户买多了一张，申请退一张")
    page.get_by_test_id("refund-next").click()
    consequence = page.get_by_test_id("refund-consequence")
    expect(consequence).to_contain_text("将向用户退款 ¥9.00（原支付 ¥27.00，已退 ¥0.00）")
    expect(consequence).to_contain_text("1 张未使用券将作废并回到库存")
    save_artifact(page, "orders-refund-confirm.png")
    page.get_by_test_id("refund-confirm").click()
    expect(page.get_by_text(re.compile("退款 ¥9.00 已提交微信支付"))).to_be_visible()
    expect(page.get_by_test_id("refund-status")).to_have_text("退款中")
    expect(page.get_by_test_id("detail-refunded")).to_have_text("¥9.00")
    out_refund_no = page.get_by_test_id("refund-no").inner_text().strip()
    assert out_refund_no.startswith("RF")
    # while WeChat processes it, the coupon is held: the user sees 2 available
    assert _my_coupons(c, auth, coupon_ids) == ["available", "available", "reserved"]

    # WeChat Pay finishes the refund and notifies the app; the clerk refreshes the panel
    done = c.post("/sim/wechatpay/_refund", json={"out_refund_no": out_refund_no})
    assert done.status_code == 200 and done.json()["notify_status"] == 204, done.text
    page.get_by_test_id("detail-refresh").click()
    expect(page.get_by_test_id("refund-status")).to_have_text("已退款")
    expect(page.get_by_test_id("detail-refundable")).to_have_text("¥18.00")
    expect(page.get_by_test_id("detail-status")).to_have_text("已完成")  # a partial refund keeps the order
    save_artifact(page, "orders-refunded.png")

    # the user: 2 coupons available, the refunded one gone; its code is back in stock
    assert _my_coupons(c, auth, coupon_ids) == ["available", "available", "revoked"]
    assert _in_stock(c, manager) == stock_before - 2
    staff_view = c.get(f"/api/v1/admin/orders/{order['id']}", headers=manager).json()
    assert (staff_view["paid_fen"], staff_view["refunded_fen"]) == (2_700, 900)
    assert [(r["amount_fen"], r["status"], r["coupons"]) for r in staff_view["refunds"]] == [(900, "succeeded", 1)]

    # 流水与对账 (manager): the payment and the refund, totals, export, the day's bill reconciled
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("order-detail")).to_have_count(0)
    page.get_by_test_id("logout").click()
    login(page, app_server, "manager", "manager2026")
    page.get_by_test_id("nav-ledger").click()
    expect(page.get_by_test_id("page-title")).to_have_text("流水与对账")
    page.get_by_test_id("ledger-order-no").fill(order_no)
    page.get_by_test_id("ledger-search").click()
    ledger_rows = page.get_by_test_id("ledger-row")
    expect(ledger_rows).to_have_count(2)
    expect(ledger_rows.nth(0)).to_contain_text("-¥9.00")
    expect(ledger_rows.nth(1)).to_contain_text("¥27.00")
    expect(ledger_rows.nth(1)).to_contain_text(paid["transaction_id"])
    expect(page.get_by_test_id("total-payment")).to_have_text("¥27.00")
    expect(page.get_by_test_id("total-refund")).to_have_text("-¥9.00")
    expect(page.get_by_test_id("ledger-net")).to_have_text("¥18.00")
    save_artifact(page, "ledger.png")
    with page.expect_download() as dl:
        page.get_by_test_id("ledger-export").click()
    today = dt.datetime.now(SHANGHAI).date()
    assert dl.value.suggested_filename == f"流水-{today:%Y%m%d}.xlsx"
    frame = pl.read_excel(io.BytesIO(dl.value.path().read_bytes()))
    assert sorted(zip(frame["类型"].to_list(), frame["金额（分）"].to_list())) == [("支付", 2_700), ("退款", -900)]
    assert set(frame["订单号"].to_list()) == {order_no}

    page.get_by_test_id("tab-reconcile").click()
    page.get_by_test_id("bill-date").fill(today.isoformat())
    page.get_by_test_id("bill-fetch").click()
    result = page.get_by_test_id("reconcile-result")
    expect(result).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("reconcile-run-row").first).to_contain_text(today.isoformat())
    # our payment and refund are on the bill and in the ledger: neither is among the differences
    expect(page.get_by_test_id("mismatch-row").filter(has_text=order_no)).to_have_count(0)
    expect(page.get_by_test_id("mismatch-row").filter(has_text=out_refund_no)).to_have_count(0)
    assert int(page.get_by_test_id("rec-matched").inner_text().replace(",", "")) >= 2
    save_artifact(page, "ledger-reconcile.png")
    print(f"\nfigures: order {order_no} paid ¥27.00 (3 × ¥9.00), refunded ¥9.00 ({out_refund_no}); ledger net ¥18.00; "
          f"coupons available 2 / expired 1; stock {stock_before} → {stock_before - 3} (bought) → "
          f"{stock_before - 2} (refund returned the code)")


def test_two_clerks_boards_a_claim_accept_and_complete_move_the_card_live(page, browser, app_server):
    """A clerk claims, accepts and completes a paid top-up on the kanban (with the provider's reference);
    a second browser session, never reloaded, sees the new order arrive and the card move column by column."""
    c = httpx.Client(base_url=app_server.base_url, timeout=60)
    auth = _mp_user(c)
    other_ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN",
                                    timezone_id="Asia/Shanghai")
    other_ctx.set_default_timeout(30_000)
    other = other_ctx.new_page()
    try:
        login(page, app_server, "clerk", "clerk2026")
        page.get_by_test_id("nav-orders").click()
        expect(page.get_by_test_id("page-title")).to_have_text("订单看板")
        login(other, app_server, "manager", "manager2026")
        other.get_by_test_id("nav-orders").click()
        expect(other.get_by_test_id("column-paid")).to_be_visible()
        me = c.get("/api/v1/mp/me", headers=auth).json()["phone"]
        for pg in (page, other):  # the demo's paid column is longer than one page: both boards follow this buyer
            pg.get_by_test_id("board-q").fill(me)
            pg.get_by_test_id("board-search").click()

        created = c.post("/api/v1/mp/orders", headers=auth,
                         json={"type": "topup", "topup": {"mobile": "13912345678", "face_fen": 5_000}})
        assert created.status_code == 201, created.text
        order = created.json()
        _pay(c, order)
        no = order["order_no"]

        def card_in(pg, status: str):
            return pg.get_by_test_id(f"column-{status}").locator(f'[data-order-no="{no}"]')

        # both boards show the new paid order without a reload (the change feed, polled every second)
        expect(card_in(page, "paid")).to_be_visible(timeout=10_000)
        expect(card_in(other, "paid")).to_be_visible(timeout=10_000)
        expect(card_in(page, "paid")).to_contain_text("话费充值")
        expect(card_in(page, "paid")).to_contain_text("¥50.00")
        # the amount is drawn whole inside its card, however long the order no. beside it
        card, amount = card_in(page, "paid").bounding_box(), card_in(page, "paid").get_by_test_id("card-amount")
        expect(amount).to_have_text("¥50.00")
        box = amount.bounding_box()
        assert card and box and card["x"] <= box["x"] and box["x"] + box["width"] <= card["x"] + card["width"]

        card_in(page, "paid").get_by_test_id("card-claim").click()
        expect(card_in(page, "paid").get_by_test_id("card-assignee")).to_have_text("陈静")
        expect(card_in(other, "paid").get_by_test_id("card-assignee")).to_have_text("陈静", timeout=10_000)

        card_in(page, "paid").get_by_test_id("card-action-accept").click()
        expect(page.get_by_test_id("action-dialog")).to_contain_text("接单")
        page.get_by_test_id("action-confirm").click()
        expect(page.get_by_text(f"订单 {no} 已接单，当前状态：已接单")).to_be_visible()
        expect(card_in(other, "accepted")).to_be_visible(timeout=10_000)
        expect(card_in(other, "paid")).to_have_count(0)

        card_in(page, "accepted").get_by_test_id("card-action-complete").click()
        expect(page.get_by_test_id("action-dialog")).to_contain_text("完成")
        page.get_by_test_id("action-field-provider_ref").fill("ALI2026120199")
        page.get_by_test_id("action-confirm").click()
        expect(page.get_by_text(f"订单 {no} 已完成，当前状态：已完成")).to_be_visible()
        expect(card_in(other, "completed")).to_be_visible(timeout=10_000)
        expect(card_in(other, "accepted")).to_have_count(0)
        save_artifact(other, "kanban-live-other-session.png")
        mine = c.get(f"/api/v1/mp/orders/{order['id']}", headers=auth).json()
        assert mine["status"] == "completed" and mine["fulfilment"]["provider_ref"] == "ALI2026120199"
        save_artifact(page, "kanban.png")
    finally:
        other_ctx.close()
