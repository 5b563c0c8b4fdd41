"""订单看板 board through its Reflex handlers: columns, cards with SLA, filters, per-column paging, claims,
bulk accept, and the live feed (a change committed by another unit of work — any worker — reloads the
board at the next tick; nothing shared in process memory)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from gc_admin.core.clock import utcnow
from gc_admin.core.principal import Actor
from gc_admin.db import session_scope
from gc_admin.orders import flows
from gc_admin.orders import service as orders
from gc_admin.orders.kanban import service as kanban
from gc_admin.orders.kanban.state import KanbanState
from gc_admin.orders.state import OrdersState
from tests.support import drain, run, sign_in, state_of, toasts
from tests.unit.orders.support import get, topup_order


def _ids(st, status: str) -> list[str]:
    return [c["id"] for c in st.cards.get(status, [])]


def test_sla_levels_follow_the_per_type_limit() -> None:
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
    ago = lambda m: now - dt.timedelta(minutes=m)  # noqa: E731
    assert kanban.sla_of(type="topup", status="paid", paid_at=ago(10), now=now)[1] == "ok"
    assert kanban.sla_of(type="topup", status="paid", paid_at=ago(25), now=now)[1] == "near"  # 80 % of 30
    assert kanban.sla_of(type="topup", status="accepted", paid_at=ago(31), now=now)[1] == "over"
    assert kanban.sla_of(type="flower", status="paid", paid_at=ago(31), now=now)[1] == "ok"  # 120 minutes
    assert kanban.sla_of(type="topup", status="completed", paid_at=ago(99), now=now) == (None, "")


def test_board_columns_cards_paging_filters_claims_and_bulk(paid) -> None:
    w, coupon_order, user = paid
    ids = [str(topup_order(user, w)) for _ in range(12)]
    with session_scope() as s:  # the oldest top-up has waited 40 minutes: past its 30-minute SLA
        s.execute(text("UPDATE service_order SET paid_at = :t WHERE id = :i"),
                  {"t": utcnow() - dt.timedelta(minutes=40), "i": int(ids[0])})

    async def scenario():
        st = await state_of(KanbanState, sign_in("chen"))
        await st.load()
        first = (dict(st.cols["paid"]), _ids(st, "paid"), dict(st.cards["paid"][0]), _ids(st, "completed"))
        await st.page("paid", 1)
        second = _ids(st, "paid")
        await st.page("paid", -1)
        st.set_q(coupon_order.order_no)
        await st.search()
        found = (_ids(st, "paid"), _ids(st, "completed"))
        await st.clear_filters()
        await st.set_sla("over")
        over = _ids(st, "paid")
        await st.clear_filters()
        await st.claim(ids[1])
        mine = next(c for c in st.cards["paid"] if c["id"] == ids[1])
        await st.set_assignee("me")
        only_mine = _ids(st, "paid")
        await st.clear_filters()
        for i in ids[2:4]:
            await st.toggle(i)
        events = await drain(st.bulk("accept"))
        return first, second, found, over, dict(mine), only_mine, events, _ids(st, "accepted"), st

    first, second, found, over, mine, only_mine, events, accepted, st = run(scenario())
    meta, paid_ids, top, completed = first
    assert meta["count"] == "12" and meta["next"] == "1" and meta["prev"] == ""
    assert paid_ids == ids[:10] and second == ids[10:]  # oldest payment first; 10 cards a page
    assert completed == [str(coupon_order.id)]  # the coupon purchase completed itself
    assert (top["type_label"], top["sla_level"], top["a1"], top["a1_label"], top["claimable"]) == (
        "话费充值", "over", "accept", "接单", "1")
    assert top["amount"] == "¥50.00" and "****" in top["phone"] and "充值号码" in top["essentials"]
    assert found == ([], [str(coupon_order.id)])
    assert over == [ids[0]]
    assert (mine["assignee"], mine["claim"], mine["claimable"]) == ("chen", "mine", "")
    assert only_mine == [ids[1]]
    assert toasts(events) == [("success", "批量接单：2 单已完成")]
    assert set(ids[2:4]) <= set(accepted) and st.selected == []


def test_a_change_made_elsewhere_reaches_an_open_board_at_the_next_tick(paid) -> None:
    w, _, user = paid
    first = str(topup_order(user, w))

    async def open_board():
        st = await state_of(KanbanState, sign_in("chen"))
        await st.load()
        nothing = await st.tick("")
        return st, nothing

    st, nothing = run(open_board())
    assert nothing is None and _ids(st, "paid") == [first]
    second = str(topup_order(user, w))  # a new paid order, committed by another unit of work
    run(st.tick(""))
    assert _ids(st, "paid") == [first, second]
    with session_scope() as s:  # another clerk, elsewhere, claims and accepts the first one
        orders.claim(s, order_id=int(first), actor=Actor("staff", "4242", "另一位内勤"))
    run(st.tick(""))
    assert next(c for c in st.cards["paid"] if c["id"] == first)["claim"] == "other"
    flows.act(order_id=int(first), action="accept", actor=Actor("staff", "4242", "另一位内勤"),
              scope=orders.scope_for("clerk"))
    run(st.tick(""))
    assert _ids(st, "paid") == [second] and _ids(st, "accepted") == [first]
    assert st.cards["accepted"][0]["assignee"] == "另一位内勤"


def test_a_card_action_with_fields_through_the_dialog(paid) -> None:
    w, _, user = paid
    order_id = str(topup_order(user, w))

    async def scenario():
        token = sign_in("chen")
        dialog = await state_of(OrdersState, token)
        await dialog.open_action(order_id, "complete")
        fields = list(dialog.act_fields)
        await drain(dialog.confirm_action({"reason": "", "provider_ref": ""}))
        missing = dialog.act_error
        events = await drain(dialog.confirm_action({"reason": "", "provider_ref": "ALI-778899"}))
        return fields, missing, events

    fields, missing, events = run(scenario())
    assert fields == [{"name": "provider_ref", "label": "充值平台交易单号"}]
    assert missing == "请填写充值平台的交易单号"
    assert toasts(events)[0][0] == "success"
    done = get(int(order_id))
    assert done.status == "completed" and done.fulfilment["provider_ref"] == "ALI-778899"


def test_demo_orders_fill_every_column_of_coupon_purchases_and_top_ups(db) -> None:
    from gc_admin import demo

    with session_scope() as s:
        demo.load(s)
        board = kanban.board(s, filters=kanban.BoardFilters.within(orders.scope_for("clerk")))
        cases = s.exec(text("SELECT count(*) FROM order_case_call")).one()[0]
    counts = {c.status: c.count for c in board}
    for status in ("created", "paid", "accepted", "in_fulfilment", "completed", "refund_requested", "refunded",
                   "after_sales", "cancelled"):
        assert counts[status] >= 1, (status, counts)
    levels = {kanban.sla_of(type=c.type, status=c.status, paid_at=c.paid_at, now=utcnow())[1]
              for col_ in board for c in col_.cards}
    assert {"ok", "near", "over"} <= levels and cases >= 1


def test_each_type_shows_the_columns_its_orders_can_reach_and_no_order_loses_its_column(paid) -> None:
    """A goods order is never 已接单 / 司机已到达 / 履约中 / 待补款, so a supplier's board (goods only) has no such
    columns; the type filter narrows a clerk's board the same way; an order in a status its type cannot reach
    (moved by hand) still gets its column."""
    w, coupon_order, user = paid
    goods = kanban.reachable_statuses("goods")
    assert {"created", "paid", "shipped", "completed", "after_sales", "refund_requested", "refunded",
            "cancelled"} == goods
    assert {"accepted", "arrived", "awaiting_payment"} <= kanban.reachable_statuses("driver")
    assert "shipped" not in kanban.reachable_statuses("coupon_purchase")
    assert "arrived" not in kanban.reachable_statuses("flower")
    topup = str(topup_order(user, w))

    async def columns(who: str, type_f: str = "all") -> list[str]:
        st = await state_of(KanbanState, sign_in(who))
        await st.load()
        if type_f != "all":
            await st.set_type(type_f)
        return list(st.shown), dict(st.cols)

    clerk_all, cols = run(columns("chen"))
    assert clerk_all == list(kanban.BOARD_STATUSES) and set(cols) == set(clerk_all)
    clerk_goods, cols = run(columns("chen", "goods"))
    assert clerk_goods == [st for st in kanban.BOARD_STATUSES if st in goods] and set(cols) == set(clerk_goods)
    with session_scope() as s:  # a goods order put in 已接单 by hand: its column comes back
        s.execute(text("UPDATE service_order SET type = 'goods', status = 'accepted' WHERE id = :i"), {"i": int(topup)})
    with_odd, _ = run(columns("chen", "goods"))
    assert "accepted" in with_odd and "arrived" not in with_odd
