"""The coupon pages' Reflex handlers (券库存, 发券, 用户 detail) and the helpers they call (phone files, staging, the summary pivot, batches).

States are built with ``tests.support.state_of`` (``rx.State(_reflex_internal_init=True)``, a real
staff session's token where the cookie would put it). Background handlers (the import and the
issuance) are run by calling their function directly: outside a running app ``async with self`` is
a no-op, so the handler's own code — role check included — runs exactly as in the app. Uploads
are fed through a real :class:`rx.UploadChunkIterator`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from reflex_components_core.core._upload import UploadChunk, UploadChunkIterator
from sqlmodel import select

from gc_admin.accounts.models import StaffUser
from gc_admin.config import get_settings
from gc_admin.core.clock import utcnow
from gc_admin.coupons import service, staging
from gc_admin.coupons import service as coupons
from gc_admin.coupons.catalog.state import ProductsState, product_fields
from gc_admin.coupons.issuance import files as phone_files
from gc_admin.coupons.issuance import service as issuance_service
from gc_admin.coupons.issuance.state import IssuanceState, new_batch_id
from gc_admin.coupons.stock import display as stock_display
from gc_admin.coupons.stock.state import StockCodesState, StockImportState, StockState
from gc_admin.db import session_scope
from gc_admin.partners.state import PartnersState
from tests.support import (
    DENIED,
    SETUP,
    downloaded,
    drain,
    exported,
    run,
    scalar,
    sign_in,
    state_of,
    toast,
    toasts,
    upload_chunks,
    upload_file,
)
from tests.unit.coupons.support import codes_file, day

APP = "wxabcdef0123456789"

pytestmark = pytest.mark.usefixtures("private_uploads")


# --- plumbing ---------------------------------------------------------------------------------------

def counts() -> dict[str, int]:
    return {t: scalar(f"SELECT count(*) FROM {t}") for t in
            ("stock_code", "stock_import", "coupon", "issuance_batch", "product", "audit_log")}


# --- refusals ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["signed-out", "kefu"])
def test_signed_out_or_service_role_cannot_import_issue_or_expire(coupon_shop, who):
    token = "" if who == "signed-out" else sign_in(who)
    before = counts()
    expired_before = scalar("SELECT count(*) FROM coupon WHERE status = 'expired'")

    async def scenario():
        out: dict[str, list[Any]] = {}
        imp = await state_of(StockImportState, token)
        imp.product_code, imp.products = "tpp50", [{"code": "tpp50", "name": "x"}]  # as if the form was filled
        out["import"] = await drain(StockImportState.import_file.fn(imp, await upload_chunks(codes_file("NEW", 3), "new.csv")))
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


def test_insurer_may_issue_only_insurer_funded_products(coupon_shop):
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


def test_insurer_issues_in_its_programmes_own_batch_space(coupon_shop):
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


def test_only_admin_or_manager_create_products(coupon_shop):
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


def test_product_form_errors_are_shown_inline_in_chinese(coupon_shop):
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

def test_clerk_imports_a_file_and_sees_the_report_and_history(coupon_shop):
    token = sign_in("chen")
    data = ("券码,有效期\n" + "".join(f"IMP{i:04d}Y,{day(90)}\n" for i in range(8)) + f"IMP0000Y,{day(90)}\n"
            + f"NEAR0001Y,{day(10)}\n" + f",{day(90)}\n" + "SHOP000000Z," + day(90) + "\n").encode("gbk")

    async def scenario():
        imp = await state_of(StockImportState, token)
        await imp.load()
        imp.product_code, imp.batch_ref = "tpp50", "TPP-A"
        events = await drain(StockImportState.import_file.fn(imp, await upload_chunks(data, "十一月.csv", chunk=50)))
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


def test_an_import_still_queued_when_the_wait_runs_out_reads_in_the_history_until_done(coupon_shop, monkeypatch):
    """The ``coupons.import`` task has not finished within GC_TASKS_WAIT_SECONDS (a busy worker): the page says
    it goes on in the background and the history lists it as 排队中; once the worker has run it, 成功."""
    from gc_admin.core import tasks

    monkeypatch.setenv("GC_TASKS_WAIT_SECONDS", "0")
    get_settings.cache_clear()
    monkeypatch.setattr(tasks, "worker_alive", lambda: True)  # a worker is up, busy: the page only waits
    token = sign_in("chen")
    data = ("券码,有效期\n" + "".join(f"LATE{i:04d}Y,{day(90)}\n" for i in range(5))).encode()

    async def scenario():
        imp = await state_of(StockImportState, token)
        await imp.load()
        imp.product_code = "tpp50"
        events = await drain(StockImportState.import_file.fn(imp, await upload_chunks(data, "later.csv")))
        queued = [dict(r) for r in imp.rows]
        await tasks.run_waiting_async()  # the worker gets to it
        await imp.load()
        return imp, events, queued

    imp, events, queued = run(scenario())
    assert not imp.busy and imp.error == "" and imp.report == {}
    assert ("info", "文件已在后台排队中，完成后在导入记录中查看报告") in toasts(events)
    assert (queued[0]["filename"], queued[0]["status"], queued[0]["pending"], queued[0]["ok"]) == (
        "later.csv", "排队中", "1", "")
    assert (imp.rows[0]["filename"], imp.rows[0]["status"], imp.rows[0]["imported"]) == ("later.csv", "成功", "5")
    assert scalar("SELECT count(*) FROM stock_code WHERE code LIKE 'LATE%'") == 5
    get_settings.cache_clear()


def test_import_refuses_a_file_over_the_limit(coupon_shop, monkeypatch):
    monkeypatch.setenv("GC_UPLOAD_MAX_MB", "1")  # the one upload cap (gc_admin.config), not a page constant
    get_settings.cache_clear()
    token = sign_in("chen")
    before = counts()
    big = codes_file("BIG", 60_000)
    assert len(big) > 1024 * 1024

    async def scenario():
        imp = await state_of(StockImportState, token)
        await imp.load()
        imp.product_code = "tpp50"
        return imp, await drain(StockImportState.import_file.fn(imp, await upload_chunks(big, "big.csv", 256 * 1024)))

    imp, events = run(scenario())
    assert imp.error == "文件超过 1 MB 上限，请拆分成几个较小的文件后分批上传" and not imp.busy
    assert toasts(events) == [("error", imp.error)]
    assert counts() == before


def test_an_interrupted_upload_imports_nothing_and_frees_the_form(coupon_shop):
    async def scenario():
        imp = await state_of(StockImportState, sign_in("chen"))
        await imp.load()
        imp.product_code = "tpp50"
        it = UploadChunkIterator(maxsize=4)
        await it.push(UploadChunk(filename="half.csv", offset=0, content_type="text/csv",
                                  data=codes_file("HALF", 3)[:20]))
        await it.fail(ConnectionError("client went away"))
        return imp, await drain(StockImportState.import_file.fn(imp, it))

    imp, events = run(scenario())
    assert not imp.busy and imp.error == "上传中断，未导入任何券码，请重新上传"
    assert toasts(events) == [("error", imp.error)]
    assert scalar("SELECT count(*) FROM stock_import") == 1  # only the fixture's
    assert not list((get_settings().upload_dir / "staging").glob("codes-*"))


def test_unreadable_file_is_reported_and_recorded_as_failed(coupon_shop):
    async def scenario():
        imp = await state_of(StockImportState, sign_in("chen"))
        await imp.load()
        imp.product_code = "tpp50"
        events = await drain(StockImportState.import_file.fn(imp, await upload_chunks(b"hello,world\n1,2\n", "x.csv")))
        return imp, events

    imp, events = run(scenario())
    assert imp.error.startswith("未找到券码列")
    assert toasts(events)[0][0] == "error"
    assert imp.rows[0]["ok"] == "" and imp.rows[0]["error"].startswith("未找到券码列")
    assert scalar("SELECT count(*) FROM stock_code") == 5


def test_import_form_must_name_a_code_product(coupon_shop):
    async def scenario():
        imp = await state_of(StockImportState, sign_in("chen"))
        await imp.load()
        assert [p["code"] for p in imp.products] == ["tpp50"]
        imp.product_code = "wash20"
        events = await drain(StockImportState.import_file.fn(imp, await upload_chunks(codes_file("W", 2), "w.csv")))
        return imp, events

    imp, events = run(scenario())
    assert imp.error == "只能向第三方兑换码类券种导入券码" and toasts(events) == [("error", imp.error)]


def test_code_list_is_masked_filtered_and_paged(coupon_shop):
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


def test_clerk_runs_expiry_and_sees_the_loss(coupon_shop):
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

def test_clerk_previews_then_issues_and_the_db_has_the_coupons(coupon_shop):
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


def test_a_batch_still_queued_when_the_wait_runs_out_reads_in_the_history_until_done(coupon_shop, monkeypatch):
    """The ``coupons.issue_batch`` task has not issued the batch within GC_TASKS_WAIT_SECONDS (a busy worker): the
    page says it goes on in the background and the history lists it as 排队中; once issued, its counts."""
    from gc_admin.core import tasks

    monkeypatch.setenv("GC_TASKS_WAIT_SECONDS", "0")
    get_settings.cache_clear()
    monkeypatch.setattr(tasks, "worker_alive", lambda: True)  # a worker is up, busy: the page only waits
    token = sign_in("chen")

    async def scenario():
        iss = await state_of(IssuanceState, token)
        await iss.load()
        iss.product_code, iss.batch_id = "tpp50", "B-LATER"
        await iss.preview_batch({"phones": "13812345678\n13912345678"})
        events = await drain(IssuanceState.confirm_issue.fn(iss))
        queued = [dict(r) for r in iss.rows]
        await tasks.run_waiting_async()  # the worker gets to it
        await iss.load()
        return iss, events, queued

    iss, events, queued = run(scenario())
    assert not iss.issuing and iss.error == "" and iss.result == {} and iss.pending_token == ""
    assert ("info", "批次 B-LATER 已在后台排队中，完成后在发放记录中查看结果") in toasts(events)
    assert (queued[0]["batch_id"], queued[0]["status"], queued[0]["pending"]) == ("B-LATER", "排队中", "1")
    assert (iss.rows[0]["batch_id"], iss.rows[0]["status"], iss.rows[0]["pending"], iss.rows[0]["issued"]) == (
        "B-LATER", "已完成", "", "2")
    assert scalar("SELECT count(*) FROM coupon c JOIN issuance_batch b ON b.id = c.issuance_id "
                  "WHERE b.batch_id = 'B-LATER'") == 2
    get_settings.cache_clear()


def test_a_batch_whose_task_breaks_reads_failed_in_the_history(coupon_shop, monkeypatch):
    """The ``coupons.issue_batch`` task breaks (our bug): the page says nothing was issued and lists the batch as
    失败 (a red badge), not 排队中 for ever."""
    from gc_admin.coupons.issuance import service

    def broken(session, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(service, "_issue_rows", broken)
    token = sign_in("chen")

    async def scenario():
        iss = await state_of(IssuanceState, token)
        await iss.load()
        iss.product_code, iss.batch_id = "tpp50", "B-BROKEN"
        await iss.preview_batch({"phones": "13812345678\n13912345678"})
        events = await drain(IssuanceState.confirm_issue.fn(iss))
        return iss, events

    iss, events = run(scenario())
    assert not iss.issuing and iss.result == {} and iss.error == service.CRASHED
    assert ("error", f"发放失败：{service.CRASHED}") in toasts(events)
    assert (iss.rows[0]["batch_id"], iss.rows[0]["status"], iss.rows[0]["pending"], iss.rows[0]["broken"]) == (
        "B-BROKEN", "失败", "1", "1")
    assert scalar("SELECT count(*) FROM coupon c JOIN issuance_batch b ON b.id = c.issuance_id "
                  "WHERE b.batch_id = 'B-BROKEN'") == 0


def test_resubmitting_a_batch_id_shows_the_first_result(coupon_shop):
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


def test_an_unexpected_failure_while_issuing_frees_the_page(coupon_shop, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    from gc_admin.coupons.issuance import flows as issuance_flows

    monkeypatch.setattr(issuance_flows, "issue", broken)  # what the page calls (the coupons.issue_batch task)

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


def test_batch_id_reused_for_other_phones_is_refused(coupon_shop):
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


def test_issue_from_an_uploaded_file_and_download_the_result(coupon_shop):
    data = "姓名,手机号\n张三,13812345678\n李四,13912345678\n王五,12345\n".encode("gbk")

    async def scenario():
        iss = await state_of(IssuanceState, sign_in("chen"))
        await iss.load()
        uploaded = await iss.upload_phones([upload_file(data, "名单.csv")])
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


@pytest.mark.parametrize("data, message, code", [
    (b"", "文件为空", "PHONE_FILE_INVALID"),
    (b"  \n \n", "文件为空", "PHONE_FILE_INVALID"),
    (bytes(range(256)) * 50, "无法识别", "PHONE_FILE_INVALID"),
    ("手机号\n\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\n".encode(), "文件内容无法识别", "PHONE_FILE_INVALID"),
    (b"\xff\xfe\x00", "UTF-16", "PHONE_FILE_INVALID"),
    (b"PK\x03\x04garbage-not-a-zip", "无法读取该 Excel 文件", "UPLOAD_BAD_ARCHIVE"),  # the upload gate's refusal
    ("手机号\n".encode(), "文件中没有找到手机号", "PHONE_FILE_EMPTY"),
])
def test_bad_phone_files_give_a_clear_reason(data, message, code):
    from gc_admin.core.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        phone_files.read_phone_file(data)
    assert message in err.value.message and err.value.code == code


def test_phone_stash_round_trip_and_tokens_cannot_escape(private_uploads):
    token = phone_files.stash_phones(["13812345678", "bad phone"])
    assert phone_files.load_phones(token) == ["13812345678", "bad phone"]
    staging.discard_staged("phones", token, ".txt")
    from gc_admin.core.errors import NotFound

    for bad in (token, "../../etc/passwd", ""):
        with pytest.raises(NotFound) as err:
            phone_files.load_phones(bad)
        assert err.value.code == "STAGING_NOT_FOUND"
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


def test_batches_for_insurer_staff_are_their_programmes_own(coupon_shop):
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
            with pytest.raises(NotFound) as err:
                issuance_service.issuance_by_id(s, issuance_id=ids[foreign], programme_code="picc_gx")
            assert err.value.code == "ISSUANCE_NOT_FOUND"
        assert issuance_service.issuance_by_id(s, issuance_id=ids["CLUB-1"], programme_code="picc_gx").batch_id == "CLUB-1"
        assert issuance_service.issuance_by_id(s, issuance_id=ids["OLD"]).batch_id == "OLD"  # platform staff: every batch
        assert issuance_service.find_staff_batch(s, batch_id="B-CLERK", programme_code="picc_gx") is None
        assert issuance_service.find_staff_batch(s, batch_id="B-INS", programme_code="picc_gx") is not None
    assert n_all == 5 and [b.batch_id for b in everything] == ["B-OTHER", "CLUB-1", "B-INS", "B-CLERK", "OLD"]
    assert n_ins == 2 and [b.batch_id for b in insurer] == ["CLUB-1", "B-INS"]


def test_insurer_without_a_programme_gets_a_reason_and_nothing_else(coupon_shop):
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


# --- lists: exports, programme names, the issuance preview naming its bad lines -----------------------

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
