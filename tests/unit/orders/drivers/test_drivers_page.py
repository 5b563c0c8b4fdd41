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


def test_the_dispatcher_dispatches_and_settles_from_the_page(db, make_staff) -> None:
    from gc_admin.orders import flows
    from tests.support import toasts, wired
    from tests.unit.orders.drivers.support import booking
    from tests.unit.orders.support import buyer

    make_staff("diao", "dispatcher")
    user = buyer()
    with wired():
        with session_scope() as s:
            order = flows.create_order(s, user=user, body={"type": "driver", "details": booking()})

        async def scenario():
            st = await state_of(DriversState, sign_in("diao"))
            await st.create({"name": "李师傅", "phone": "13700000001"})
            seen = [(r["order_no"], r["can_assign"], r["can_hand_off"]) for r in st.live]
            free = list(st.available)
            st.pick(st.live[0]["id"], st.live[0]["order_no"], "assign")
            none_chosen = toast(await st.do_assign())
            st.set_assign_driver(free[0]["id"])
            assigned = toast(await st.do_assign())
            after_assign = (st.live[0]["who"], st.live[0]["can_arrive"], st.available)
            arrived = toast(await st.step(st.live[0]["id"], "arrive"))
            started = toast(await st.step(st.live[0]["id"], "start"))
            st.pick(st.live[0]["id"], st.live[0]["order_no"], "fee")
            st.set_fee_yuan("88.123")
            bad_fee = toast(await st.do_set_fee())
            st.set_fee_yuan("88.5")
            settled = toasts([await st.do_set_fee()])
            return seen, free, none_chosen, assigned, after_assign, arrived, started, bad_fee, settled, list(st.live)

        seen, free, none_chosen, assigned, after, arrived, started, bad_fee, settled, live = run(scenario())
    assert seen == [(order.order_no, "1", "1")] and [d["label"] for d in free] == ["李师傅（137****0001）"]
    assert none_chosen == ("error", "请选择司机") and assigned == ("success", "已指派司机")
    assert after == ("李师傅", "1", [])
    assert arrived == ("success", "司机已到达") and started == ("success", "已开始服务")
    assert bad_fee[0] == "error"
    assert settled == [("success", "已结算车费 ¥88.50")]
    assert [r["status"] for r in live] == ["awaiting_payment"]
    assert scalar("SELECT payable_fen FROM service_order WHERE id = :i", i=order.id) == 8_850
    assert scalar("SELECT status FROM driver") == "available"
