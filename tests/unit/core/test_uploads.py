"""The upload gate (gc_admin.core.uploads): files that would blow a parser up are refused from their bytes
and zip metadata, with a code and a Chinese message, before polars or calamine sees them.

The hostile files are real: a zip-bomb .xlsx (a few hundred MB of sheet XML deflated to under 1 MB), a
CSV whose header has 1,000,000 columns, a CSV with one 49 MB line, a CSV with more rows than Excel
holds, and two siblings found while fixing: an .xlsx of two cells (A1, ZZ300000) whose used range is
210 million cells, and an .xlsx whose 20,000 cells all point at one 100 KB shared string. The file
builders here are shared with ``test_uploads_paths`` (every upload path: API, dashboard, services).
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import re
import struct
import subprocess
import sys
import zipfile

import pytest

from gc_admin.config import ConfigError, UploadLimits, get_settings, load_settings
from gc_admin.core.uploads import UploadRefused, check_upload

MB = 1024 * 1024
NS = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
CONTENT_TYPES = (b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                 b'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
                 b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName='
                 b'"/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.'
                 b'main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats'
                 b'-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType='
                 b'"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
RELS = (b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        b'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        b'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
WORKBOOK = (b'<?xml version="1.0" encoding="UTF-8"?><workbook ' + NS + b' xmlns:r="http://schemas.openxmlformats.org/'
            b'officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>')
WORKBOOK_RELS = (b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
                 b'2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
                 b'2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://'
                 b'schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
                 b'</Relationships>')
HEADER_ROW = b'<row r="1"><c r="A1" t="inlineStr"><is><t>code</t></is></c><c r="B1" t="inlineStr"><is><t>expires_at</t></is></c></row>'


def _package(z: zipfile.ZipFile) -> None:
    """The parts every workbook here has: content types, package and workbook relationships, the workbook."""
    for name, data in (("[Content_Types].xml", CONTENT_TYPES), ("_rels/.rels", RELS), ("xl/workbook.xml", WORKBOOK),
                       ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)):
        z.writestr(name, data)


def xlsx(sheet_data: bytes = HEADER_ROW, *, shared: list[bytes] | None = None, extra: dict[str, bytes] | None = None,
         sheet: bytes | None = None) -> bytes:
    """A minimal, valid .xlsx (fastexcel reads it) with the given ``<sheetData>`` content."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        _package(z)
        z.writestr("xl/worksheets/sheet1.xml", sheet if sheet is not None else
                   b'<?xml version="1.0" encoding="UTF-8"?><worksheet ' + NS + b"><sheetData>" + sheet_data
                   + b"</sheetData></worksheet>")
        items = b"".join(b"<si><t>" + s + b"</t></si>" for s in (shared or []))
        z.writestr("xl/sharedStrings.xml", b'<?xml version="1.0" encoding="UTF-8"?><sst ' + NS + b">" + items + b"</sst>")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


