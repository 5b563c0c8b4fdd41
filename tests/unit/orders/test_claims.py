"""Claim leases, 下一单, top-up finishing, after-sales cases and bulk actions — over HTTP where a clerk
would use them, with races on SQLite and PostgreSQL (threads released by a barrier)."""

from __future__ import annotations

import datetime as dt

import pytest

from gc_admin.core.clock import utcnow
from gc_admin.core.errors import Conflict
from gc_admin.core.principal import Actor
from gc_admin.db import session_scope
from gc_admin.orders import flows
from gc_admin.orders import service as orders
from tests.support import api_error, race, scalar, staff_headers, wechat_user, wired
from tests.unit.orders.support import buyer, get, topup_order

pytestmark = pytest.mark.usefixtures("any_db")


@pytest.fixture
def clerks(api, make_staff) -> dict[str, dict[str, str]]:
    for username, role in (("chen", "clerk"), ("wang", "clerk"), ("liu", "service"), ("mgr", "manager")):
        make_staff(username, role)
    return {u: staff_headers(api, u) for u in ("chen", "wang", "liu", "mgr")}


def paid_topup(api, me: dict[str, str], face: int = 5_000, mobile: str = "13812345600") -> dict:
    order = api.post("/api/v1/mp/orders", headers=me, json={"type": "topup", "topup": {"mobile": mobile,
                                                                                         "face_fen": face}}).json()
    paid = api.post("/sim/wechatpay/_pay", json={"prepay_id": order["payment"]["package"].removeprefix("prepay_id=")})
    assert paid.status_code == 200, paid.text
    return order


def action(api, headers, order_id: int, name: str, **body):
    return api.post(f"/api/v1/admin/orders/{order_id}/actions/{name}", headers=headers, json=body)


def test_a_claimed_order_is_refused_to_another_clerk_until_released(api, clerks) -> None:
    me = wechat_user(api, "oClaim00000000000000000001", "13812345600")
    order = paid_topup(api, me)
    chen, wang, mgr = clerks["chen"], clerks["wang"], clerks["mgr"]
    got = action(api, chen, order["id"], "claim")
    assert got.status_code == 200, got.text
    assert got.json()["claim"]["by"] == "chen" and got.json()["claim"]["live"] is True
    for name, body in (("claim", {}), ("accept", {}), ("complete", {"provider_ref": "X1"})):
        msg = api_error(action(api, wang, order["id"], name, **body), 409, "ORDER_CLAIMED_BY_OTHER")
        assert "chen" in msg
    assert api.get("/api/v1/admin/orders", headers=wang, params={"assignee": got.json()["claim"]["by_id"]}
                   ).json()["total"] == 1
    api_error(action(api, wang, order["id"], "release"), 409, "ORDER_CLAIMED_BY_OTHER")
    api_error(action(api, wang, order["id"], "release", override=True), 403, "FORBIDDEN")
    assert action(api, mgr, order["id"], "release", override=True).status_code == 200
    accepted = action(api, wang, order["id"], "accept")
    assert accepted.status_code == 200 and accepted.json()["claim"]["by"] == "wang"
    api_error(action(api, chen, order["id"], "complete", provider_ref="X1"), 409, "ORDER_CLAIMED_BY_OTHER")
    history = [h["action"] for h in accepted.json()["history"]]
    assert history == ["create", "pay", "claim", "release", "accept"]


def test_a_lease_lapses_by_itself(api, clerks) -> None:
    me = wechat_user(api, "oLapse00000000000000000001", "13812345600")
    order = paid_topup(api, me)
    with session_scope() as s:  # chen claimed it 16 minutes ago (lease: 15 minutes)
        orders.claim(s, order_id=order["id"], actor=Actor("staff", "777", "陈"),
                     now=utcnow() - dt.timedelta(minutes=16))
    assert get(order["id"]).claimed_by_name == "陈"
    done = action(api, clerks["wang"], order["id"], "complete", provider_ref="ALI20261201001")
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text


