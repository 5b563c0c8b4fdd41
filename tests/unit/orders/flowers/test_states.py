"""鲜花管理's Reflex handlers: a clerk reads the catalogue, a manager creates, edits, switches 上架 and uploads a
photo (checked by content), and whoever may not gets a refusal that changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from gc_admin.orders.flowers.state import FlowersState
from tests.support import DENIED, rows, run, scalar, sign_in, state_of, toasts, upload_file
from tests.unit.orders.flowers.support import png


@pytest.fixture
def staff(make_staff, private_uploads) -> None:
    for username, role in (("mgr", "manager"), ("chen", "clerk"), ("picc", "insurer")):
        make_staff(username, role)


def _events(x: Any) -> list[Any]:
    return x if isinstance(x, list) else [x]


def test_a_manager_builds_the_catalogue_and_a_clerk_reads_it(staff, private_uploads):
    async def scenario():
        st = await state_of(FlowersState, sign_in("mgr"))
        await st.load()
        assert st.can_edit and st.rows == [] and "可能与图片略有不同" in st.note
        st.open_create(True)
        await st.create({"code": "Rose-11", "name": "红玫瑰 11 枝", "price": "150", "description": "", "sort": "1",
                         "active": "on"})
        assert not st.create_open and [r["code"] for r in st.rows] == ["Rose-11"]
        assert st.rows[0]["price"] == "¥150.00" and st.rows[0]["image_url"] == ""
        # an invalid form stays open with the reason
        st.open_create(True)
        await st.create({"code": "x", "name": "", "price": "12.345", "sort": "0"})
        assert st.create_open and "价格" in st.form_error
        st.open_create(True)
        await st.create({"code": "rose-11", "name": "重复", "price": "99", "sort": "0"})
        assert "已存在" in st.form_error
        # edit the price
        st.open_edit("Rose-11")
        assert st.edit["price_yuan"] == "150"
        await st.save_edit({"name": "红玫瑰 11 枝", "price": "168.8", "description": "卡罗拉", "sort": "1"})
        assert st.edit_code == "" and st.rows[0]["price"] == "¥168.80"
        # upload a photo; a file that is not one is refused with the reason
        st.open_photo("Rose-11")
        await st.upload_photo([upload_file(b"<svg onload=alert(1)>", "x.png")])
        assert "图片" in st.form_error and st.photo_code == "Rose-11"
        events = _events(await st.upload_photo([upload_file(png(800, 600), "rose.png")]))
        assert [m for kind, m in toasts(events) if kind == "success"] and st.photo_code == ""
        assert st.rows[0]["image_url"].startswith("/api/v1/mp/bouquets/Rose-11/image?v=")
        assert st.rows[0]["size"] == "800×600"
        # 下架
        await st.set_active("Rose-11", False)
        assert st.rows[0]["active"] == ""
        await st.set_active_filter("active")
        assert st.rows == [] and st.total == 0

        clerk = await state_of(FlowersState, sign_in("chen"))
        await clerk.load()
        assert not clerk.can_edit and clerk.total == 1
        refused = [await clerk.create({"code": "lily", "name": "百合", "price": "99", "sort": "0"}),
                   await clerk.set_active("Rose-11", True)]
        clerk.photo_code = "Rose-11"
        refused.append(await clerk.upload_photo([upload_file(png(), "p.png")]))
        assert all(kind == "error" for kind, _ in toasts(refused)) and len(toasts(refused)) == 3

    run(scenario())
    assert scalar("SELECT count(*) FROM bouquet") == 1
    assert rows("SELECT active, price_fen FROM bouquet") == [(False, 16_880)]
    assert [a for (a,) in rows("SELECT action FROM audit_log WHERE target_type = 'bouquet' ORDER BY id")] == [
        "bouquet.created", "bouquet.updated", "bouquet.image_set", "bouquet.updated"]


@pytest.mark.parametrize("who", ["signed-out", "picc"])
def test_who_may_not_use_the_section_gets_nothing(staff, who):
    token = "" if who == "signed-out" else sign_in(who)

    async def scenario():
        st = await state_of(FlowersState, token)
        out = [await st.load(), await st.create({"code": "x-1", "name": "x", "price": "99", "sort": "0"}),
               await st.set_active("x-1", True)]
        st.photo_code = "x-1"
        out.append(await st.upload_photo([upload_file(png(), "p.png")]))
        assert st.rows == [] and not st.can_edit
        return out

    out = run(scenario())
    if who == "signed-out":  # nothing to toast: the page guard sends the browser to sign in
        assert out == [None] * 4
    else:
        assert toasts(out) == [("error", DENIED)] * 4
    assert scalar("SELECT count(*) FROM bouquet") == 0


def test_the_page_builds():
    from gc_admin.orders.flowers.page import flowers_page

    rendered = str(flowers_page().render())
    assert "bouquet-table" in rendered and "bouquet-note" in rendered