@functools.lru_cache(maxsize=None)
def zip_bomb_xlsx() -> bytes:
    """300 MB of sheet rows deflated to about 0.9 MB (written streaming: the test never holds 300 MB)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        _package(z)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(b'<?xml version="1.0" encoding="UTF-8"?><worksheet ' + NS + b"><sheetData>" + HEADER_ROW)
            block = b"<row><c><v>1</v></c><c><v>46000</v></c></row>" * 23_000  # ~1 MB
            for _ in range(300):
                fh.write(block)
            fh.write(b"</sheetData></worksheet>")
    return buf.getvalue()


@functools.lru_cache(maxsize=None)
def dense_range_xlsx() -> bytes:
    """Two cells, A1 and ZZ300000: 1.5 KB that calamine turns into a 300,000 x 702 grid (10 GB)."""
    return xlsx(HEADER_ROW + b'<row r="300000"><c r="ZZ300000" t="inlineStr"><is><t>x</t></is></c></row>')


@functools.lru_cache(maxsize=None)
def shared_string_bomb_xlsx() -> bytes:
    """20,000 cells all pointing at one 100 KB shared string: 2 GB of text once expanded into cells."""
    rows = b"".join(b'<row r="%d"><c r="A%d" t="s"><v>1</v></c></row>' % (i, i) for i in range(2, 20_002))
    header = b'<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
    return xlsx(header + rows, shared=[b"code", b"x" * 100_000])


@functools.lru_cache(maxsize=None)
def wide_header_csv() -> bytes:
    """A header of 1,000,000 columns (6.9 MB), then one ordinary row."""
    return b"code,expires_at," + b",".join(b"c%d" % i for i in range(1_000_000)) + b"\nA1,2099-12-31\n"


@functools.lru_cache(maxsize=None)
def long_line_csv() -> bytes:
    """One 49 MB line (the file stays under the 50 MB cap, so it is the line that is refused)."""
    return b"code,expires_at\n" + b"A" * (49 * MB) + b",2099-12-31\n"


@functools.lru_cache(maxsize=None)
def many_rows_csv() -> bytes:
    """A well-formed codes file of 1,100,000 rows: more than an Excel sheet holds (1,048,576)."""
    return b"code,expires_at\n" + b"".join(b"R%07d,2099-12-31\n" % i for i in range(1_100_000))


HOSTILE = {  # name -> (builder, the code it is refused with)
    "zip_bomb_xlsx": (zip_bomb_xlsx, "UPLOAD_ZIP_BOMB"),
    "wide_header_csv": (wide_header_csv, "UPLOAD_TOO_MANY_COLUMNS"),
    "long_line_csv": (long_line_csv, "UPLOAD_LINE_TOO_LONG"),
    "many_rows_csv": (many_rows_csv, "UPLOAD_TOO_MANY_ROWS"),
    "dense_range_xlsx": (dense_range_xlsx, "UPLOAD_TOO_MANY_CELLS"),
    "shared_string_bomb_xlsx": (shared_string_bomb_xlsx, "UPLOAD_ZIP_BOMB"),
}


def refusal(data: bytes) -> UploadRefused:
    """What the gate says about ``data`` (it must refuse it)."""
    with pytest.raises(UploadRefused) as err:
        check_upload(data)
    return err.value


# --- the gate -------------------------------------------------------------------------------

def test_hostile_files_are_small_on_disk():
    """The point of each: tiny or ordinary on disk, enormous inside a parser."""
    assert len(zip_bomb_xlsx()) < 1 * MB
    info = zipfile.ZipFile(io.BytesIO(zip_bomb_xlsx())).getinfo("xl/worksheets/sheet1.xml")
    assert info.file_size > 290 * MB and info.file_size / info.compress_size > 300
    assert len(dense_range_xlsx()) < 2048 and len(shared_string_bomb_xlsx()) < 200 * 1024
    assert wide_header_csv().count(b",", 0, wide_header_csv().index(b"\n")) > 1_000_000


@pytest.mark.parametrize("name", list(HOSTILE))
def test_each_hostile_file_is_refused_with_its_code_and_a_chinese_message(name):
    build, code = HOSTILE[name]
    err = refusal(build())
    assert err.code == code and err.status == 422
    assert re.search(r"[\u4e00-\u9fff]{4}", err.message) and "请" in err.message  # Chinese, saying what to do


def test_messages_say_what_is_wrong_and_what_to_do():
    assert refusal(wide_header_csv()).message == "第 1 行超过 1,024 列上限，不像正常的表格文件；请只保留需要的列后重试"
    assert refusal(long_line_csv()).message == "第 2 行超过 64 KB 的单行上限，文件可能缺少换行或不是表格；请每行一条记录后重试"
    assert refusal(many_rows_csv()).message == "文件超过 1,048,576 行上限，请拆分后分批上传"
    assert refusal(zip_bomb_xlsx()).message.startswith("Excel 文件解压后过大（xl/worksheets/sheet1.xml 解压后 ")
    assert "300,000 行 × 702 列" in refusal(dense_range_xlsx()).message


def test_ordinary_files_pass():
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf)
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["券码", "有效期", "面值"])
    for i in range(1, 20_001):
        ws.write_row(i, 0, [f"TPP{i:010d}", "2027-12-31", 50])
    ws.merge_range(20_002, 0, 20_002, 2, "备注：合并单元格也只是元数据")
    wb.close()
    assert check_upload(buf.getvalue()) == "xlsx"
    assert check_upload("券码,有效期\nA1,2027-01-01\n".encode("gbk")) == "text"
    assert check_upload("券码\tphone\r\n".encode("utf-16")) == "text"
    assert check_upload(b"code,expires_at\n" + b"X" * 60_000 + b",2027-01-01\n") == "text"  # long, under 64 KB
    assert check_upload(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100) == "xls"  # not compressed: the byte cap bounds it
    assert check_upload(b"") == "text"
    # binary parts are size-checked, not read as XML (a picture starts with its magic bytes; random bytes alone
    # began with "<" once in ~200 runs and were, rightly, parsed as XML)
    photo = b"\x89PNG\r\n\x1a\n" + os.urandom(3 * MB).replace(b">", b"?")
    assert check_upload(xlsx(HEADER_ROW, extra={"xl/media/image1.png": photo})) == "xlsx"
    # a million ordinary rows (the import benchmark's size) is well inside every limit
    assert check_upload(b"code,expires_at\n" + b"TPP0000000000001,2027-12-31\n" * 1_000_000) == "text"


@pytest.mark.parametrize("data, code", [
    (b"a\n" * 11 + b",".join([b"x"] * 1100) + b"\n", "UPLOAD_TOO_MANY_COLUMNS"),  # any line, not just the header
    (b";".join([b"x"] * 1025) + b"\n", "UPLOAD_TOO_MANY_COLUMNS"),  # any of the separators
    (b",".join([b"x"] * 1000) + b"\n" + b"a\n" * 11_000, "UPLOAD_TOO_MANY_CELLS"),  # wide header x many lines
    ("券码\n".encode("utf-16") + "A".encode("utf-16-le") * 40_000, "UPLOAD_LINE_TOO_LONG"),  # in UTF-16 too
    (b"x" * (5 * MB), "UPLOAD_LINE_TOO_LONG"),  # no line break at all
    (b"PK\x03\x04 not really a zip", "UPLOAD_BAD_ARCHIVE"),
])
def test_csv_and_broken_zip_siblings(data, code):
    assert refusal(data).code == code


def _zip(entries: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _lie_about_size(data: bytes, name: bytes, size: int) -> bytes:
    """The same archive, its central directory claiming ``name`` inflates to ``size`` bytes."""
    out, at = bytearray(data), 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        n = struct.unpack("<H", data[at + 28:at + 30])[0]
        if data[at + 46:at + 46 + n] == name:
            out[at + 24:at + 28] = struct.pack("<L", size)
        at += 4
    return bytes(out)


@pytest.mark.parametrize("build, code, fragment", [
    (lambda: _zip({"xl/workbook.xml": WORKBOOK, **{f"xl/media/{i}.png": b"" for i in range(1001)}}), "UPLOAD_ZIP_BOMB",
     "1,002 个部件"),
    (lambda: _zip({"xl/workbook.xml": WORKBOOK, "xl/a.xml": b"<a/>" * (10 * MB), "xl/b.xml": b"<b/>" * (8 * MB)}),
     "UPLOAD_ZIP_BOMB", "压缩比"),  # each part of 30-40 MB compressed a thousand-fold
    (lambda: _lie_about_size(xlsx(HEADER_ROW + b"<row><c/></row>" * 50_000), b"xl/worksheets/sheet1.xml", 900),
     "UPLOAD_ZIP_BOMB", "实际解压大小超过其声明"),
    (lambda: xlsx(extra={"xl/embeddings/Microsoft_Excel_Worksheet.xlsx": xlsx()}), "UPLOAD_BAD_ARCHIVE", "嵌入"),
    (lambda: xlsx(extra={"xl/media/image1.png": _zip({"x": b"y"})}), "UPLOAD_BAD_ARCHIVE", "嵌入"),  # by content too
    (lambda: xlsx(extra={"../../etc/cron.d/x": b"x"}), "UPLOAD_BAD_ARCHIVE", "路径不合法"),
    (lambda: xlsx(extra={"XL/WORKBOOK.XML": WORKBOOK}), "UPLOAD_BAD_ARCHIVE", "部件重复"),
    (lambda: _zip({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": b"<x/>"}),
     "UPLOAD_BAD_ARCHIVE", "不是 Excel .xlsx 文件"),
    (lambda: _zip({"xl/workbook.bin": b"\x00" * 10, "xl/workbook.xml": WORKBOOK}), "UPLOAD_BAD_ARCHIVE", ".xlsb"),
    (lambda: _zip({"xl/workbook.xml": WORKBOOK}, method=zipfile.ZIP_BZIP2), "UPLOAD_BAD_ARCHIVE", "压缩方式"),
    # the used range, however the cells are spelt: prefixed elements, blanks around '=', single quotes,
    # cells without a reference (placed one after another), a far row number on the row only
    (lambda: xlsx(sheet=b'<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:sheetData>'
                  b'<x:row r="1"><x:c r = \'A1\'/></x:row><x:row r="300000"><x:c r="ZZ300000"/></x:row>'
                  b"</x:sheetData></x:worksheet>"), "UPLOAD_TOO_MANY_CELLS", "300,000 行 × 702 列"),
    (lambda: xlsx(b"<row>" + b"<c/>" * 2000 + b"</row>"), "UPLOAD_TOO_MANY_COLUMNS", "2,000 列"),
    (lambda: xlsx(HEADER_ROW + b'<row r="2000000"><c><v>1</v></c></row>'), "UPLOAD_TOO_MANY_ROWS", "2,000,000 行"),
    (lambda: xlsx(b'<row r="1"><c r="XFD1"/></row>'), "UPLOAD_TOO_MANY_COLUMNS", "16,384 列"),
    (lambda: xlsx(sheet="<worksheet><sheetData><row><c/></row></sheetData></worksheet>".encode("utf-16")),
     "UPLOAD_BAD_ARCHIVE", "UTF-16"),  # the patterns read UTF-8; Excel never writes anything else
    (lambda: xlsx(sheet=b"<worksheet><sheetData><row><c><is><t>" + base64.b32encode(os.urandom(MB + MB // 4))),
     "UPLOAD_BAD_ARCHIVE", "超长"),  # 2 MB with no '>': no spreadsheet program writes a cell that long
])
def test_xlsx_siblings_are_refused_from_metadata_and_one_streaming_pass(build, code, fragment):
    err = refusal(build())
    assert err.code == code and fragment in err.message, err.message


def test_limits_come_from_the_environment_and_bad_values_are_refused():
    s = load_settings({"GC_UPLOAD_MAX_MB": "8", "GC_UPLOAD_MAX_ROWS": "500", "GC_UPLOAD_MAX_COLUMNS": "12",
                       "GC_UPLOAD_MAX_CELLS": "3000", "GC_UPLOAD_MAX_LINE_KB": "2", "GC_UPLOAD_XLSX_MAX_ENTRIES": "40",
                       "GC_UPLOAD_XLSX_MAX_ENTRY_MB": "5", "GC_UPLOAD_XLSX_MAX_TOTAL_MB": "6",
                       "GC_UPLOAD_XLSX_MAX_RATIO": "30"})
    assert s.uploads == UploadLimits(max_bytes=8 * MB, max_rows=500, max_columns=12, max_cells=3000, max_line_bytes=2048,
                                     xlsx_max_entries=40, xlsx_max_entry_bytes=5 * MB, xlsx_max_total_bytes=6 * MB,
                                     xlsx_max_ratio=30)
    assert load_settings({}).uploads == UploadLimits()
    for bad in ({"GC_UPLOAD_MAX_MB": "0"}, {"GC_UPLOAD_MAX_COLUMNS": "-1"}, {"GC_UPLOAD_XLSX_MAX_RATIO": "lots"}):
        with pytest.raises(ConfigError):
            load_settings(bad)


def test_the_configured_limits_are_the_ones_applied(monkeypatch):
    monkeypatch.setenv("GC_UPLOAD_MAX_ROWS", "100")
    monkeypatch.setenv("GC_UPLOAD_MAX_MB", "1")
    get_settings.cache_clear()
    try:
        assert refusal(b"code\n" + b"A\n" * 100).message == "文件超过 100 行上限，请拆分后分批上传"
        big = refusal(b"x\n" * (MB // 2 + 1))
        assert (big.code, big.status, big.message) == (
            "UPLOAD_TOO_LARGE", 413, "文件超过 1 MB 上限，请拆分成几个较小的文件后分批上传")
        assert check_upload(b"code\n" + b"A\n" * 98) == "text"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


# --- memory -----------------------------------------------------------------------------------

MEMORY_PROBE = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from tests.unit.core import test_uploads as t
from gc_admin.coupons.stock.importer import FileRejected, read_codes_file
from gc_admin.coupons.issuance import files as phone_files
from gc_admin.core.errors import InvalidInput
files = {name: build() for name, (build, _code) in t.HOSTILE.items()}
# A guard for the machine, not the assertion: a parser that inflates dies here instead of swapping.
with open("/proc/self/status") as fh:
    vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
_soft, hard = resource.getrlimit(resource.RLIMIT_AS)
soft = vm + 3 * 1024 ** 3 if hard == resource.RLIM_INFINITY else min(hard, vm + 3 * 1024 ** 3)
resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
codes = {}
for name, data in files.items():
    try:
        read_codes_file(data, filename=name)
        codes[name] = ["imported"]
    except FileRejected as exc:
        codes[name] = [exc.code]
    try:
        phone_files.read_phone_file(data, filename=name)
        codes[name].append("read")
    except InvalidInput as exc:
        codes[name].append(exc.code)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"codes": codes, "grew_mb": (peak - before) / 1024}))
"""


def test_refusing_every_hostile_file_keeps_memory_small():
    """In a fresh process: refusing all six files (stock import and phone-file readers) raises the peak RSS
    by less than 200 MB, where parsing them took gigabytes."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    proc = subprocess.run([sys.executable, "-c", MEMORY_PROBE, root], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "POLARS_MAX_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["codes"] == {name: [code, code] for name, (_build, code) in HOSTILE.items()}
    assert out["grew_mb"] < 200, out
