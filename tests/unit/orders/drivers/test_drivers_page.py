"""司机管理 page state: the dispatcher lists, adds, rests and disables drivers; a clerk is refused."""

from __future__ import annotations

from gc_admin.db import session_scope
from gc_admin.orders.drivers.state import DriversState
from tests.support import DENIED, run, scalar, sign_in, state_of, toast


def test_the_dispatcher_manages_the_roster(db, make_staff) -> None:
    make_staff("diao", "dispatcher")
    make_staff("chen", "clerk")

    async def scenario():
        st = await state_of(DriversState, sign_in("diao"))
        await st.load()
        empty = st.total
        await st.create({"name": "李师傅", "phone": "13700000001"})
        added = (st.total, dict(st.rows[0]), st.create_open)
        await st.create({"name": "重复", "phone": "13700000001"})
        dup = st.form_error
        off = toast(await st.set_status(st.rows[0]["id"], "off"))
        rested = st.rows[0]["status_label"]
        await st.filter_status("available")
        none_available = st.total
        await st.filter_status("all")
        disabled = toast(await st.set_active(st.rows[0]["id"], False))
        bad = toast(await st.set_status(st.rows[0]["id"], "busy"))
        clerk = await state_of(DriversState, sign_in("chen"))
        refused = toast(await clerk.create({"name": "x", "phone": "13700000002"}))
        return empty, added, dup, off, rested, none_available, disabled, bad, refused, clerk.rows

    empty, added, dup, off, rested, none_available, disabled, bad, refused, clerk_rows = run(scenario())
    assert empty == 0
    assert added[0] == 1 and added[1]["name"] == "李师傅" and added[1]["phone"] == "137****0001"
    assert "已在名册中" in dup
    assert off == ("success", "已设为休息") and rested == "休息" and none_available == 0
    assert disabled == ("success", "已停用")
    assert bad[0] == "error"
    assert refused == ("error", DENIED) and clerk_rows == []
    with session_scope():
        assert scalar("SELECT count(*) FROM driver") == 1
        assert scalar("SELECT active FROM driver") in (False, 0)
