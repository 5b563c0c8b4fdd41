"""The list pages' Reflex handlers: sortable headers, Excel exports of the filtered rows (role checked on the
server, codes masked), Chinese labels where a person looks, and the issuance preview naming its bad lines.

States are built as in ``test_states.py`` (a real staff session's token where the cookie would put it);
handlers are awaited directly, exactly as the event loop would run them.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import json
import re
from typing import Any

import polars as pl
import pytest
import reflex as rx
from sqlmodel import select

from gc_admin.accounts import service as accounts
from gc_admin.accounts.models import StaffUser
from gc_admin.accounts.state import StaffState
from gc_admin.audit import service as audit
from gc_admin.audit.service import Actor
from gc_admin.audit.state import AuditState
from gc_admin.config import get_settings
from gc_admin.core.clock import utcnow
from gc_admin.coupons import service as coupons
from gc_admin.coupons.catalog.state import ProductsState
from gc_admin.coupons.issuance.state import IssuanceState
from gc_admin.coupons.stock.state import StockCodesState
from gc_admin.customers.state import UsersState
from gc_admin.db import session_scope
from gc_admin.integrations.sms.models import SmsMessage
from gc_admin.integrations.sms.state import SmsState
from gc_admin.orders.state import OrdersState
from gc_admin.partners.state import PartnersState
from gc_admin.payments.state import LedgerState
from gc_admin.ui.auth import AuthState
from gc_admin.ui.paging import PAGE_SIZE
from gc_admin.users.models import MpUser
from tests.unit.test_list_sorting import insert_order

DENIED = "没有权限执行此操作，或登录已失效"
SETUP = Actor("system", None, "测试")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- plumbing ---------------------------------------------------------------------------------------------

def run(coro):
    return asyncio.run(coro)


def sign_in(username: str, password: str = "secret2026") -> str:
    with session_scope() as s:
        p = accounts.authenticate(s, username=username, password=password, ip="10.0.0.9")
        token, _ = accounts.start_session(s, principal=p, kind="web")
    return token


async def state_of(cls: type[rx.State], token: str = "") -> Any:
    root = rx.State(_reflex_internal_init=True)
    (await root.get_state(AuthState)).token = token
    return await root.get_state(cls)


async def drain(gen) -> list[Any]:
    if hasattr(gen, "__anext__"):
        return [x async for x in gen]
    return [await gen]


def flat(events: list[Any]) -> list[Any]:
    out = []
    for e in events:
        out += e if isinstance(e, list) else [e]
    return out


def toasts(events: list[Any]) -> list[tuple[str, str]]:
    out = []
    for e in flat(events):
        if isinstance(e, rx.event.EventSpec) and e.args and "toast" in str(e.args[0][1]._js_expr):
            m = re.search(r'\["(success|error|info|warning)"\]\((".*?")[,)]', e.args[0][1]._js_expr)
            out.append((m.group(1), json.loads(m.group(2))))
    return out


def downloads(events: list[Any]) -> list[tuple[str, str, bytes]]:
    """(filename, mime type, bytes) of every ``rx.download(data=...)`` among the events."""
    out = []
    for e in flat(events):
        if isinstance(e, rx.event.EventSpec) and e.handler.fn.__qualname__ == "_download":
            args = {k._js_expr: json.loads(str(v)) for k, v in e.args}
            head, body = args["url"].split(",", 1)
            out.append((args["filename"], head.removeprefix("data:").split(";")[0], base64.b64decode(body)))
    return out


def exported(events: list[Any]) -> tuple[str, pl.DataFrame]:
    [(name, mime, data)] = downloads(events)
    assert mime == XLSX and name.endswith(".xlsx")
    return name, pl.read_excel(io.BytesIO(data))


@pytest.fixture
def office(make_staff, tmp_path, monkeypatch):
    """Staff of every role; users, orders, codes, audit rows and SMS enough to fill more than one page."""
    monkeypatch.setenv("GC_UPLOAD_DIR", str(tmp_path / "uploads"))
    get_settings.cache_clear()
    for name, role in [("boss", "admin"), ("mgr", "manager"), ("chen", "clerk"), ("kefu", "service"),
                       ("picc", "insurer"), ("gys", "supplier")]:
        make_staff(name, role)
    today = utcnow().date()
    with session_scope() as s:
        coupons.create_programme(s, actor=SETUP, code="picc_gx", name="广西人保车主权益")
        coupons.create_product(s, actor=SETUP, code="tpp50", name="淘票票通兑券 50 元", kind="redemption_code",
                               face_fen=5000, cost_fen=4200, programme_code="picc_gx", jump_app_id="wx1234567890abcdef",
                               jump_path="p")
        coupons.create_product(s, actor=SETUP, code="wash20", name="洗车返现 20 元", kind="cashback", face_fen=2000,
                               category="car_wash", funded_by="platform")
        coupons.import_codes(s, actor=SETUP, product_code="tpp50", filename="seed.csv", data=(
            "券码,有效期\n" + "".join(f"SEED{i:06d}ZZ,{today + dt.timedelta(days=60 + i)}\n" for i in range(30))).encode())
        users = [MpUser(phone=f"138000000{i:02d}", city="南宁", created_at=utcnow()) for i in range(25)]
        s.add_all(users)
        s.flush()
        for i, u in enumerate(users):
            insert_order(s, user_id=u.id, no=f"GC{i:04d}", status="paid" if i % 2 else "completed",
                         created=utcnow() - dt.timedelta(minutes=i), paid=utcnow() - dt.timedelta(minutes=i))
        for i in range(3):
            s.add(SmsMessage(phone="13800000001", template="login_code", content=f"验证码 {i}", provider="outbox",
                             status="recorded", created_at=utcnow()))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


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


# --- exports carry the filtered rows, not the page -------------------------------------------------------

def test_order_export_has_every_filtered_row_in_the_lists_order(office):
    async def scenario():
        st = await state_of(OrdersState, sign_in("chen"))
        await st.set_status("completed")
        shown = [r["order_no"] for r in st.rows]
        await st.sort_by("order_no")
        await st.sort_by("order_no")  # descending
        return st.total, shown, [r["order_no"] for r in st.rows], await drain(st.export())

    total, shown, sorted_desc, events = run(scenario())
    assert total == 13 and len(shown) == 13
    name, frame = exported(events)
    assert name.startswith("订单-")
    assert frame.height == 13 and set(frame["状态"].to_list()) == {"已完成"}
    assert frame["订单号"].to_list() == sorted_desc == sorted(sorted_desc, reverse=True)
    assert frame.columns[:4] == ["订单号", "类型", "状态", "用户手机号"]
    assert all("****" in p for p in frame["用户手机号"].to_list())
    assert toasts(events) == [("success", "已导出 13 条订单记录")]


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


def test_code_export_is_masked_and_filtered(office):
    async def scenario():
        st = await state_of(StockCodesState, sign_in("chen"))
        await st.load()
        st.exp_to = (utcnow().date() + dt.timedelta(days=80)).isoformat()
        await st.search()
        return st.total, await drain(st.export())

    total, events = run(scenario())
    name, frame = exported(events)
    assert name.startswith("券码-") and total == frame.height and 0 < total < 30
    assert frame["券码（部分隐藏）"].str.contains(r"^SEED\*\*\*\*\d\dZZ$").all()
    assert not any("SEED0000" in str(v) for v in frame.to_dicts())
    assert set(frame["状态"].to_list()) == {"在库"} and frame["面值（分）"].dtype == pl.Int64


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


def test_insurer_exports_only_its_programmes_own_batches(office):
    with session_scope() as s:
        picc = s.exec(select(StaffUser).where(StaffUser.username == "picc")).one()
        picc.programme_code = "picc_gx"  # the insurer acts for its programme (issue 7 point 1)
        s.add(picc)
        coupons.issue_batch(s, actor=SETUP, source="staff", batch_id="MINE", product_code="tpp50", phones=["13800000001"],
                            programme_code="picc_gx")
        coupons.issue_batch(s, actor=SETUP, source="staff", batch_id="THEIRS", product_code="tpp50",
                            phones=["13800000001"])

    async def scenario():
        mine = await state_of(IssuanceState, sign_in("picc"))
        everyone = await state_of(IssuanceState, sign_in("chen"))
        return await drain(mine.export()), await drain(everyone.export())

    mine, everyone = run(scenario())
    assert exported(mine)[1]["批次号"].to_list() == ["MINE"]
    assert sorted(exported(everyone)[1]["批次号"].to_list()) == ["MINE", "THEIRS"]


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


def test_the_queue_shows_paid_unaccepted_orders_first(office):
    async def scenario():
        st = await state_of(OrdersState, sign_in("chen"))
        await st.load()
        return st.rows

    rows = run(scenario())
    paid = [r["order_no"] for r in rows if r["status"] == "paid"]
    assert [r["status"] for r in rows[:12]] == ["paid"] * 12
    assert paid == [f"GC{i:04d}" for i in range(23, 0, -2)]  # paid 23 minutes ago (longest waiting) first
    assert [r["order_no"] for r in rows[12:14]] == ["GC0024", "GC0022"]  # then the rest, newest row first


# --- labels a person reads ---------------------------------------------------------------------------------

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


def test_every_audit_target_type_in_the_code_has_a_label():
    import pathlib

    root = pathlib.Path(audit.__file__).resolve().parents[1]
    used = {m for p in root.rglob("*.py") for m in re.findall(r'target_type="([a-z_]+)"', p.read_text())}
    assert used and used <= set(audit.TARGET_TYPES), used - set(audit.TARGET_TYPES)
    assert audit.target_label(None, None) == "—" and audit.target_label("thing", "3") == "thing #3"


def test_programme_pickers_and_columns_show_names_with_the_code_beside(office):
    async def scenario():
        partners = await state_of(PartnersState, sign_in("boss"))
        await partners.load()
        products = await state_of(ProductsState, sign_in("boss"))
        await products.load()
        return partners.programmes, partners.default_programme, products.rows

    programmes, default, products = run(scenario())
    assert programmes == [{"code": "picc_gx", "label": "广西人保车主权益（picc_gx）"}] and default == "picc_gx"
    tpp = next(p for p in products if p["code"] == "tpp50")
    assert (tpp["programme"], tpp["programme_code"]) == ("广西人保车主权益", "picc_gx")


# --- the issuance preview names its bad lines --------------------------------------------------------------

def test_the_issuance_preview_lists_which_lines_will_not_be_issued(office):
    text = "13812345678\n12345\n139 1234 5678\n13812345678\n=HYPERLINK(1)\n"

    async def scenario():
        st = await state_of(IssuanceState, sign_in("chen"))
        await st.load()
        st.product_code, st.batch_id = "tpp50", "B-PREVIEW"
        await st.preview_batch({"phones": text})
        return st.preview, st.preview_problems

    preview, problems = run(scenario())
    assert preview["invalid"] == "2" and preview["duplicate"] == "1" and preview["problems_more"] == ""
    assert [(p["row"], p["text"], p["reason"]) for p in problems] == [
        ("2", "12345", "手机号格式不正确"),
        ("4", "13812345678", "与第 1 行手机号重复"),
        ("5", "=HYPERLINK(1)", "手机号格式不正确"),
    ]


def test_the_preview_lists_at_most_fifty_bad_lines_and_counts_the_rest(db):
    with session_scope() as s:
        coupons.create_product(s, actor=SETUP, code="wash20", name="洗车返现 20 元", kind="cashback", face_fen=2000,
                               category="car_wash")
        pv = coupons.preview_issuance(s, product_code="wash20", phones=["13800000001"] + [f"bad{i}" for i in range(70)])
    assert pv.invalid_phone == 70 and len(pv.problems) == 50
    assert pv.problems[0] == (2, "bad0", "invalid_phone", "手机号格式不正确")
