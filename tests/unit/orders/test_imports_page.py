"""订单导入与批量发货 page states, as a signed-in member drives them: a supplier previews a shipment sheet and
ships its own orders; a clerk maps a channel's columns, previews and imports its orders; roles without the
right see nothing and change nothing."""

from __future__ import annotations

from gc_admin.orders.imports.state import OrderImportsState
from tests.support import drain, run, scalar, sign_in, state_of, upload_file, wechat_user
from tests.unit.orders.goods_support import give_voucher, goods_body, goods_world
from tests.unit.orders.test_imports import MAPPING, SHEET


def test_supplier_ships_by_sheet_and_clerk_imports_orders(api, make_staff, private_uploads) -> None:
    goods_world(make_staff)
    me = wechat_user(api, "oPage000000000000000000001", "13812345601")
    give_voucher("13812345601")
    vid = api.get("/api/v1/mp/coupons", headers=me).json()["items"][0]["id"]
    order = api.post("/api/v1/mp/orders", json=goods_body(exchange_coupon_id=vid), headers=me).json()
    sheet = f"订单号,快递公司,快递单号\n{order['order_no']},顺丰速运,SF777\n".encode()
    make_staff("picc_ins", "insurer")

    async def go():
        sup = await state_of(OrderImportsState, sign_in("sup"))
        await drain(sup.load())
        assert sup.can_ship and not sup.can_import
        await drain(sup.preview_shipments([upload_file(sheet, "发货.csv")]))
        assert sup.ship_ready and sup.ship_rows[0]["outcome"] == "将发货", (sup.error, sup.ship_rows)
        assert scalar("SELECT status FROM service_order WHERE id = :i", i=order["id"]) == "paid"
        await drain(sup.apply_shipments())
        assert scalar("SELECT status FROM service_order WHERE id = :i", i=order["id"]) == "shipped"
        assert "发货 1 单" in sup.ship_summary and not sup.ship_ready
        # the other supplier previews the same sheet: the order is not theirs
        other = await state_of(OrderImportsState, sign_in("sup2"))
        await drain(other.preview_shipments([upload_file(sheet, "发货.csv")]))
        assert other.ship_rows[0]["message"] == "订单不存在" and not other.ship_ready
        # nor may they import orders
        other.source = "meituan"
        await drain(other.preview_orders([upload_file(SHEET, "o.csv")]))
        assert other.imp_rows == []

        clerk = await state_of(OrderImportsState, sign_in("chen"))
        await drain(clerk.load())
        assert clerk.can_ship and clerk.can_import
        clerk.set_source("meituan")
        for f, h in MAPPING.items():
            clerk.set_map_field(f, h)
        await drain(clerk.save_mapping())
        assert clerk.error == ""
        await drain(clerk.preview_orders([upload_file(SHEET, "美团.csv")]))
        assert clerk.imp_ready and "将导入 3 单" in clerk.imp_summary
        await drain(clerk.apply_orders())
        assert scalar("SELECT count(*) FROM service_order WHERE source = 'meituan'") == 3
        again = await state_of(OrderImportsState, sign_in("chen"))
        again.set_source("meituan")
        await drain(again.load_mapping())
        assert again.mapping == MAPPING

        ins = await state_of(OrderImportsState, sign_in("picc_ins"))
        await drain(ins.load())
        assert not ins.can_ship and not ins.can_import
        await drain(ins.preview_shipments([upload_file(sheet, "发货.csv")]))
        assert ins.ship_rows == []

    run(go())
