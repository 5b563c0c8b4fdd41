"""Stock import: reading CSV/Excel (encodings, headers, dates), per-row problems, whole-file refusals,
counts, idempotent re-import, discarding near-expiry codes, and no code in any report or audit row."""

import datetime as dt
import io
import os

import polars as pl
import pytest
import xlsxwriter

from gc_admin.core.clock import SHANGHAI, UTC, utcnow
from gc_admin.core.errors import InvalidInput
from gc_admin.coupons import service
from gc_admin.coupons.stock import flows as stock_flows
from gc_admin.coupons.stock.importer import FileRejected, end_of_day, read_codes_file
from gc_admin.db import session_scope
from tests.support import rows, scalar
from tests.unit.coupons.support import STAFF, audit_text, codes_csv, day, import_codes, setup_catalogue


def _eod(y, m, d):
    return dt.datetime(y, m, d, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Shanghai


def _xlsx(build) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    build(wb, wb.add_worksheet("券码"))
    wb.close()
    return buf.getvalue()


# --- reading files ---------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "utf-16"])
def test_csv_encodings_and_chinese_headers(encoding):
    text = "兑换码,到期日,面值（元）,成本(分),批次号\nAB-01,2026年12月31日,50,4500,第一批\n  00123  ,2026/1/5,50.5,,\n"
    parsed = read_codes_file(text.encode(encoding))
    assert parsed.file_type == "csv" and parsed.encoding == encoding
    assert parsed.columns == {"code": "兑换码", "expires_at": "到期日", "face_yuan": "面值（元）", "cost_fen": "成本(分)",
                              "batch_ref": "批次号"}
    rows = parsed.frame.to_dicts()
    assert [r["code"] for r in rows] == ["AB-01", "00123"]  # trimmed, leading zeros kept
    assert rows[0]["expires_at"] == _eod(2026, 12, 31) and rows[1]["expires_at"] == _eod(2026, 1, 5)
    assert [r["face_fen"] for r in rows] == [5000, 5050] and [r["cost_fen"] for r in rows] == [4500, None]
    assert rows[0]["batch_ref"] == "第一批" and all(r["reason"] is None for r in rows)


def test_excel_saved_as_csv_on_windows():
    """GBK, CRLF line ends, quoted fields, a trailing blank line: what Excel's "CSV" export gives."""
    data = '券码,有效期,面值\r\nA1,2026/12/31,50\r\n"B,2",2026-12-31,"60"\r\n\r\n'.encode("gbk")
    rows = read_codes_file(data).frame.to_dicts()
    assert [(r["row"], r["code"], r["face_fen"], r["reason"]) for r in rows] == [(2, "A1", 5000, None),
                                                                                  (3, "B,2", 6000, None)]


@pytest.mark.parametrize("text, expected", [
    ("2026-12-31", _eod(2026, 12, 31)),
    ("2026/12/31", _eod(2026, 12, 31)),
    ("2026.12.31", _eod(2026, 12, 31)),
    ("2026年12月31日", _eod(2026, 12, 31)),
    ("2026年1月5日", _eod(2026, 1, 5)),
    ("20261231", _eod(2026, 12, 31)),
    ("2026-12-31 00:00:00", _eod(2026, 12, 31)),  # how a plain Excel date cell reads: the whole day
    ("2026-12-31 12:30", dt.datetime(2026, 12, 31, 4, 30, tzinfo=UTC)),
    ("46387", _eod(2026, 12, 31)),  # an Excel serial number
    ("2026-02-30", None),
    ("31/12/2026", None),
    ("明年", None),
])
def test_date_formats(text, expected):
    frame = read_codes_file(f"code,expires_at\nA1,{text}\n".encode()).frame
    assert frame["expires_at"][0] == expected
    assert (frame["reason"][0] is None) == (expected is not None)
    if expected is None:
        assert "有效期无法识别" in frame["reason"][0]


def test_row_problems_are_reported_with_row_numbers():
    text = ("淘票票 2026 年 11 月券码\n"  # a title line above the header
            "券码,有效期,面值\n"
            "GOOD1,2026-12-31,50\n"
            "\n"  # blank lines are not rows, but keep the numbering
            ",2026-12-31,50\n"
            "NODATE,,50\n"
            "BADDATE,2026-13-01,50\n"
            "BADFACE,2026-12-31,五十\n"
            "1.23457E+15,2026-12-31,50\n"
            "OLD,1999-01-01,50\n"
            "GOOD2,20261231,\n")
    parsed = read_codes_file(text.encode())
    bad = {r["row"]: r["reason"] for r in parsed.frame.filter(pl.col("reason").is_not_null()).to_dicts()}
    assert bad == {
        5: "券码为空",
        6: "缺少有效期",
        7: "有效期无法识别（支持 2026-12-31、2026/12/31、2026年12月31日、20261231）",
        8: "面值不是有效金额",
        9: "券码被 Excel 存成了科学计数法数字，请把券码列设为文本后重新导出",
        10: "有效期年份不合理",
    }
    good = parsed.frame.filter(pl.col("reason").is_null())
    assert good["row"].to_list() == [3, 11] and good["code"].to_list() == ["GOOD1", "GOOD2"]
    assert parsed.rows == 8


def test_one_expiry_for_the_whole_file_and_other_separators():
    parsed = read_codes_file("code\tbatch\nT1\tb7\nT2\t\n".encode(), default_expires_at=dt.date(2027, 3, 1))
    assert parsed.frame["expires_at"].to_list() == [_eod(2027, 3, 1)] * 2
    assert parsed.frame["batch_ref"].to_list() == ["b7", None]
    # a row's own date wins over the file's
    parsed = read_codes_file(b"code;expires_at\nT1;2027-01-01\nT2;\n", default_expires_at=dt.date(2027, 3, 1))
    assert parsed.frame["expires_at"].to_list() == [_eod(2027, 1, 1), _eod(2027, 3, 1)]
    assert end_of_day(dt.date(2027, 3, 1)).astimezone(SHANGHAI).strftime("%H:%M:%S") == "23:59:59"


@pytest.mark.parametrize("data, reason", [
    (b"", "文件为空"),
    (b" \r\n \n", "文件为空"),
    ("手机号,姓名\n13800000000,张三\n".encode(), "未找到券码列"),
    (b"code,expires_at\n", "只有表头"),
    (b"code\nA1\nA2\n", "没有有效期列"),
    ("code,券码,expires_at\nA,B,2026-12-31\n".encode(), "出现了不止一次"),
    (b"\x00\x01\x02binary\x00garbage\x00" * 100, "无法识别"),
    (b"PK\x03\x04 not really a zip", "无法读取该 Excel 文件"),
    (b"code,expires_at\n\xff\xfe\xfa\x80 broken", "无法识别文件编码"),
])
def test_unreadable_files_are_refused_whole(data, reason):
    with pytest.raises(FileRejected) as err:
        read_codes_file(data)
    assert reason in err.value.reason


def test_ten_megabytes_of_random_bytes():
    with pytest.raises(FileRejected) as err:
        read_codes_file(os.urandom(10 * 1024 * 1024))
    assert "编码" in err.value.reason or "无法识别" in err.value.reason


def test_excel_cells_dates_numbers_and_an_offset_table():
    def build(wb, ws):
        date = wb.add_format({"num_format": "yyyy-mm-dd"})
        ws.write_row(1, 1, ["兑换码", "过期时间", "面值"])  # the table starts at B2
        ws.write_string(2, 1, "000777")
        ws.write_datetime(2, 2, dt.datetime(2026, 12, 31), date)
        ws.write_number(2, 3, 50)
        ws.write_number(3, 1, 1234567890123)  # a short numeric code survives
        ws.write_string(3, 2, "2026年12月31日")
        ws.write_number(4, 1, 12345678901234567890)  # too long for a number: digits lost
        ws.write_number(4, 2, 46387)
    parsed = read_codes_file(_xlsx(build), filename="codes.xlsx")
    rows = parsed.frame.to_dicts()
    assert parsed.file_type == "xlsx"
    assert [r["row"] for r in rows] == [3, 4, 5]
    assert rows[0]["code"] == "000777" and rows[0]["face_fen"] == 5000 and rows[0]["expires_at"] == _eod(2026, 12, 31)
    assert rows[1]["code"] == "1234567890123" and rows[1]["reason"] is None
    assert "末几位已丢失" in rows[2]["reason"]


def test_excel_with_merged_header_cells_is_refused():
    def build(wb, ws):
        ws.merge_range(0, 0, 0, 1, "券码及有效期")
        ws.write_row(1, 0, ["A1", "2026-12-31"])
    with pytest.raises(FileRejected) as err:
        read_codes_file(_xlsx(build))
    assert "合并单元格（A1:B1）" in err.value.reason


def test_excel_without_a_code_column():
    with pytest.raises(FileRejected) as err:
        read_codes_file(_xlsx(lambda wb, ws: ws.write_row(0, 0, ["名称", "日期"])))
    assert "未找到券码列" in err.value.reason


# --- importing -------------------------------------------------------------------------------

def test_import_counts_and_reimport_imports_nothing(any_db):
    setup_catalogue()
    data = codes_csv([("K1", 90), ("K2", 90), ("K1", 90), (" K3 ", 45), ("K4", 10), ("K5", -3)]) + b",2026-01-01\n"
    with session_scope() as s:
        r = service.import_codes(s, actor=STAFF, product_code="tpp50", data=data, filename="第一批.csv", batch_ref="B-1")
    assert (r.rows, r.imported, r.in_stock, r.duplicate_in_file, r.duplicate_existing, r.discarded_near_expiry) == (
        7, 5, 3, 1, 0, 2)
    assert r.invalid == [{"row": 8, "reason": "券码为空"}] and r.invalid_count == 1
    assert (r.face_fen_total, r.cost_fen_total, r.discarded_cost_fen) == (25000, 22500, 9000)
    states = dict(rows("SELECT code, state FROM stock_code"))
    assert states == {"K1": "in_stock", "K2": "in_stock", "K3": "in_stock", "K4": "discarded", "K5": "discarded"}
    assert scalar("SELECT count(*) FROM stock_code WHERE batch_ref = 'B-1'") == 5
    with session_scope() as s:
        again = service.import_codes(s, actor=STAFF, product_code="tpp50", data=data, filename="第一批.csv")
    assert (again.imported, again.duplicate_existing, again.duplicate_in_file) == (0, 5, 1)
    assert (again.face_fen_total, again.discarded_cost_fen) == (0, 0)
    assert scalar("SELECT count(*) FROM stock_code") == 5
    # codes are unique across products too
    with session_scope() as s:
        other = service.import_codes(s, actor=STAFF, product_code="tpp5", data=codes_csv([("K2", 90), ("Z9", 90)]))
    assert (other.imported, other.duplicate_existing) == (1, 1)
    with session_scope() as s:
        page = service.list_imports(s)
        assert page.total == 3 and page.rows[0].import_id == other.import_id
        assert service.get_import(s, import_id=r.import_id).invalid == r.invalid


def test_partial_duplicates_sum_only_what_went_in(any_db):
    setup_catalogue()
    import_codes("tpp50", [("D1", 90), ("D2", 5)])
    data = "code,expires_at,face_fen,cost_fen\n" + f"D1,{day(90)},9900,9900\nD3,{day(90)},6000,5500\n" \
           f"D2,{day(5)},100,100\nD4,{day(5)},700,600\n"
    with session_scope() as s:
        r = service.import_codes(s, actor=STAFF, product_code="tpp50", data=data.encode())
    assert (r.imported, r.duplicate_existing, r.discarded_near_expiry) == (2, 2, 1)
    assert (r.face_fen_total, r.cost_fen_total, r.discarded_cost_fen) == (6700, 6100, 600)


@pytest.mark.parametrize("name, data", [
    ("empty", b""),
    ("wrong columns", "手机号,金额\n13800000000,50\n".encode()),
    ("gbk garbage", "券码,有效期\n".encode("gbk") + bytes(range(128, 256)) * 50),
    ("random", os.urandom(10 * 1024 * 1024)),
    ("merged", None),
])
def test_bad_files_import_nothing_and_say_why(any_db, name, data):
    setup_catalogue()
    import_codes("tpp50", [("KEEP1", 90)])
    if data is None:
        def build(wb, ws):
            ws.merge_range(0, 0, 0, 1, "券码 / 有效期")
            for i in range(1, 50):
                ws.write_row(i, 0, [f"M{i}", "2027-01-01"])
        data = _xlsx(build)
    before = scalar("SELECT count(*) FROM stock_code")
    with pytest.raises(InvalidInput) as err:  # as the API and the page import: the refusal recorded by the caller
        stock_flows.import_file(actor=STAFF, product_code="tpp50", data=data, filename=f"{name}.csv")
    assert err.value.code == "IMPORT_FILE_INVALID" and err.value.message
    assert scalar("SELECT count(*) FROM stock_code") == before
    # the refusal itself is kept: a failed import record and an audit row, with the reason
    with session_scope() as s:
        failed = service.get_import(s, import_id=err.value.details["import_id"])
    assert failed.status == "failed" and failed.error == err.value.message and failed.imported == 0
    assert "stock.import_failed" in audit_text()
    assert "失败原因" in service.import_report_csv(failed).decode("utf-8-sig")


def test_a_refused_file_keeps_nothing_of_the_unit_of_work_that_tried_it(any_db):
    """The service commits nothing on its way out (no ``keep_changes``): the refusal rolls its unit of work
    back like any error, and the failed import is the caller's to record, in its own unit of work."""
    setup_catalogue()
    with pytest.raises(InvalidInput) as err:
        with session_scope() as s:
            service.import_codes(s, actor=STAFF, product_code="tpp50", data=b"hello,world\n1,2\n", filename="x.csv")
    assert err.value.code == "IMPORT_FILE_INVALID" and not hasattr(err.value, "keep_changes")
    assert scalar("SELECT count(*) FROM stock_import") == 0 and "stock.import_failed" not in audit_text()
    with pytest.raises(InvalidInput) as err:
        stock_flows.import_file(actor=STAFF, product_code="tpp50", data=b"hello,world\n1,2\n", filename="x.csv")
    assert scalar("SELECT count(*) FROM stock_import WHERE status = 'failed'") == 1
    assert scalar("SELECT count(*) FROM stock_import") == 1 and "stock.import_failed" in audit_text()
    with session_scope() as s:
        assert service.get_import(s, import_id=err.value.details["import_id"]).error == err.value.message


def test_only_code_products_have_stock(db):
    setup_catalogue()
    with pytest.raises(InvalidInput) as err:
        with session_scope() as s:
            service.import_codes(s, actor=STAFF, product_code="flower30", data=codes_csv([("X", 90)]))
    assert err.value.code == "NOT_A_CODE_PRODUCT"


def test_file_level_expiry_and_per_row_values(db):
    setup_catalogue()
    data = "券码,面值,成本\nE1,60,55\nE2,,\n".encode("gbk")
    when = (utcnow() + dt.timedelta(days=100)).astimezone(SHANGHAI).date()
    with session_scope() as s:
        r = service.import_codes(s, actor=STAFF, product_code="tpp50", data=data, expires_at=when)
    assert r.imported == 2 and r.face_fen_total == 6000 + 5000 and r.cost_fen_total == 5500 + 4500
    assert rows("SELECT code, face_fen, cost_fen FROM stock_code ORDER BY code") == [
        ("E1", 6000, 5500), ("E2", 5000, 4500)]


def test_reports_and_audit_never_contain_a_code(any_db):
    setup_catalogue()
    codes = [f"SECRET{i:04d}CODE" for i in range(30)]
    body = "code,expires_at\n" + "".join(f"{c},{day(90 if i % 3 else 3)}\n" for i, c in enumerate(codes))
    body += f"{codes[0]},{day(90)}\n{codes[1]},13/13/2026\n"  # a duplicate and a bad row that quotes no code
    with session_scope() as s:
        r = service.import_codes(s, actor=STAFF, product_code="tpp50", data=body.encode(), filename="x.csv")
    blobs = [repr(r), repr(r.to_dict()), service.import_report_csv(r).decode("utf-8-sig"), audit_text()]
    with session_scope() as s:
        blobs.append(repr(service.list_imports(s)))
    for blob in blobs:
        assert not any(c in blob for c in codes)
    report = service.import_report_csv(r).decode("utf-8-sig")
    assert "与已有库存重复" in report and "行号,原因" in report and str(r.invalid[0]["row"]) in report


def test_large_import_is_set_based(db):
    """20,000 codes go in through a handful of statements, not an ORM add (or a statement) per row."""
    import sqlalchemy as sa

    setup_catalogue()
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    data = codes_csv([(f"BULK{i:06d}", 60 + i % 30) for i in range(20_000)])
    with session_scope() as s:
        engine = s.get_bind()
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            r = service.import_codes(s, actor=STAFF, product_code="tpp50", data=data)
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
    assert r.imported == 20_000 and scalar("SELECT count(*) FROM stock_code") == 20_000
    assert len(statements) < 20
