"""商品管理's Reflex handlers: a supplier sees and manages only its own goods (create, edit price and stock,
上架 / 下架, photo checked by content); a manager sees every supplier's and picks whose item it adds; a clerk
reads; another supplier's code is refused like a missing one."""

from __future__ import annotations

from typing import Any

import pytest

from gc_admin.orders.suppliers.state import GoodsState
from tests.support import rows, run, scalar, sign_in, state_of, toasts, upload_file
from tests.unit.orders.flowers.support import png
from tests.unit.orders.goods_support import goods_world


@pytest.fixture
def world(make_staff, private_uploads) -> None:
    goods_world(make_staff)
    make_staff("mgr", "manager")


def _events(x: Any) -> list[Any]:
    return x if isinstance(x, list) else [x]


def test_a_supplier_manages_only_its_own_goods(world) -> None:
    async def scenario():
        st = await state_of(GoodsState, sign_in("sup"))
        await st.load()
        assert st.can_edit and not st.pick_supplier and "桂林香氛工坊" in st.note
        assert [(r["code"], r["stock"], r["exchange"]) for r in st.rows] == [("aroma1", "5", "aroma_x")]
        st.open_create(True)
        await st.create({"code": "aroma2", "name": "香薰补充液", "price": "25", "stock": "30", "exchange": "",
                         "on_sale": "on", "supplier_code": "taoci"})  # a supplier adds for itself, whatever it sends
        assert not st.create_open and [r["code"] for r in st.rows] == ["aroma2", "aroma1"]
        st.open_edit("aroma1")
        await st.save_edit({"name": "车载香薰", "price": "99.9", "exchange": "aroma_x，aroma_y", "stock": "-2"})
        assert st.edit_code == "" and st.rows[1]["price"] == "¥99.90" and st.rows[1]["stock"] == "3"
        st.open_edit("aroma1")
        await st.save_edit({"name": "车载香薰", "price": "99.9", "exchange": "", "stock": "-4"})
        assert "库存不足" in st.form_error and st.edit_code == "aroma1"
        st.close_edit(False)
        st.open_photo("aroma1")
        await st.upload_photo([upload_file(b"GIF89a\x01\x00\x01\x00", "x.png")])
        assert "图片" in st.form_error
        events = _events(await st.upload_photo([upload_file(png(300, 200), "car.png")]))
        assert [m for kind, m in toasts(events) if kind == "success"] and st.photo_code == ""
        assert st.rows[1]["image_url"].startswith("/api/v1/mp/goods/aroma1/image?v=") and st.rows[1]["size"] == "300×200"
        await st.set_on_sale("aroma1", False)
        assert st.rows[1]["on_sale"] == ""
        # another supplier's item: refused like a missing one, nothing changes
        assert toasts([await st.set_on_sale("mug", False)])[0][0] == "error"
        st.photo_code = "mug"
        await st.upload_photo([upload_file(png(), "m.png")])
        assert "不存在" in st.form_error

    run(scenario())
    assert rows("SELECT code, supplier_code, price_fen, stock, on_sale FROM goods ORDER BY code") == [
        ("aroma1", "xiangfen", 9_990, 3, False), ("aroma2", "xiangfen", 2_500, 30, True),
        ("mug", "taoci", 3_000, 2, True)]
    assert scalar("SELECT image_sha256 IS NULL FROM goods WHERE code = 'mug'")


def test_a_manager_sees_all_and_a_clerk_reads(world) -> None:
    async def scenario():
        mgr = await state_of(GoodsState, sign_in("mgr"))
        await mgr.load()
        assert mgr.can_edit and mgr.pick_supplier and mgr.note == ""
        assert {r["code"] for r in mgr.rows} == {"aroma1", "mug"}
        assert {x["code"] for x in mgr.suppliers} == {"xiangfen", "taoci"}
        await mgr.create({"code": "teapot", "name": "坭兴陶壶", "price": "199", "stock": "4", "exchange": ""})
        assert mgr.form_error == "请选择供货商"
        await mgr.create({"code": "teapot", "name": "坭兴陶壶", "price": "199", "stock": "4", "exchange": "",
                          "supplier_code": "taoci"})
        assert mgr.form_error == "" and mgr.total == 3
        await mgr.set_active_filter("inactive")  # its 上架 box was not ticked
        assert [r["code"] for r in mgr.rows] == ["teapot"]

        clerk = await state_of(GoodsState, sign_in("chen"))
        await clerk.load()
        assert not clerk.can_edit and clerk.total == 3
        refused = [await clerk.set_on_sale("mug", False),
                   await clerk.create({"code": "x1", "name": "x", "price": "1", "stock": "0"})]
        assert [kind for kind, _ in toasts(refused)] == ["error", "error"]

    run(scenario())
    assert rows("SELECT supplier_code, on_sale FROM goods WHERE code IN ('teapot', 'mug') ORDER BY code") == [
        ("taoci", True), ("taoci", False)]
