"""What every list page does alike (``ui.paging.PagedMixin``): its Excel export checks the role on the server
and exports nothing signed out; a header click sorts ascending, descending, then back; a sort key the list
does not offer is ignored. Each page's own list (what its export holds, its labels) is tested with its feature.

States are built with ``tests.support.state_of`` (a real staff session's token where the cookie would put it);
handlers are awaited directly, exactly as the event loop would run them.
"""

from __future__ import annotations

import pytest

from gc_admin.accounts.state import StaffState
from gc_admin.audit.state import AuditState
from gc_admin.coupons.issuance.state import IssuanceState
from gc_admin.coupons.stock.state import StockCodesState
from gc_admin.customers.state import UsersState
from gc_admin.integrations.sms.state import SmsState
from gc_admin.orders.state import OrdersState
from gc_admin.payments.state import LedgerState
from tests.support import DENIED, downloads, drain, run, sign_in, state_of, toasts


# --- the role is checked on the server --------------------------------------------------------------------

def test_a_clerks_direct_export_of_a_section_it_may_not_use_does_nothing(office):
    token = sign_in("chen")  # a clerk: no 操作日志, no 流水

    async def scenario():
        out = {}
        for cls in (AuditState, LedgerState):
            st = await state_of(cls, token)
            out[cls.__name__] = (await drain(st.export()), st.exporting)
        return out

    for name, (events, exporting) in run(scenario()).items():
        assert downloads(events) == [], name
        assert toasts(events) == [("error", DENIED)], name
        assert not exporting


@pytest.mark.parametrize("cls", [OrdersState, UsersState, StockCodesState, AuditState, IssuanceState, LedgerState])
def test_signed_out_exports_nothing(office, cls):
    async def scenario():
        st = await state_of(cls, "")
        return await drain(st.export())

    assert run(scenario()) == [None]


def test_service_role_may_not_export_codes_and_a_supplier_gets_no_orders(office):
    async def scenario():
        codes = await state_of(StockCodesState, sign_in("kefu"))
        orders = await state_of(OrdersState, sign_in("gys"))
        return await drain(codes.export()), await drain(orders.export())

    codes, orders = run(scenario())
    assert downloads(codes) == [] and toasts(codes) == [("error", DENIED)]
    assert downloads(orders) == [] and toasts(orders) == [("error", "没有可导出的订单")]


# --- sortable headers ----------------------------------------------------------------------------------------

def test_a_header_click_sorts_ascending_then_descending_then_back_to_the_default(office):
    async def scenario():
        st = await state_of(OrdersState, sign_in("chen"))
        await st.load()
        seen = [(st.sort, [r["order_no"] for r in st.rows])]
        st.page = 2
        for _ in range(3):
            await st.sort_by("created_at")
            seen.append((st.sort, [r["order_no"] for r in st.rows], st.page))
        return seen

    default, asc, desc, back = run(scenario())
    assert default[0] == "" and [r[0] for r in (asc, desc, back)] == ["created_at", "-created_at", ""]
    assert asc[2] == desc[2] == 1  # a new order starts at the first page
    assert asc[1][0] == "GC0024" and desc[1][0] == "GC0000"  # created 24 minutes ago … just now
    assert back[1] == default[1]


def test_a_sort_key_the_list_does_not_offer_is_ignored(office):
    async def scenario():
        out = {}
        for cls, bad in [(OrdersState, "phone"), (UsersState, "openid"), (StockCodesState, "code"),
                         (SmsState, "content"), (StaffState, "password_hash"), (AuditState, "before")]:
            st = await state_of(cls, sign_in("boss"))
            await st.load()
            before = list(st.rows)
            result = await st.sort_by(bad)
            out[cls.__name__] = (result, st.sort, st.rows == before)
        return out

    for name, (result, sort, unchanged) in run(scenario()).items():
        assert (result, sort, unchanged) == (None, "", True), name


# --- the issuance preview names its bad lines --------------------------------------------------------------
