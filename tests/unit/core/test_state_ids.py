"""Ids the dashboard's event handlers receive from the browser are parsed with ``core.params.parse_id``.

A Reflex event can be sent without the page, with any argument: ``int()`` took ``"9" * 30`` (and the
database then failed: SQLite cannot bind it) or ``"１２"``; some handlers did not catch even ``"abc"``.
Every such handler now answers with a Chinese error and changes nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from gc_admin.accounts.state import StaffState
from gc_admin.coupons.issuance.state import IssuanceState
from gc_admin.coupons.stock.state import StockImportState
from gc_admin.core.errors import InvalidInput
from gc_admin.core.params import ID_MAX, parse_id
from gc_admin.customers.state import UsersState
from gc_admin.orders.state import OrdersState
from gc_admin.partners.state import PartnersState
from gc_admin.payments.state import ReconcileState
from tests.support import upload_file, run, scalar, sign_in, state_of, toasts

BAD_IDS = ["9" * 30, str(2**63), str(ID_MAX + 1), "0", "-1", "abc", "", " 12", "1_0", "１２", "1e3", "12.0"]
CJK = r"[\u4e00-\u9fff]"


def test_parse_id_takes_ascii_digits_in_the_column_range() -> None:
    assert parse_id("1") == 1 and parse_id(str(ID_MAX)) == ID_MAX and parse_id(42) == 42
    for bad in [*BAD_IDS, True, None, 2**63, 0, 1.0]:
        with pytest.raises(InvalidInput) as err:
            parse_id(bad)
        assert err.value.code == "INVALID_ID" and "编号不正确" in err.value.message


# (state class, handler name, how to call it with an id, the field an error lands in when it is not a toast)
HANDLERS: list[tuple[type, str, Callable[[Any, str], Any], str | None]] = [
    (StaffState, "change_role", lambda st, i: st.change_role(i, "clerk"), None),
    (StaffState, "toggle_enabled", lambda st, i: st.toggle_enabled(i, False), None),
    (StaffState, "open_reset", lambda st, i: st.open_reset(i, "someone"), None),
    (OrdersState, "open_order", lambda st, i: st.open_order(i), None),
    (OrdersState, "sync_refund", lambda st, i: st.sync_refund(i), None),
    (PartnersState, "revoke", lambda st, i: st.revoke(i), None),
    (ReconcileState, "open_run", lambda st, i: st.open_run(i), None),
    (UsersState, "open_user", lambda st, i: st.open_user(i), None),
    (UsersState, "show_history", lambda st, i: st.show_history(i), "detail_error"),
    (IssuanceState, "download_result", lambda st, i: st.download_result(i), None),
    (StockImportState, "download_report", lambda st, i: st.download_report(i), None),
]


async def _call(result: Any) -> list[Any]:
    if inspect.isasyncgen(result):
        return [x async for x in result]
    if inspect.isawaitable(result):
        return [await result]
    return [result]


@pytest.mark.parametrize(("cls", "name", "call", "field"), HANDLERS, ids=[f"{c.__name__}.{n}" for c, n, _, _ in HANDLERS])
def test_a_bad_id_from_the_browser_is_a_chinese_error(make_staff, cls, name, call, field) -> None:
    make_staff("boss", "admin")
    token = sign_in("boss")
    audit_before = scalar("SELECT count(*) FROM audit_log")

    async def scenario() -> list[tuple[Any, list[Any]]]:
        out = []
        for bad in BAD_IDS:
            if name == "show_history" and bad == "":
                continue  # "" is the open row's id when none is open: the click closes it
            st = await state_of(cls, token)
            if cls is OrdersState:
                st.detail = {"id": "1"}  # sync_refund: the open order (not found either way)
            out.append((st, await _call(call(st, bad))))
        return out

    for st, events in run(scenario()):
        if field is not None:
            assert getattr(st, field), (name, events)
            continue
        shown = toasts(events)
        assert shown and shown[0][0] == "error", (name, events)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in shown[0][1]), shown
    if cls is StaffState:
        assert not st.reset_open
    assert scalar("SELECT count(*) FROM audit_log") == audit_before


def test_other_numbers_from_the_browser_do_not_raise(make_staff) -> None:
    from gc_admin.coupons.stock.state import StockImportState as Imports

    make_staff("boss", "admin")
    token = sign_in("boss")

    async def scenario() -> tuple[list[str], list[int]]:
        issuance = await state_of(IssuanceState, token)
        per_phone = []
        for value in ["²", "1" * 5000, "٣", "0", "21", "3"]:
            issuance.set_per_phone(value)
            per_phone.append(issuance.per_phone)
        imports = await state_of(Imports, token)
        pct = []
        for prog in [{"progress": 1e308}, {"progress": float("nan")}, {"progress": "x"}, {"progress": 0.5}]:
            imports.on_progress(prog)
            pct.append(imports.upload_pct)
        return per_phone, pct

    per_phone, pct = run(scenario())
    assert per_phone == ["1", "1", "1", "1", "1", "3"]
    assert pct == [0, 0, 0, 50]


# --- dates a clerk types: 0001-01-01 / 9999-12-31 overflowed the Shanghai-midnight-to-UTC conversion ----

FAR = ["0001-01-01", "9999-12-31"]


@pytest.mark.parametrize("day", FAR)
def test_far_dates_in_the_dashboard_filters_are_a_message_not_an_exception(make_staff, day) -> None:
    from gc_admin.audit.state import AuditState
    from gc_admin.coupons.stock.state import StockCodesState
    from gc_admin.payments.state import LedgerState

    make_staff("boss", "admin")
    token = sign_in("boss")

    async def scenario() -> dict[str, Any]:
        ledger = await state_of(LedgerState, token)
        ledger.set_date_from(day)
        await ledger.load()
        everything = await state_of(AuditState, token)
        await everything.load()
        audit = await state_of(AuditState, token)
        audit.set_since(day)
        audit.set_until(day)
        await audit.load()
        codes = await state_of(StockCodesState, token)
        codes.set_exp_from(day)
        codes.set_exp_to(day)
        await codes.load()
        recon = await state_of(ReconcileState, token)
        recon.set_bill_date(day)
        await _call(recon.fetch_bill())
        fetched = recon.error
        recon.error = ""
        upload = await _call(recon.upload_bill([upload_file(b"")]))
        imports = await state_of(StockImportState, token)
        imports.set_expiry_date(day)
        imports.products = [{"code": "tpp50", "name": "淘票票"}]
        imports.product_code = "tpp50"
        return {"ledger": ledger.error, "audit": (audit.total, everything.total), "codes": codes.error, "fetch": fetched,
                "upload": recon.error, "upload_events": upload, "import": imports._check_form()}

    out = run(scenario())
    assert "2000-01-01" in out["ledger"], out  # the range is in the message
    assert out["audit"][0] == out["audit"][1] > 0  # a day out of range is no filter, like any junk
    assert out["codes"] == ""
    assert "2000-01-01" in out["fetch"] and "2000-01-01" in out["upload"], out
    assert isinstance(out["import"], str) and "2000-01-01" in out["import"], out
