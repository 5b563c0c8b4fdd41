"""The 操作日志 page's Reflex handlers: who may read it, its filters, its export and its labels.

States are built with ``tests.support.state_of`` (a real staff session's token where the cookie would put it).
"""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlmodel import select

from gc_admin.audit import service as audit
from gc_admin.audit.models import AuditLog
from gc_admin.audit.state import AuditState
from gc_admin.core.principal import Actor
from gc_admin.db import session_scope
from gc_admin.integrations.sms.state import SmsState
from gc_admin.ui.paging import PAGE_SIZE
from tests.support import drain, exported, run, sign_in, state_of


@pytest.mark.parametrize("username", ["boss", "mgr"])
def test_admin_and_manager_read_the_audit_log(team, username):
    token = sign_in(username)

    async def scenario():
        audit = await state_of(AuditState, token)
        return await audit.load(), list(audit.rows), audit.total

    out, rows, total = run(scenario())
    assert out is None
    with session_scope() as s:
        assert total == s.exec(select(func.count()).select_from(AuditLog)).one() > 0
    assert rows[0]["action"] == "员工登录"  # newest first: this very sign-in


def test_audit_export_follows_the_filters_beyond_one_page(office):
    with session_scope() as s:
        for i in range(PAGE_SIZE + 5):
            audit.record(s, actor=Actor("staff", "1", "boss"), action="order.accept", target_type="service_order",
                         target_id=i, summary=f"接单 {i}")

    async def scenario():
        st = await state_of(AuditState, sign_in("mgr"))
        await st.set_action("order.accept")
        return st.total, len(st.rows), await drain(st.export())

    total, shown, events = run(scenario())
    assert (total, shown) == (PAGE_SIZE + 5, PAGE_SIZE)
    name, frame = exported(events)
    assert name.startswith("操作日志-") and frame.height == PAGE_SIZE + 5
    assert set(frame["操作"].to_list()) == {"接单"} and frame["对象"].to_list()[0] == f"订单 #{PAGE_SIZE + 4}"


def test_audit_targets_and_sms_channels_show_chinese_labels_with_the_code_beside(office):
    with session_scope() as s:
        audit.record(s, actor=Actor("staff", "1", "boss"), action="stock.imported", target_type="stock_import",
                     target_id=437, summary="导入")

    async def scenario():
        au = await state_of(AuditState, sign_in("boss"))
        await au.load()
        by_target = await state_of(AuditState, sign_in("boss"))
        by_target.target = "券码导入"
        await by_target.search()
        sms = await state_of(SmsState, sign_in("boss"))
        await sms.load()
        return next(r for r in au.rows if r["summary"] == "导入"), by_target.total, sms.rows[0]

    row, found, sms_row = run(scenario())
    assert (row["target"], row["target_code"]) == ("券码导入 #437", "stock_import 437")
    assert found == 2  # the seed import's audit row and this one, found by the label
    assert (sms_row["provider"], sms_row["provider_code"]) == ("站内记录（未真实发送）", "outbox")