def test_two_clerks_claiming_or_accepting_at_once_one_wins_the_other_is_told_who(api, clerks) -> None:
    me = wechat_user(api, "oRaceC00000000000000000001", "13812345600")
    first, second = paid_topup(api, me), paid_topup(api, me)
    scope = orders.scope_for("clerk")
    clerk = [Actor("staff", "501", "甲"), Actor("staff", "502", "乙")]
    for order, verb in ((first, "claim"), (second, "accept")):
        def work(i: int, order=order, verb=verb):
            if verb == "claim":
                return flows.lease_act(order_id=order["id"], action="claim", actor=clerk[i], scope=scope).claimed_by
            return flows.act(order_id=order["id"], action="accept", actor=clerk[i], scope=scope).claimed_by
        results = race(2, work)
        won = [r for r in results if isinstance(r, str)]
        lost = [r for r in results if isinstance(r, Exception)]
        assert len(won) == 1 and len(lost) == 1, results
        winner = clerk[int(won[0]) - 501].name
        assert isinstance(lost[0], Conflict) and lost[0].code == "ORDER_CLAIMED_BY_OTHER" and winner in lost[0].message
        assert get(order["id"]).claimed_by == won[0]
    assert get(second["id"]).status == "accepted"
    assert scalar("SELECT count(*) FROM order_event WHERE action IN ('claim', 'accept')") == 2


def test_ten_clerks_pressing_next_at_once_get_ten_different_orders(db) -> None:
    user = buyer()
    with wired() as w:
        ids = [topup_order(user, w) for _ in range(12)]
    clerk = [Actor("staff", str(600 + i), f"内勤{i}") for i in range(10)]

    def work(i: int) -> int | None:
        with session_scope() as s:
            got = orders.claim_next(s, actor=clerk[i])
            return got.id if got else None

    results = race(10, work)
    assert all(isinstance(r, int) for r in results), results
    assert len(set(results)) == 10 and set(results) <= set(ids)
    # the oldest were taken first; the two left are the newest
    assert set(ids) - set(results) == set(ids[-2:])
    for i, oid in enumerate(results):
        assert get(oid).claimed_by == str(600 + i)


def test_next_over_http_then_complete_with_the_provider_reference_the_user_sees(api, clerks) -> None:
    me = wechat_user(api, "oNext000000000000000000001", "13812345600")
    order = paid_topup(api, me)
    chen = clerks["chen"]
    nxt = api.post("/api/v1/admin/orders/next", headers=chen)
    assert nxt.status_code == 200 and nxt.json()["order"]["id"] == order["id"], nxt.text
    assert api.post("/api/v1/admin/orders/next", headers=clerks["wang"]).json() == {"order": None}
    api_error(action(api, chen, order["id"], "complete"), 422, "FIELD_REQUIRED")
    api_error(action(api, chen, order["id"], "complete", provider_ref="A1", shop_name="花店"), 422, "INVALID_FIELD")
    api_error(action(api, chen, order["id"], "ship", carrier="顺丰"), 409, "ACTION_NOT_FOR_TYPE")
    done = action(api, chen, order["id"], "complete", provider_ref="ALI2026120100042")
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text
    mine = api.get(f"/api/v1/mp/orders/{order['id']}", headers=me).json()
    assert mine["status"] == "completed" and mine["fulfilment"]["provider_ref"] == "ALI2026120100042"


def test_a_failed_topup_is_refunded_in_full_automatically(api, clerks) -> None:
    me = wechat_user(api, "oFail000000000000000000001", "13812345600")
    order = paid_topup(api, me, face=10_000)
    chen = clerks["chen"]
    api_error(action(api, chen, order["id"], "fail"), 422, "REASON_REQUIRED")
    failed = action(api, chen, order["id"], "fail", reason="运营商维护，无法充值")
    assert failed.status_code == 200, failed.text
    body = failed.json()
    assert body["status"] == "refund_requested" and body["refunded_fen"] == 10_000
    assert [r["status"] for r in body["refunds"]] == ["processing"] and body["refunds"][0]["full"]
    api.post("/sim/wechatpay/_refund", json={"out_refund_no": body["refunds"][0]["out_refund_no"]})
    mine = api.get(f"/api/v1/mp/orders/{order['id']}", headers=me).json()
    assert mine["status"] == "refunded" and mine["fulfilment"]["failed"] is True
    assert [h["action"] for h in mine["history"]][-3:] == ["fail", "request_refund", "refunded"]
    assert scalar("SELECT sum(amount_fen) FROM ledger_entry") == 0


