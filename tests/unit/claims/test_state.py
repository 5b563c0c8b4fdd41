"""The 返现审核 page's handlers, driven as the browser drives them (keys), on a real staff session:
open the queue, approve with a then Enter (paid through the Alipay simulator), reject with r, a digit,
Enter (coupon back), zoom/rotate; a role without the section is refused."""

from __future__ import annotations

from gc_admin.claims.state import ClaimsState
from tests.support import drain, rows, run, sign_in, state_of, toasts
from tests.unit.claims.support import filed_claim, staff_world, wechat_receipt


def test_a_clerk_reviews_with_the_keyboard(api, make_staff, claims_env):
    staff_world(make_staff)
    first = filed_claim(api, client_ref="s1")
    second = filed_claim(api, phone="13900000002", client_ref="s2", amount_paid_fen=13000,
                         images=[wechat_receipt(txn="4200111", mch_no="M2", merchant="中国石油桂林加油站")])

    async def scenario():
        st = await state_of(ClaimsState, sign_in("chen"))
        await st.load()
        assert [r["id"] for r in st.rows] == [str(first["id"]), str(second["id"])]
        assert st.claim["id"] == str(first["id"]) and st.claim["amount"] == "¥128.00"
        assert st.images[0]["url"].endswith(f"/claims/{first['id']}/images/1")
        await st.key("+")
        await st.key("o")
        assert (st.zoom, st.rotate) == (125, 90)
        await st.key("a")
        assert st.mode == "approve"
        approved = toasts(await drain(st.key("Enter")))
        await st.key("j")
        assert st.claim["id"] == str(second["id"])
        await st.key("r")
        await st.key("2")
        rejected = toasts(await drain(st.key("Enter")))
        return approved, rejected

    approved, rejected = run(scenario())
    assert approved == [("success", f"申请 #{first['id']} 已通过并打款 ¥50.00")]
    assert rejected == [("success", f"申请 #{second['id']} 已驳回，返现券已退回用户")]
    assert rows("SELECT id, status FROM claim ORDER BY id") == [(first["id"], "paid"), (second["id"], "rejected")]
    assert rows("SELECT status FROM coupon ORDER BY id") == [("used",), ("available",)]


def test_a_role_without_the_section_is_refused(api, make_staff, claims_env):
    staff_world(make_staff)
    filed_claim(api)

    async def scenario():
        st = await state_of(ClaimsState, sign_in("kefu"))
        out = toasts(await drain(st.load()))
        return out, st.rows

    out, shown = run(scenario())
    assert out == [("error", "没有权限执行此操作，或登录已失效")] and shown == []


def test_the_queue_follows_new_claims_and_other_clerks_decisions_live(api, make_staff, claims_env):
    """The page's 1 s tick: a claim filed meanwhile appears without a reload, the open claim stays open;
    another clerk's decision takes a claim out of the queue; nothing moves while a confirmation is open."""
    from tests.support import staff_headers

    staff_world(make_staff)
    first = filed_claim(api, client_ref="s1")

    async def scenario():
        st = await state_of(ClaimsState, sign_in("chen"))
        await st.load()
        assert [r["id"] for r in st.rows] == [str(first["id"])]
        assert await st.tick() is None and st.claim["id"] == str(first["id"])  # nothing moved
        return st

    st = run(scenario())
    second = filed_claim(api, phone="13900000002", client_ref="s2", amount_paid_fen=13000,
                         images=[wechat_receipt(txn="4200111", mch_no="M2", merchant="中国石油桂林加油站")])

    async def later():
        await st.tick()
        return [r["id"] for r in st.rows], st.claim.get("id"), st.total

    assert run(later()) == ([str(first["id"]), str(second["id"])], str(first["id"]), 2)
    liu = staff_headers(api, "liu")
    assert api.post(f"/api/v1/admin/claims/{second['id']}/reject", json={"reason": "amount_mismatch"},
                    headers=liu).status_code == 200
    st.mode = "reject"  # a confirmation is open: the queue waits
    assert run(later()) == ([str(first["id"]), str(second["id"])], str(first["id"]), 2)
    st.mode = ""
    assert run(later()) == ([str(first["id"])], str(first["id"]), 1)
