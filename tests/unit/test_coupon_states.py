"""The coupon pages' Reflex handlers (券库存, 发券, 用户 detail) and the helpers they call (phone files, staging, the summary pivot, batches).

States are built the way ``test_states.py`` builds them (``rx.State(_reflex_internal_init=True)``, a real
staff session's token where the cookie would put it). Background handlers (the import and the
issuance) are run by calling their function directly: outside a running app ``async with self`` is
a no-op, so the handler's own code — role check included — runs exactly as in the app. Uploads
are fed through a real :class:`rx.UploadChunkIterator`.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import reflex as rx
import sqlalchemy as sa
from reflex_components_core.core._upload import UploadChunk, UploadChunkIterator

from gc_admin.accounts import service as accounts
from gc_admin.audit.service import Actor
from gc_admin.config import get_settings
from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.coupons import service, staging
from gc_admin.coupons.catalog.state import ProductsState, product_fields
from gc_admin.coupons.issuance import files as phone_files
from gc_admin.coupons.issuance import service as issuance_service
from gc_admin.coupons.issuance.state import IssuanceState, new_batch_id
from gc_admin.coupons.stock import display as stock_display
from gc_admin.coupons.stock.state import StockCodesState, StockImportState, StockState
from gc_admin.customers.state import UsersState
from gc_admin.db import session_scope
from gc_admin.ui.auth import AuthState
from gc_admin.users.models import MpUser

DENIED = "没有权限执行此操作，或登录已失效"
SETUP = Actor("system", None, "测试")
APP = "wxabcdef0123456789"


# --- plumbing ---------------------------------------------------------------------------------------

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


def toast(spec: Any) -> tuple[str, str]:
    assert isinstance(spec, rx.event.EventSpec), spec
    js = spec.args[0][1]._js_expr
    m = re.search(r'\["(success|error|info|warning)"\]\((".*?")[,)]', js)
    assert m, js
    return m.group(1), json.loads(m.group(2))


def downloaded(spec: Any) -> tuple[str, bytes]:
    """(filename, bytes) of an ``rx.download(data=...)`` event returned by a handler."""
    import base64

    assert isinstance(spec, rx.event.EventSpec) and spec.handler.fn.__qualname__ == "_download", spec
    args = {k._js_expr: json.loads(str(v)) for k, v in spec.args}
    return args["filename"], base64.b64decode(args["url"].split(",", 1)[1])


def toasts(events: list[Any]) -> list[tuple[str, str]]:
    out = []
    for e in events:
        for item in e if isinstance(e, list) else [e]:
            if isinstance(item, rx.event.EventSpec) and "toast" in str(item.args[0][1]._js_expr if item.args else ""):
                out.append(toast(item))
    return out


async def drain(gen) -> list[Any]:
    """Run an event handler that yields (async generator) or returns (coroutine); collect what it emits."""
    if hasattr(gen, "__anext__"):
        return [x async for x in gen]
    return [await gen]


async def upload(data: bytes, filename: str, chunk: int = 4096) -> UploadChunkIterator:
    it = UploadChunkIterator(maxsize=len(data) // chunk + 2)
    for off in range(0, len(data), chunk):
        await it.push(UploadChunk(filename=filename, offset=off, content_type="text/csv", data=data[off:off + chunk]))
    await it.finish()
    return it


def day(days: int) -> str:
    return (utcnow().astimezone(SHANGHAI) + dt.timedelta(days=days)).date().isoformat()


def codes_csv(prefix: str, n: int, days: int = 90) -> bytes:
    return ("券码,有效期\n" + "".join(f"{prefix}{i:06d}Z,{day(days)}\n" for i in range(n))).encode()


def scalar(sql: str, **params) -> int:
    with session_scope() as s:
        return s.execute(sa.text(sql), params).scalar_one()


def counts() -> dict[str, int]:
    return {t: scalar(f"SELECT count(*) FROM {t}") for t in
            ("stock_code", "stock_import", "coupon", "issuance_batch", "product", "audit_log")}


@pytest.fixture(autouse=True)
def private_uploads(db, tmp_path, monkeypatch):
    """Staging files go to this test's own folder, not the project's data/uploads."""
    monkeypatch.setenv("GC_UPLOAD_DIR", str(tmp_path / "uploads"))
    get_settings.cache_clear()
    yield tmp_path / "uploads"
    get_settings.cache_clear()


@pytest.fixture
def shop(make_staff):
    """Staff of every interesting role (the insurer's account acts for the programme), the programme, a
    code product with 5 codes, a cashback product funded by the platform, and one coupon that expired
    unused (so an expiry run has work to do)."""
    for name, role in [("boss", "admin"), ("mgr", "manager"), ("chen", "clerk"), ("kefu", "service")]:
        make_staff(name, role)
    with session_scope() as s:
        service.create_programme(s, actor=SETUP, code="picc_gx", name="广西人保车主权益")
    make_staff("picc", "insurer", programme_code="picc_gx")
    make_staff("bare", "insurer")  # an insurer account nobody gave a programme yet
    with session_scope() as s:
        service.create_product(s, actor=SETUP, code="tpp50", name="淘票票通兑券 50 元", kind="redemption_code",
                               face_fen=5000, cost_fen=4200, supplier="淘票票", programme_code="picc_gx",
                               jump_app_id=APP, jump_path="pages/index")
        service.create_product(s, actor=SETUP, code="wash20", name="洗车返现 20 元", kind="cashback",
                               face_fen=2000, cost_fen=2000, category="car_wash", funded_by="platform")
        service.import_codes(s, actor=SETUP, product_code="tpp50", data=codes_csv("SHOP", 5), filename="seed.csv")
        s.add(MpUser(phone="13800000001", city="南宁", created_at=utcnow()))
        service.issue_batch(s, actor=SETUP, source="staff", batch_id="OLD", product_code="wash20",
                            phones=["13800000009"], now=utcnow() - dt.timedelta(days=200))
    return None


# --- refusals ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["signed-out", "kefu"])
def test_signed_out_or_service_role_cannot_import_issue_or_expire(shop, who):
    token = "" if who == "signed-out" else sign_in(who)
    before = counts()
    expired_before = scalar("SELECT count(*) FROM coupon WHERE status = 'expired'")

    async def scenario():
        out: dict[str, list[Any]] = {}
        imp = await state_of(StockImportState, token)
        imp.product_code, imp.products = "tpp50", [{"code": "tpp50", "name": "x"}]  # as if the form was filled
        out["import"] = await drain(StockImportState.import_file.fn(imp, await upload(codes_csv("NEW", 3), "new.csv")))
        out["download_report"] = [await imp.download_report("1")]
        out["import_load"] = [await imp.load()]

        iss = await state_of(IssuanceState, token)
        iss.product_code, iss.batch_id = "tpp50", "B-HACK"
        out["preview"] = [await iss.preview_batch({"phones": "13812345678"})]
        assert not iss.preview_open and iss.preview == {}
        # even a hand-crafted "confirmed" state issues nothing
        iss.pending_token = phone_files.stash_phones(["13812345678"])
        iss.preview = {"product_code": "tpp50", "batch_id": "B-HACK", "per_phone": "1", "headline": ""}
        out["confirm"] = await drain(IssuanceState.confirm_issue.fn(iss))
        out["download_result"] = [await iss.download_result("1")]
        with open(staging.staged_path("phones", iss.pending_token, ".txt"), "rb"):
            pass  # the stash is still there: nothing consumed it

        stock = await state_of(StockState, token)
        out["expiry"] = await drain(stock.run_expiry())
        out["stock_load"] = [await stock.load()]
        assert stock.tables == [] and stock.stats == {}

        prods = await state_of(ProductsState, token)
        out["create_product"] = [await prods.create({"code": "evil", "name": "坏券", "face": "1"})]
        out["on_sale"] = [await prods.set_on_sale("tpp50", True)]
        codes = await state_of(StockCodesState, token)
        out["codes"] = [await codes.load()]
        assert codes.rows == []
        return out

    out = run(scenario())
    for name, events in out.items():
        if who == "signed-out":  # no toast: the page guard sends the browser to /login
            assert all(e is None for e in events), name
        else:
            assert toasts(events) == [("error", DENIED)], name
    assert counts() == before  # no codes, imports, coupons, batches, products — and no audit rows
    assert scalar("SELECT count(*) FROM coupon WHERE status = 'expired'") == expired_before


def test_insurer_may_issue_only_insurer_funded_products(shop):
    token = sign_in("picc")

    async def scenario():
        iss = await state_of(IssuanceState, token)
        await iss.load()
        offered = [p["code"] for p in iss.products]
        iss.product_code = "wash20"  # platform-funded: not theirs
        await iss.preview_batch({"phones": "13812345678"})
        return offered, iss.error, iss.preview_open

    offered, error, opened = run(scenario())
    assert offered == ["tpp50"]
    assert error == "券种不存在" and not opened


def test_insurer_issues_in_its_programmes_own_batch_space(shop):
    """The page issues for the insurer's programme: its batch id is its own (the clerk's same id is not a
    replay of the clerk's batch) and its history holds its own batches only."""
    with session_scope() as s:
        service.issue_batch(s, actor=SETUP, source="staff", batch_id="B-SAME", product_code="tpp50",
                            phones=["13812345678"])
    token = sign_in("picc")

    async def scenario():
        iss = await state_of(IssuanceState, token)
        await iss.load()
        before = [r["batch_id"] for r in iss.rows]
        iss.product_code, iss.batch_id = "tpp50", "B-SAME"
        await iss.preview_batch({"phones": "13812345678"})
        replay = iss.preview.get("replay")
        events = await drain(IssuanceState.confirm_issue.fn(iss))
        return before, replay, iss, events

    before, replay, iss, events = run(scenario())
    assert before == [] and replay == ""  # the clerk's batches are not the insurer's
    assert not iss.replayed and iss.result["issued"] == "1"
    assert ("success", "发放完成：成功 1 行 / 1 张，失败 0 行") in toasts(events)
    assert [r["batch_id"] for r in iss.rows] == ["B-SAME"] and iss.total == 1
    assert scalar("SELECT count(*) FROM issuance_batch WHERE batch_id = 'B-SAME' AND scope = 'picc_gx'") == 1
    assert scalar("SELECT count(*) FROM coupon WHERE phone = '13812345678'") == 2


def test_only_admin_or_manager_create_products(shop):
    form = {"code": "tpp60", "name": "淘票票通兑券 60 元", "face": "60", "cost": "50.5", "supplier": "淘票票",
            "programme_code": "picc_gx", "funded_by": "insurer", "jump_app_id": APP, "jump_path": "pages/index",
            "use_window_days": "30", "min_validity_days": "30"}

    async def scenario(username):
        prods = await state_of(ProductsState, sign_in(username))
        await prods.load()
        prods.new_kind = "redemption_code"
        return prods.can_edit, await prods.create(dict(form)), prods.form_error

    can, result, _ = run(scenario("chen"))
    assert not can and toast(result) == ("error", "只有管理员或经理可以新建券种")
    assert scalar("SELECT count(*) FROM product WHERE code = 'tpp60'") == 0

    can, result, error = run(scenario("mgr"))
    assert can and error == ""
    assert toast(result[0]) == ("success", "已创建券种 淘票票通兑券 60 元（tpp60）")
    with session_scope() as s:
        p = service.get_product_by_code(s, "tpp60")
        assert (p.face_fen, p.cost_fen, p.programme_code, p.jump_app_id) == (6000, 5050, "picc_gx", APP)


def test_product_form_errors_are_shown_inline_in_chinese(shop):
    async def scenario(form):
        prods = await state_of(ProductsState, sign_in("boss"))
        prods.new_kind = form.pop("kind")
        return await prods.create(form), prods.form_error

    assert run(scenario({"kind": "cashback", "code": "x1", "name": "返现", "face": "abc"})) == (
        None, "面值需填写金额（元），最多两位小数，例如 50 或 12.50")
    result, error = run(scenario({"kind": "cashback", "code": "x1", "name": "返现", "face": "10"}))
    assert result is None and error.startswith("返现券需选择类别")
    assert run(scenario({"kind": "redemption_code", "code": "tpp50", "name": "重复", "face": "10"}))[1] == "券种编码 tpp50 已存在"
    assert scalar("SELECT count(*) FROM product") == 2


def test_product_fields_maps_the_form():
    f = product_fields({"kind": "cashback", "code": "fuel50", "name": "加油返现", "face": "50", "cost": "",
                        "category": "fuel", "price": "45.5", "on_sale": "on", "validity_days": "",
                        "programme_code": "none", "jump_app_id": "wxignored"})
    assert f["face_fen"] == 5000 and f["cost_fen"] == 0 and f["price_fen"] == 4550 and f["on_sale"] is True
    assert f["category"] == "fuel" and f["programme_code"] is None and f["validity_days"] == 90
    assert "jump_app_id" not in f  # only redemption codes jump
    with pytest.raises(ValueError, match="请选择券种类型"):
        product_fields({"kind": "nope"})


# --- stock: import, list, expiry ------------------------------------------------------------------

def test_clerk_imports_a_file_and_sees_the_report_and_history(shop):
    token = sign_in("chen")
    data = ("券码,有效期\n" + "".join(f"IMP{i:04d}Y,{day(90)}\n" for i in range(8)) + f"IMP0000Y,{day(90)}\n"
            + f"NEAR0001Y,{day(10)}\n" + f",{day(90)}\n" + "SHOP000000Z," + day(90) + "\n").encode("gbk")

    async def scenario():
        imp = await state_of(StockImportState, token)
        await imp.load()
        imp.product_code, imp.batch_ref = "tpp50", "TPP-A"
        events = await drain(StockImportState.import_file.fn(imp, await upload(data, "十一月.csv", chunk=50)))
        download = await imp.download_report(imp.report["id"])
        return imp, events, download

    imp, events, download = run(scenario())
    assert not imp.busy and imp.error == ""
    r = imp.report
    assert (r["rows"], r["imported"], r["in_stock"], r["dup_file"], r["dup_existing"], r["invalid"], r["discarded"]) == (
        "12", "9", "8", "1", "1", "1", "1")
    assert r["loss"] == "¥42.00" and r["filename"] == "十一月.csv"
    assert imp.report_invalid == [{"row": "12", "reason": "券码为空"}]
    assert ("success", "导入完成：新增 9 张（其中弃票 1 张），无效 1 行") in toasts(events)
    assert imp.total == 2 and imp.rows[0]["id"] == r["id"]
    assert scalar("SELECT count(*) FROM stock_code WHERE batch_ref = 'TPP-A'") == 9
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'stock.imported' AND actor_name = 'chen'") == 1
    name, body = downloaded(download)
    assert name == f"import-{r['id']}-report.csv"
    text = body.decode("utf-8-sig")
    assert "新增券码,9" in text and "12,券码为空" in text and "IMP0" not in text  # never a code
    assert not list((get_settings().upload_dir / "staging").glob("codes-*"))  # the staging file is gone


def test_import_refuses_a_file_over_the_limit(shop, monkeypatch):
    monkeypatch.setenv("GC_UPLOAD_MAX_MB", "1")  # the one upload cap (gc_admin.config), not a page constant
    get_settings.cache_clear()
    token = sign_in("chen")
    before = counts()
    big = codes_csv("BIG", 60_000)
    assert len(big) > 1024 * 1024

    async def scenario():
        imp = await state_of(StockImportState, token)
        await imp.load()
        imp.product_code = "tpp50"
        return imp, await drain(StockImportState.import_file.fn(imp, await upload(big, "big.csv", 256 * 1024)))

    imp, events = run(scenario())
    assert imp.error == "文件超过 1 MB 上限，请拆分成几个较小的文件后分批上传" and not imp.busy
    assert toasts(events) == [("error", imp.error)]
    assert counts() == before


def test_an_interrupted_upload_imports_nothing_and_frees_the_form(shop):
    async def scenario():
        imp = await state_of(StockImportState, sign_in("chen"))
        await imp.load()
        imp.product_code = "tpp50"
        it = UploadChunkIterator(maxsize=4)
        await it.push(UploadChunk(filename="half.csv", offset=0, content_type="text/csv", data=codes_csv("HALF", 3)[:20]))
        await it.fail(ConnectionError("client went away"))
        return imp, await drain(StockImportState.import_file.fn(imp, it))

    imp, events = run(scenario())
    assert not imp.busy and imp.error == "上传中断，未导入任何券码，请重新上传"
    assert toasts(events) == [("error", imp.error)]
    assert scalar("SELECT count(*) FROM stock_import") == 1  # only the fixture's
    assert not list((get_settings().upload_dir / "staging").glob("codes-*"))


def test_unreadable_file_is_reported_and_recorded_as_failed(shop):
    async def scenario():
        imp = await state_of(StockImportState, sign_in("chen"))
        await imp.load()
        imp.product_code = "tpp50"
        events = await drain(StockImportState.import_file.fn(imp, await upload(b"hello,world\n1,2\n", "x.csv")))
        return imp, events

    imp, events = run(scenario())
    assert imp.error.startswith("未找到券码列")
    assert toasts(events)[0][0] == "error"
    assert imp.rows[0]["ok"] == "" and imp.rows[0]["error"].startswith("未找到券码列")
    assert scalar("SELECT count(*) FROM stock_code") == 5


def test_import_form_must_name_a_code_product(shop):
    async def scenario():
        imp = await state_of(StockImportState, sign_in("chen"))
        await imp.load()
        assert [p["code"] for p in imp.products] == ["tpp50"]
        imp.product_code = "wash20"
        events = await drain(StockImportState.import_file.fn(imp, await upload(codes_csv("W", 2), "w.csv")))
        return imp, events

    imp, events = run(scenario())
    assert imp.error == "只能向第三方兑换码类券种导入券码" and toasts(events) == [("error", imp.error)]


def test_code_list_is_masked_filtered_and_paged(shop):
    async def scenario():
        codes = await state_of(StockCodesState, sign_in("chen"))
        await codes.load()
        first = (codes.total, list(codes.rows))
        codes.code_q = "SHOP000003Z"
        await codes.search()
        exact = (codes.total, list(codes.rows))
        await codes.clear_filters()
        await codes.set_state("issued")
        return first, exact, codes.total

    (total, rows), (n, found), issued = run(scenario())
    assert total == 5 and all("****" in r["code"] and "SHOP0000" not in r["code"] for r in rows)
    assert n == 1 and found[0]["code"] == "SHOP****003Z" and found[0]["state"] == "在库"
    assert issued == 0


def test_clerk_runs_expiry_and_sees_the_loss(shop):
    token = sign_in("chen")

    async def scenario():
        stock = await state_of(StockState, token)
        chained = await stock.load()
        events = await drain(stock.run_expiry())
        return stock, chained, events

    stock, chained, events = run(scenario())
    assert [e.fn.__qualname__ for e in chained] == ["StockImportState.load", "StockCodesState.load", "ProductsState.load"]
    assert stock.expiry_done and stock.expiry["expired"] == "1" and stock.expiry["discarded"] == "0"
    assert stock.expiry_rows[0]["product"] == "洗车返现 20 元（wash20）"
    assert ("success", "过期处理完成：弃票 0 张，过期券 1 张，损失 ¥0.00") in toasts(events)
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'coupon.expired' AND actor_name = 'chen'") == 1
    assert [t.product_code for t in stock.tables] == ["tpp50"]
    assert stock.stats["in_stock"] == "5"


# --- issuance ---------------------------------------------------------------------------------------

def test_clerk_previews_then_issues_and_the_db_has_the_coupons(shop):
    token = sign_in("chen")
    pasted = "13812345678\n139 1234 5678, 1381234\n13812345678；13712345678"

    async def scenario():
        iss = await state_of(IssuanceState, token)
        await iss.load()
        assert re.fullmatch(r"B\d{8}-[A-Z0-9]{4}", iss.batch_id)
        iss.product_code = "tpp50"
        iss.batch_id = "B20261122-TEST"
        await iss.preview_batch({"phones": pasted})
        preview = dict(iss.preview)
        events = await drain(IssuanceState.confirm_issue.fn(iss))
        return iss, preview, events

    iss, preview, events = run(scenario())
    assert preview["headline"] == "将向 3 个手机号发放 3 张券，剩余库存 2"
    assert (preview["requested"], preview["invalid"], preview["duplicate"], preview["no_stock"], preview["replay"]) == (
        "5", "1", "1", "0", "")
    assert not iss.issuing and not iss.replayed and iss.error == ""
    assert (iss.result["issued"], iss.result["failed"], iss.result["coupons"]) == ("3", "2", "3")
    assert [(r["phone"], r["status"]) for r in iss.result_rows] == [
        ("138****5678", "issued"), ("139****5678", "issued"), ("138****1234", "invalid_phone"),
        ("138****5678", "duplicate"), ("137****5678", "issued")]
    statuses = [r["label"] for r in iss.result_rows]
    assert statuses == ["已发放", "已发放", "手机号无效", "重复行", "已发放"]
    assert all("****" in r["phone"] for r in iss.result_rows)
    assert ("success", "发放完成：成功 3 行 / 3 张，失败 2 行") in toasts(events)
    with session_scope() as s:
        rows = s.execute(sa.text("SELECT c.phone, sc.state FROM coupon c JOIN stock_code sc ON sc.id = c.stock_code_id "
                                 "ORDER BY c.phone")).all()
    assert [tuple(r) for r in rows] == [("13712345678", "issued"), ("13812345678", "issued"), ("13912345678", "issued")]
    assert iss.total == 2 and iss.rows[0]["batch_id"] == "B20261122-TEST" and iss.rows[0]["actor"] == "chen"
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'coupon.issued' AND actor_name = 'chen'") == 1
    assert iss.pending_token == "" and not list((get_settings().upload_dir / "staging").glob("phones-*"))


def test_resubmitting_a_batch_id_shows_the_first_result(shop):
    token = sign_in("chen")

    async def scenario():
        iss = await state_of(IssuanceState, token)
        await iss.load()
        iss.product_code, iss.batch_id = "tpp50", "B-ONCE"
        await iss.preview_batch({"phones": "13812345678"})
        await drain(IssuanceState.confirm_issue.fn(iss))
        first = dict(iss.result)
        iss2 = await state_of(IssuanceState, token)  # another tab, same batch id
        await iss2.load()
        iss2.product_code, iss2.batch_id = "tpp50", "B-ONCE"
        await iss2.preview_batch({"phones": "13812345678"})
        replay_flag = iss2.preview["replay"]
        events = await drain(IssuanceState.confirm_issue.fn(iss2))
        return first, iss2, replay_flag, events

    first, again, replay_flag, events = run(scenario())
    assert replay_flag == "1"
    assert again.replayed and again.result["id"] == first["id"] and again.result["issued"] == "1"
    assert ("info", "批次 B-ONCE 已发放过，未重复发券，显示首次结果") in toasts(events)
    assert scalar("SELECT count(*) FROM coupon WHERE stock_code_id IS NOT NULL") == 1


def test_an_unexpected_failure_while_issuing_frees_the_page(shop, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(issuance_service, "issue_batch", broken)

    async def scenario():
        iss = await state_of(IssuanceState, sign_in("chen"))
        await iss.load()
        iss.product_code, iss.batch_id = "tpp50", "B-BROKEN"
        await iss.preview_batch({"phones": "13812345678"})
        return iss, await drain(IssuanceState.confirm_issue.fn(iss))

    iss, events = run(scenario())
    assert not iss.issuing and iss.error == "发放出错，本批次未发放任何券，请稍后重试或联系管理员"
    assert toasts(events) == [("error", "发放失败：" + iss.error)]
    assert iss.pending_token  # the previewed list stays staged until the next preview replaces it


def test_batch_id_reused_for_other_phones_is_refused(shop):
    async def scenario():
        iss = await state_of(IssuanceState, sign_in("chen"))
        await iss.load()
        iss.product_code, iss.batch_id = "tpp50", "B-TWICE"
        await iss.preview_batch({"phones": "13812345678"})
        await drain(IssuanceState.confirm_issue.fn(iss))
        await iss.preview_batch({"phones": "13912345678"})
        events = await drain(IssuanceState.confirm_issue.fn(iss))
        return iss, events

    iss, events = run(scenario())
    assert iss.error.startswith("批次号 B-TWICE 已用于另一批发券")
    assert toasts(events)[0][0] == "error"
    assert scalar("SELECT count(*) FROM coupon WHERE stock_code_id IS NOT NULL") == 1


def test_issue_from_an_uploaded_file_and_download_the_result(shop):
    data = "姓名,手机号\n张三,13812345678\n李四,13912345678\n王五,12345\n".encode("gbk")

    def Upload() -> rx.UploadFile:  # noqa: N802 — what Reflex hands the handler (reads to EOF like a file)
        return rx.UploadFile(file=io.BytesIO(data), path=Path("名单.csv"), size=len(data))

    async def scenario():
        iss = await state_of(IssuanceState, sign_in("chen"))
        await iss.load()
        uploaded = await iss.upload_phones([Upload()])
        iss.product_code, iss.batch_id, iss.per_phone = "tpp50", "B-FILE", "2"
        await iss.preview_batch({"phones": "13700000000"})  # the file wins over the text box
        preview = dict(iss.preview)
        await drain(IssuanceState.confirm_issue.fn(iss))
        download = await iss.download_result(iss.result["id"])
        return iss, uploaded, preview, download

    iss, uploaded, preview, download = run(scenario())
    assert (iss.file_name, iss.file_count) == ("名单.csv", 3)
    assert ("success", "已读取 名单.csv：3 行") in toasts([uploaded])
    assert preview["headline"] == "将向 2 个手机号发放 4 张券，剩余库存 1"
    assert iss.result["coupons"] == "4"
    assert scalar("SELECT count(*) FROM coupon WHERE phone = '13812345678'") == 2
    name, body = downloaded(download)
    assert name == "issuance-B-FILE.csv"
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[1] == ["行号", "手机号", "结果", "原因", "券ID"]
    assert rows[2][:3] == ["1", "13812345678", "已发放"] and len(rows[2][4].split()) == 2
    assert rows[4][:4] == ["3", "12345", "手机号无效", "手机号格式不正确"]


# --- users page ---------------------------------------------------------------------------------

def test_user_detail_shows_masked_coupons_and_their_history(shop):
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


def test_coupons_waiting_for_an_unregistered_phone_are_found_by_that_phone(shop):
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


def test_user_detail_is_refused_to_roles_without_the_users_section(shop):
    async def scenario():
        users = await state_of(UsersState, sign_in("picc"))
        return await users.open_user("1"), users.detail_open

    result, opened = run(scenario())
    assert toast(result) == ("error", DENIED) and not opened


# --- views: phone files, summary pivot, batches ----------------------------------------------------------

def test_split_phones_accepts_lines_commas_and_spaces():
    assert phone_files.split_phones("13812345678\n13912345678, 13712345678；13612345678 、13512345678\n\n") == [
        "13812345678", "13912345678", "13712345678", "13612345678", "13512345678"]
    assert phone_files.split_phones("") == []
    assert phone_files.split_phones("139 1234 5678\n+86 138-1234-5678 \n13812345678 13712345678") == [
        "139 1234 5678", "+86 138-1234-5678", "13812345678", "13712345678"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_phone_csv_with_a_chinese_header(encoding):
    data = "序号,姓名,手机号,备注\n1,张三,13812345678,VIP\n2,李四,+86 139-1234-5678,\n3,王五,,\n".encode(encoding)
    assert phone_files.read_phone_file(data, filename="名单.csv") == ["13812345678", "+86 139-1234-5678"]


def test_phone_csv_without_a_header_takes_the_phone_column():
    data = "张三,13812345678\n李四,13912345678\n".encode("gbk")
    assert phone_files.read_phone_file(data) == ["13812345678", "13912345678"]


def test_phone_xlsx_with_numbers_and_a_header(tmp_path):
    buf = io.BytesIO()
    pl.DataFrame({"姓名": ["张三", "李四", "王五"], "手机号码": [13812345678, 13912345678, None]}).write_excel(buf)
    assert phone_files.read_phone_file(buf.getvalue(), filename="名单.xlsx") == ["13812345678", "13912345678"]


def test_phone_xlsx_without_a_header():
    buf = io.BytesIO()
    pl.DataFrame({"a": ["13812345678", "13912345678"]}).write_excel(buf, include_header=False)
    assert phone_files.read_phone_file(buf.getvalue()) == ["13812345678", "13912345678"]


def test_phone_plain_text_one_per_line_or_separated():
    data = "手机号\r\n13812345678\r\n\r\n13912345678 13712345678\r\nnot-a-phone\r\n".encode("utf-8")
    assert phone_files.read_phone_file(data, filename="list.txt") == ["13812345678", "13912345678", "13712345678",
                                                                  "not-a-phone"]
    assert phone_files.read_phone_file("13812345678,13912345678\n13712345678,\n".encode("gbk")) == [
        "13812345678", "13912345678", "13712345678"]


@pytest.mark.parametrize("data, message", [
    (b"", "文件为空"),
    (b"  \n \n", "文件为空"),
    (bytes(range(256)) * 50, "无法识别"),
    ("手机号\n\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\n".encode(), "文件内容无法识别"),
    (b"\xff\xfe\x00", "UTF-16"),
    (b"PK\x03\x04garbage-not-a-zip", "无法读取该 Excel 文件"),
    ("手机号\n".encode(), "文件中没有找到手机号"),
])
def test_bad_phone_files_give_a_clear_reason(data, message):
    from gc_admin.core.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        phone_files.read_phone_file(data)
    assert message in err.value.message


def test_phone_stash_round_trip_and_tokens_cannot_escape(private_uploads):
    token = phone_files.stash_phones(["13812345678", "bad phone"])
    assert phone_files.load_phones(token) == ["13812345678", "bad phone"]
    staging.discard_staged("phones", token, ".txt")
    from gc_admin.core.errors import NotFound

    for bad in (token, "../../etc/passwd", ""):
        with pytest.raises(NotFound):
            phone_files.load_phones(bad)
    import os

    old = phone_files.stash_phones(["13812345678"])
    path = staging.staged_path("phones", old, ".txt")
    os.utime(path, (1, 1))  # a day-old leftover is swept when the next file is staged
    fresh = phone_files.stash_phones(["13912345678"])
    assert not path.exists() and phone_files.load_phones(fresh) == ["13912345678"]


def test_summary_tables_pivot_states_and_buckets():
    from gc_admin.coupons.stock.service import SummaryRow

    rows = [SummaryRow("tpp50", "淘票票 50", "in_stock", "gt60", 1200, 6_000_000, 5_040_000),
            SummaryRow("tpp50", "淘票票 50", "in_stock", "30to60", 3, 15000, 12600),
            SummaryRow("tpp50", "淘票票 50", "discarded", "lt30", 2, 10000, 8400),
            SummaryRow("tpp5", "淘票票 5", "issued", "gt60", 1, 500, 430)]
    tables = stock_display.summary_tables(rows)
    assert [t.product_code for t in tables] == ["tpp50", "tpp5"]
    t = {r["state"]: r for r in tables[0].rows}
    assert [r["label"] for r in tables[0].rows] == ["在库", "已发未用", "已使用", "已过期", "弃票", "合计"]
    assert (t["in_stock"]["lt30"], t["in_stock"]["m30_60"], t["in_stock"]["gt60"], t["in_stock"]["total"]) == (
        "0", "3", "1,200", "1,203")
    assert t["in_stock"]["face"] == "¥60,150.00" and t["discarded"]["cost"] == "¥84.00"
    assert t["total"]["total"] == "1,205" and t["total"]["cost"] == "¥50,610.00"
    totals = stock_display.summary_totals(rows)
    assert totals == {"in_stock": 1203, "in_stock_face_fen": 6_015_000, "in_stock_lt30": 0, "in_stock_lt60": 3,
                      "discarded": 2, "discarded_cost_fen": 8400}


def test_batches_for_insurer_staff_are_their_programmes_own(shop):
    """An insurer's staff see their programme's own batches (its staff's and its partner keys'), not the
    platform's — even of the programme's products — nor another programme's."""
    from gc_admin.core.errors import NotFound

    with session_scope() as s:
        service.create_programme(s, actor=SETUP, code="other", name="别的项目")
        service.create_product(s, actor=SETUP, code="other10", name="别的项目券", kind="service_discount",
                               face_fen=1000, programme_code="other")
        service.issue_batch(s, actor=SETUP, source="staff", batch_id="B-CLERK", product_code="tpp50",
                            phones=["13812345678"])
        service.issue_batch(s, actor=SETUP, source="staff", batch_id="B-INS", product_code="tpp50",
                            phones=["13812345679"], programme_code="picc_gx")
        service.issue_batch(s, actor=SETUP, source="partner", batch_id="CLUB-1", product_code="tpp50",
                            phones=["13812345670"], programme_code="picc_gx")
        service.issue_batch(s, actor=SETUP, source="staff", batch_id="B-OTHER", product_code="other10",
                            phones=["13812345671"], programme_code="other")
        everything, n_all = issuance_service.list_issuances(s)
        insurer, n_ins = issuance_service.list_issuances(s, programme_code="picc_gx")
        ids = {b.batch_id: b.issuance_id for b in everything}
        for foreign in ("OLD", "B-CLERK", "B-OTHER"):
            with pytest.raises(NotFound):
                issuance_service.issuance_by_id(s, issuance_id=ids[foreign], programme_code="picc_gx")
        assert issuance_service.issuance_by_id(s, issuance_id=ids["CLUB-1"], programme_code="picc_gx").batch_id == "CLUB-1"
        assert issuance_service.issuance_by_id(s, issuance_id=ids["OLD"]).batch_id == "OLD"  # platform staff: every batch
        assert issuance_service.find_staff_batch(s, batch_id="B-CLERK", programme_code="picc_gx") is None
        assert issuance_service.find_staff_batch(s, batch_id="B-INS", programme_code="picc_gx") is not None
    assert n_all == 5 and [b.batch_id for b in everything] == ["B-OTHER", "CLUB-1", "B-INS", "B-CLERK", "OLD"]
    assert n_ins == 2 and [b.batch_id for b in insurer] == ["CLUB-1", "B-INS"]


def test_insurer_without_a_programme_gets_a_reason_and_nothing_else(shop):
    token = sign_in("bare")

    async def scenario():
        iss = await state_of(IssuanceState, token)
        await iss.load()
        loaded = (iss.products, iss.rows, iss.error)
        iss.product_code, iss.batch_id = "tpp50", "B-BARE"
        await iss.preview_batch({"phones": "13812345678"})
        return loaded, iss.error, iss.preview_open

    (products, rows, load_error), error, opened = run(scenario())
    assert products == [] and rows == [] and "尚未关联保险项目" in load_error
    assert "尚未关联保险项目" in error and not opened
    assert scalar("SELECT count(*) FROM issuance_batch WHERE batch_id = 'B-BARE'") == 0


def test_new_batch_ids_look_right_and_differ():
    ids = {new_batch_id() for _ in range(50)}
    assert len(ids) > 45 and all(re.fullmatch(r"B\d{8}-[A-Z0-9]{4}", i) for i in ids)