def test_after_sales_case_call_log_cancel_and_refund_the_user_sees_the_outcome(api, clerks) -> None:
    me = wechat_user(api, "oCase000000000000000000001", "13812345600")
    order = paid_topup(api, me)
    liu = clerks["liu"]
    opened = action(api, liu, order["id"], "after_sales", reason="用户称号码填错", notes="用户来电，要求退款")
    assert opened.status_code == 200 and opened.json()["status"] == "after_sales", opened.text
    assert opened.json()["case"]["reason"] == "用户称号码填错" and opened.json()["case"]["notes"] == "用户来电，要求退款"
    mine = api.get(f"/api/v1/mp/orders/{order['id']}", headers=me).json()
    assert mine["fulfilment"]["case"]["status"] == "open" and mine["fulfilment"]["case"]["outcome"] is None
    call = api.post(f"/api/v1/admin/orders/{order['id']}/case/calls", headers=liu,
                    json={"outcome": "no_answer", "called_at": "2026-12-01T10:00:00+08:00"})
    assert call.status_code == 201, call.text
    call = api.post(f"/api/v1/admin/orders/{order['id']}/case/calls", headers=liu,
                    json={"outcome": "reached", "note": "用户同意退款"})
    calls = call.json()["case"]["calls"]
    assert [(c["outcome"], c["by"]) for c in calls] == [("no_answer", "liu"), ("reached", "liu")]
    refund = action(api, liu, order["id"], "refund", amount_fen=5_000, reason="售后：取消并退款")
    assert refund.status_code == 200 and refund.json()["status"] == "refund_requested", refund.text
    api.post("/sim/wechatpay/_refund", json={"out_refund_no": refund.json()["refunds"][0]["out_refund_no"]})
    mine = api.get(f"/api/v1/mp/orders/{order['id']}", headers=me).json()
    assert mine["status"] == "refunded"
    assert (mine["fulfilment"]["case"]["status"], mine["fulfilment"]["case"]["outcome"]) == ("closed", "refunded")
    api_error(api.post(f"/api/v1/admin/orders/{order['id']}/case/calls", headers=liu, json={"outcome": "reached"}),
              409, "CASE_CLOSED")


def test_after_sales_resolved_completes_the_order(api, clerks) -> None:
    me = wechat_user(api, "oRslv000000000000000000001", "13812345600")
    order = paid_topup(api, me)
    liu = clerks["liu"]
    assert action(api, liu, order["id"], "after_sales", reason="用户称未到账").status_code == 200
    done = action(api, liu, order["id"], "resolve", notes="核实已到账，用户确认")
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text
    case = api.get(f"/api/v1/mp/orders/{order['id']}", headers=me).json()["fulfilment"]["case"]
    assert (case["status"], case["outcome"]) == ("closed", "resolved")


def test_bulk_accept_reports_each_order(api, clerks) -> None:
    me = wechat_user(api, "oBulk000000000000000000001", "13812345600")
    a, b, c = (paid_topup(api, me) for _ in range(3))
    assert action(api, clerks["wang"], c["id"], "claim").status_code == 200
    resp = api.post("/api/v1/admin/orders/bulk/accept", headers=clerks["chen"],
                    json={"order_ids": [a["id"], b["id"], c["id"]]})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["done"], out["failed"]) == (2, 1)
    assert [(i["order_id"], i["ok"]) for i in out["items"]] == [(a["id"], True), (b["id"], True), (c["id"], False)]
    assert out["items"][2]["error"]["code"] == "ORDER_CLAIMED_BY_OTHER" and "wang" in out["items"][2]["error"]["message"]
    queue = api.get("/api/v1/admin/orders", headers=clerks["chen"], params={"status": "accepted", "q": "13812345600"})
    assert queue.json()["total"] == 2 and {r["assignee"] for r in queue.json()["items"]} == {"chen"}
