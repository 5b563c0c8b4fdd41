"""The staff 用户 page's Reflex handlers: who may see users, the list (masked phones, searching a phone that
waits for coupons), a user's detail with its coupons and their history, the export.

States are built with ``tests.support.state_of`` (a real staff session's token where the cookie would put it).
"""

from __future__ import annotations

import json
import re

import sqlalchemy as sa

from gc_admin.audit.state import AuditState
from gc_admin.coupons import service
from gc_admin.customers.state import UsersState
from gc_admin.db import session_scope
from gc_admin.ui.paging import PAGE_SIZE
from gc_admin.users.models import MpUser
from tests.support import DENIED, SETUP, drain, exported, run, sign_in, state_of, toast


# --- the list -------------------------------------------------------------------------------------------

def test_clerk_sees_users_but_not_the_audit_log(team):
    token = sign_in("chen")

    async def scenario():
        users = await state_of(UsersState, token)
        audit = await state_of(AuditState, token)
        return await users.load(), list(users.rows), users.total, await audit.load(), list(audit.rows), audit.total

    users_out, users_rows, users_total, audit_out, audit_rows, audit_total = run(scenario())
    assert users_out is None and users_total == 2
    assert {r["phone"] for r in users_rows} == {"138****5678", "未绑定"}  # masked
    assert {r["wechat"] for r in users_rows} == {"已授权", "—"}
    assert toast(audit_out) == ("error", DENIED) and audit_rows == [] and audit_total == 0


def test_user_export_spans_pages_and_masks_phones(office):
    async def scenario():
        st = await state_of(UsersState, sign_in("kefu"))
        await st.load()
        page_rows = len(st.rows)
        st.phone_q = "1380000001"  # 13800000010 … 13800000019
        await st.search()
        filtered = st.total
        st.phone_q = ""
        await st.search()
        return page_rows, filtered, st.total, await drain(st.export())

    page_rows, filtered, total, events = run(scenario())
    assert page_rows == PAGE_SIZE and total == 25 and filtered == 10
    _, frame = exported(events)
    assert frame.height == 25  # every user, not just the page shown
    assert frame.columns == ["用户ID", "手机号", "微信", "昵称", "城市", "注册时间", "最近登录"]
    assert all(re.fullmatch(r"138\*\*\*\*00\d\d", p) for p in frame["手机号"].to_list())


# --- a user's detail: the coupons the user holds (or that wait for the phone) -------------------------

def test_user_detail_shows_masked_coupons_and_their_history(coupon_shop):
    with session_scope() as s:
        uid = s.execute(sa.text("SELECT id FROM mp_user WHERE phone = '13800000001'")).scalar_one()
        result = service.issue_batch(s, actor=SETUP, source="staff", batch_id="U1", product_code="tpp50",
                                     phones=["13800000001"])
        coupon_id = result.rows()[0]["coupon_ids"][0]
        user = s.get(MpUser, uid)
        service.use_coupon(s, user=user, coupon_id=coupon_id)

    async def scenario():
        users = await state_of(UsersState, sign_in("kefu"))
        await users.load()
        await users.open_user(str(uid))
        await users.show_history(str(coupon_id))
        return users

    users = run(scenario())
    assert users.detail_open and users.detail["phone"] == "138****0001"
    [c] = users.coupons
    assert c["product"] == "淘票票通兑券 50 元" and c["status_label"] == "已使用" and "****" in c["code"]
    assert c["use_by"] != "—" and c["used_at"] != "—"
    actions = [h["action"] for h in users.history]
    assert actions == ["发放", "使用（显示券码）"]
    assert all("SHOP" not in h["summary"] or "****" in h["summary"] for h in users.history)


def test_coupons_waiting_for_an_unregistered_phone_are_found_by_that_phone(coupon_shop):
    """A batch went to a phone nobody has registered yet: searching that phone on 用户 finds its coupons
    (it used to say 暂无数据); a partial number or a registered phone finds users as before."""
    with session_scope() as s:
        service.issue_batch(s, actor=SETUP, source="staff", batch_id="W1", product_code="tpp50",
                            phones=["13900000077"])

    async def scenario():
        users = await state_of(UsersState, sign_in("kefu"))
        users.set_phone_q("139 0000 0077")
        await users.search()
        found = (list(users.rows), users.total, dict(users.waiting))
        opened = await users.open_waiting()
        detail = (dict(users.detail), list(users.coupons), users.detail_open)
        users.set_phone_q("1390000")  # part of the number: no guessing of unregistered phones
        await users.search()
        partial = (list(users.rows), dict(users.waiting))
        users.set_phone_q("13800000001")  # registered: the user row, not a waiting entry
        await users.search()
        registered = (len(users.rows), dict(users.waiting))
        return found, opened, detail, partial, registered

    found, opened, (detail, coupons, is_open), partial, registered = run(scenario())
    rows, total, waiting = found
    assert rows == [] and total == 0
    assert waiting == {"phone": "139****0077", "count": "1", "available": "1"}
    assert opened is None and is_open
    assert detail["phone"] == "139****0077" and detail["id"] == "未注册" and detail["count"] == "1"
    assert [(c["product"], c["status"], c["source"]) for c in coupons] == [("淘票票通兑券 50 元", "available", "后台发放 · W1")]
    assert "****" in coupons[0]["code"] and "13900000077" not in json.dumps(coupons)
    assert partial == ([], {})
    assert registered == (1, {})


def test_user_detail_is_refused_to_roles_without_the_users_section(coupon_shop):
    async def scenario():
        users = await state_of(UsersState, sign_in("picc"))
        return await users.open_user("1"), users.detail_open

    result, opened = run(scenario())
    assert toast(result) == ("error", DENIED) and not opened
