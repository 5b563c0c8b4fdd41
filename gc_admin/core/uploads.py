"""The one gate every uploaded file passes before a parser (polars, fastexcel/calamine) sees it.

Why: parsers amplify. A 1 MB zip-bomb ``.xlsx`` inflates to gigabytes inside calamine; a 1.5 KB
``.xlsx`` with cells ``A1`` and ``ZZ300000`` makes calamine allocate a dense 300,000 x 702 grid
(10 GB); a 200 KB ``.xlsx`` whose 20,000 cells all point at one 100 KB shared string becomes 4 GB;
a CSV with a 1,000,000-column header or a 50 MB line makes polars build a frame that wide. So the
file is judged from its bytes and its zip metadata first, cheaply and with bounded memory:

- every upload: at most ``max_bytes`` (:func:`read_upload` stops reading there; the
  :class:`UploadSizeLimit` middleware refuses a bigger multipart body before it is read at all);
- ``.xlsx`` (zip): the entry count from the end-of-central-directory record (before ``zipfile``
  builds its index), then from the metadata: each part's and the total uncompressed size, the
  compression ratio, names (absolute, ``..``, duplicates), encryption, compression method, nested
  archives / embedded files, xlsb/ods masquerading as xlsx; then one streaming pass (zlib, 1 MB at a
  time) that proves each part inflates to exactly its declared size (a lying header is a bomb) and
  measures each worksheet's used range (rows x columns a parser allocates) and how far its shared
  strings expand;
- CSV / TXT: rows, the longest line, the widest line (separators ``, \\t ; |`` counted without regard
  to quotes: an upper bound), and lines x the widest of the first ten lines (the width polars takes);
  byte-level, so UTF-8, GBK and UTF-16 need no decoding here (the parsers keep their own decoding);
- ``.xls`` (OLE2) is not compressed: the byte cap bounds it.

A refusal is an :class:`UploadRefused` (``InvalidInput``) with a code (``UPLOAD_TOO_LARGE``,
``UPLOAD_ZIP_BOMB``, ``UPLOAD_BAD_ARCHIVE``, ``UPLOAD_TOO_MANY_ROWS``, ``UPLOAD_TOO_MANY_COLUMNS``,
``UPLOAD_TOO_MANY_CELLS``, ``UPLOAD_LINE_TOO_LONG``) and a Chinese message; nothing has been parsed or
imported. The limits are :class:`gc_admin.config.UploadLimits` (``GC_UPLOAD_*``).

Feature code calls :func:`check_upload` at the top of its file reader (so the API, the dashboard and
any later caller are covered by the same call) and :func:`read_upload` to read an upload. Parsing runs
off the event loop (FastAPI threadpool / ``asyncio.to_thread``); fastexcel and polars release the GIL.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import struct
import zipfile
import zlib
from array import array
from collections.abc import Iterator
from operator import itemgetter, methodcaller
from typing import Any

from gc_admin.config import UploadLimits, get_settings
from gc_admin.core.errors import InvalidInput

XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
SEPARATORS = (b",", b"\t", b";", b"|")
HEAD_LINES = 10  # parsers take a table's width from a line among the first ten (header scan)
MULTIPART_OVERHEAD = 1024 * 1024  # form fields and part headers around the file
RATIO_FLOOR = 1024 * 1024  # the ratio rule applies to parts bigger than this (tiny parts compress oddly)
_WINDOW = 4 * 1024 * 1024
_CHUNK = 1024 * 1024
_DIR_ENTRY_BYTES = 1024  # a central-directory record: 46 bytes + name + extra; real parts stay far below
_MAX_TAG = 1024 * 1024  # no '>' for this long inside a part: not an XML a spreadsheet program wrote
_NESTED_EXT = (".zip", ".xlsx", ".xlsm", ".xlsb", ".xls", ".xltx", ".docx", ".doc", ".pptx", ".ppt", ".ods", ".odt",
               ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".tar", ".jar", ".cab", ".zst")
_NESTED_MAGIC = (XLSX_MAGIC, OLE_MAGIC, b"\x1f\x8b", b"7z\xbc\xaf\x27\x1c", b"Rar!", b"BZh", b"\xfd7zXZ")

_P = rb"(?:[A-Za-z_][\w.\-]*:)?"  # an optional namespace prefix: <x:c ...> is a cell too (calamine reads it)
_EQ = rb"\s*=\s*[\"']"  # blanks around '=' and either quote are valid XML
# Full patterns (any prefix), used for a piece that has prefixed elements; fast ones otherwise.
_CELL_TAG = re.compile(rb"<" + _P + rb"c[\s/>]")
_ROW_TAG = re.compile(rb"<" + _P + rb"row[\s/>]")
_CELL_REF = re.compile(rb"<" + _P + rb"c\s[^>]*?\br" + _EQ + rb"\$?([A-Za-z]{1,4})\$?([0-9]{1,9})[\"']")
_ROW_REF = re.compile(rb"<" + _P + rb"row\s[^>]*?\br" + _EQ + rb"([0-9]{1,9})[\"']")
_SHARED_T = re.compile(rb"<" + _P + rb"c\s[^>]*?\bt" + _EQ + rb"s[\"']")
_SHARED_CELL = re.compile(rb"<" + _P + rb"c\s[^>]*?\bt" + _EQ + rb"s[\"'][^>]*>\s*<" + _P + rb"v>\s*([0-9]{1,10})\s*<")
_CELL_TAG_F = re.compile(rb"<c[\s/>]")
_ROW_TAG_F = re.compile(rb"<row[\s/>]")
_CELL_REF_F = re.compile(rb"<c\s[^>]*?\br" + _EQ + rb"\$?([A-Za-z]{1,4})\$?([0-9]{1,9})[\"']")
_ROW_REF_F = re.compile(rb"<row\s[^>]*?\br" + _EQ + rb"([0-9]{1,9})[\"']")
_PREFIXED = re.compile(rb"<[A-Za-z_][\w.\-]*:(?:c|row|v)[\s/>]")
_SI = re.compile(rb"<(/?)" + _P + rb"si[\s/>]")


class UploadRefused(InvalidInput):
    """An upload refused before parsing: ``code`` is ``UPLOAD_*``, ``message`` Chinese."""

    code = "UPLOAD_REFUSED"

    def __init__(self, message: str, *, code: str, status: int = 422) -> None:
        super().__init__(message, code=code)
        self.status = status


def limits() -> UploadLimits:
    """The configured limits (``GC_UPLOAD_*``)."""
    return get_settings().uploads


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:,.0f} MB" if n >= 1024 * 1024 else f"{max(1, n // 1024):,} KB"


def too_large(lim: UploadLimits | None = None) -> UploadRefused:
    lim = lim or limits()
    return UploadRefused(f"文件超过 {_mb(lim.max_bytes)} 上限，请拆分成几个较小的文件后分批上传",
                         code="UPLOAD_TOO_LARGE", status=413)


def check_size(size: int, lim: UploadLimits | None = None) -> None:
    lim = lim or limits()
    if size > lim.max_bytes:
        raise too_large(lim)


async def read_upload(file: Any, *, lim: UploadLimits | None = None) -> bytes:
    """All bytes of an upload (FastAPI ``UploadFile``, Reflex ``rx.UploadFile``: anything with an async
    ``read(n)``), refusing it with ``UPLOAD_TOO_LARGE`` as soon as it passes the cap, unread beyond that."""
    lim = lim or limits()
    size = getattr(file, "size", None)
    if isinstance(size, int):
        check_size(size, lim)
    chunks: list[bytes] = []
    total = 0
    while chunk := await file.read(_CHUNK):
        total += len(chunk)
        check_size(total, lim)
        chunks.append(chunk)
    return b"".join(chunks)


def kind_of(data: bytes) -> str:
    """``xlsx`` (a zip), ``xls`` (OLE2) or ``text`` — by content, the way the parsers dispatch."""
    if data[:4] == XLSX_MAGIC:
        return "xlsx"
    if data[:8] == OLE_MAGIC:
        return "xls"
    return "text"


def check_upload(data: bytes, *, lim: UploadLimits | None = None) -> str:
    """Refuse (:class:`UploadRefused`) a file a parser must not see; returns its kind (see :func:`kind_of`)."""
    lim = lim or limits()
    check_size(len(data), lim)
    kind = kind_of(data)
    if kind == "xlsx":
        check_xlsx(data, lim=lim)
    elif kind == "text":
        check_text(data, lim=lim)
    return kind


# --- CSV / TXT -------------------------------------------------------------------------------

def _too_many_rows(lim: UploadLimits) -> UploadRefused:
    return UploadRefused(f"文件超过 {lim.max_rows:,} 行上限，请拆分后分批上传", code="UPLOAD_TOO_MANY_ROWS")


def _too_many_columns(where: str, lim: UploadLimits) -> UploadRefused:
    return UploadRefused(f"{where}超过 {lim.max_columns:,} 列上限，不像正常的表格文件；请只保留需要的列后重试",
                         code="UPLOAD_TOO_MANY_COLUMNS")


def _too_many_cells(rows: int, cols: int, lim: UploadLimits, where: str = "表格") -> UploadRefused:
    return UploadRefused(f"{where}范围过大（{rows:,} 行 × {cols:,} 列，超过 {lim.max_cells:,} 个单元格上限）；"
                         "请删除多余的行列（例如远处误填的单元格）或拆分文件后重试", code="UPLOAD_TOO_MANY_CELLS")


def _line_too_long(line_no: int, lim: UploadLimits) -> UploadRefused:
    return UploadRefused(f"第 {line_no:,} 行超过 {_mb(lim.max_line_bytes)} 的单行上限，文件可能缺少换行或不是表格；"
                         "请每行一条记录后重试", code="UPLOAD_LINE_TOO_LONG")


def check_text(data: bytes, *, lim: UploadLimits | None = None) -> None:
    """Rows, line length and columns of a CSV/TXT, from its bytes (windowed: no copy of the whole file)."""
    lim = lim or limits()
    n = len(data)
    rows = data.count(b"\n") + (1 if n and not data.endswith(b"\n") else 0)
    if rows > lim.max_rows:
        raise _too_many_rows(lim)
    window = max(_WINDOW, 2 * lim.max_line_bytes)
    counters = [methodcaller("count", sep) for sep in SEPARATORS]
    pos, line_no, head_cols = 0, 1, 0
    while pos < n:
        end = min(n, pos + window)
        if end < n:
            cut = data.rfind(b"\n", pos, end)
            if cut < 0:  # no line break in a whole window: that line alone is longer than the limit
                part = data[pos:end]
                if any(part.count(sep) + 1 > lim.max_columns for sep in SEPARATORS):
                    raise _too_many_columns(f"第 {line_no:,} 行", lim)
                raise _line_too_long(line_no, lim)
            end = cut + 1
        lines = data[pos:end].split(b"\n")
        if lines[-1] == b"":  # what follows the window's last line break
            lines.pop()
        longest = max(map(len, lines), default=0)
        if line_no <= HEAD_LINES:
            for line in lines[:HEAD_LINES - line_no + 1]:
                head_cols = max(head_cols, *(line.count(sep) + 1 for sep in SEPARATORS))
        if longest >= lim.max_columns:  # a line shorter than that cannot hold more separators
            for count in counters:
                widths = list(map(count, lines))
                if max(widths) + 1 > lim.max_columns:
                    at = next(i for i, w in enumerate(widths) if w + 1 > lim.max_columns)
                    raise _too_many_columns(f"第 {line_no + at:,} 行", lim)
        if longest > lim.max_line_bytes:
            at = next(i for i, line in enumerate(lines) if len(line) > lim.max_line_bytes)
            raise _line_too_long(line_no + at, lim)
        line_no += len(lines)
        pos = end
    if head_cols * rows > lim.max_cells:
        raise _too_many_cells(rows, head_cols, lim)


# --- XLSX ------------------------------------------------------------------------------------

def _bad(what: str) -> UploadRefused:
    return UploadRefused(f"Excel 文件内部结构异常（{what}），已拒绝；请用 Excel 打开后另存为新的 .xlsx 再上传",
                         code="UPLOAD_BAD_ARCHIVE")


def _unreadable() -> UploadRefused:
    return UploadRefused("无法读取该 Excel 文件（文件损坏或不是 Excel 格式），请另存为 .xlsx 后重试",
                         code="UPLOAD_BAD_ARCHIVE")


def _bomb(what: str) -> UploadRefused:
    return UploadRefused(f"Excel 文件解压后过大（{what}），疑似压缩炸弹，已拒绝；请确认文件来源，或另存为 CSV 后重试",
                         code="UPLOAD_ZIP_BOMB")


def _too_many_parts(n: int, lim: UploadLimits) -> UploadRefused:
    return UploadRefused(f"Excel 文件内部有 {n:,} 个部件（或目录异常庞大），超过 {lim.xlsx_max_entries:,} 个上限，"
                         "不像普通的表格文件，疑似压缩炸弹，已拒绝；请另存为 .xlsx 或 CSV 后重试", code="UPLOAD_ZIP_BOMB")


def _directory_size(data: bytes) -> tuple[int, int]:
    """``(entries, central directory bytes)`` the archive declares, read from its end records (ZIP64 too)
    before ``zipfile`` builds an index of them."""
    tail_from = max(0, len(data) - (22 + 65535))
    at = data.rfind(b"PK\x05\x06", tail_from)
    if at < 0 or len(data) - at < 22:
        raise _unreadable()
    (_sig, _disk, _cd_disk, _here, total, cd_size, _cd_off, _comment) = struct.unpack("<4s4H2LH", data[at:at + 22])
    loc = at - 20
    if loc >= 0 and data[loc:loc + 4] == b"PK\x06\x07":
        (_sig, _disk, z64_at, _disks) = struct.unpack("<4sLQL", data[loc:loc + 20])
        if z64_at + 56 <= len(data) and data[z64_at:z64_at + 4] == b"PK\x06\x06":
            z_total, z_size = struct.unpack("<QQ", data[z64_at + 32:z64_at + 48])
            total, cd_size = max(total, z_total), max(cd_size, z_size)
    return total, cd_size


def _check_names(infos: list[zipfile.ZipInfo]) -> None:
    seen: set[str] = set()
    has_workbook = False
    for info in infos:
        name = info.filename
        low = name.lower()
        if (not name or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name or re.match(r"^[A-Za-z]:", name)
                or ".." in name.split("/")):
            raise _bad(f"部件路径不合法：{name[:80]!r}")
        if low in seen:
            raise _bad(f"部件重复：{name[:80]}")
        seen.add(low)
        if info.flag_bits & 0x1:
            raise UploadRefused("Excel 文件内部部件被加密，无法检查，已拒绝；请取消加密后另存为 .xlsx 再上传",
                                code="UPLOAD_BAD_ARCHIVE")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _bad(f"{name[:80]} 使用了不支持的压缩方式")
        if low.endswith(_NESTED_EXT) or low.startswith("xl/embeddings/"):
            raise UploadRefused(f"Excel 文件中嵌入了其他文件或压缩包（{name[:80]}），已拒绝；"
                                "请删除嵌入对象，或把数据复制到新的工作簿后再上传", code="UPLOAD_BAD_ARCHIVE")
        if low == "xl/workbook.xml":
            has_workbook = True
        if low == "xl/workbook.bin" or (low.startswith("xl/worksheets/") and low.endswith(".bin")):
            raise UploadRefused("不支持 .xlsb 格式，请用 Excel 另存为 .xlsx 或 CSV 后再上传", code="UPLOAD_BAD_ARCHIVE")
    if not has_workbook:
        raise UploadRefused("不是 Excel .xlsx 文件（可能是 .ods 或普通压缩包），请用 Excel 另存为 .xlsx 或 CSV 后再上传",
                            code="UPLOAD_BAD_ARCHIVE")


def _inflate(data: bytes, info: zipfile.ZipInfo):
    """The part's bytes, 1 MB at a time, straight from the archive; refuses a part that inflates past
    its declared size (a lying header), is cut short, or fails its CRC."""
    off = info.header_offset
    header = data[off:off + 30]
    if len(header) < 30 or header[:4] != XLSX_MAGIC:
        raise _bad(f"{info.filename[:80]} 的本地头缺失")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    start = off + 30 + name_len + extra_len
    raw = memoryview(data)[start:start + info.compress_size]
    if len(raw) != info.compress_size:
        raise _bad(f"{info.filename[:80]} 被截断")
    produced, crc = 0, 0
    declared = info.file_size
    if declared == 0 and info.compress_size == 0:
        return
    if info.compress_type == zipfile.ZIP_STORED:
        if info.compress_size != declared:
            raise _bad(f"{info.filename[:80]} 的大小不一致")
        for i in range(0, len(raw), _CHUNK):
            piece = bytes(raw[i:i + _CHUNK])
            crc = zlib.crc32(piece, crc)
            yield piece
        produced = declared
    else:
        d = zlib.decompressobj(-15)
        for piece in _inflated(raw, d):  # lazily: a piece past the declared size stops it at once
            produced += len(piece)
            if produced > declared:
                raise _bomb(f"{info.filename[:80]} 实际解压大小超过其声明的 {declared:,} 字节")
            crc = zlib.crc32(piece, crc)
            yield piece
        if not d.eof:
            raise _bad(f"{info.filename[:80]} 数据不完整")
    if produced != declared or crc != info.CRC:
        raise _bad(f"{info.filename[:80]} 校验失败")


def _inflated(raw: memoryview, d: Any) -> Iterator[bytes]:
    """The raw deflate stream ``raw`` through the decompressor ``d``, at most ``_CHUNK`` bytes a piece."""
    for i in range(0, len(raw), 64 * 1024):
        buf = raw[i:i + 64 * 1024]
        while buf:
            piece = d.decompress(buf, _CHUNK)
            buf = d.unconsumed_tail
            if piece:
                yield piece
        if d.eof:
            break
    tail = d.flush()
    if tail:
        yield tail


def _col_index(letters: bytes) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ch - 64
    return n


class _PartScan:
    """One part's worksheet extent and shared-string use, fed XML a piece at a time (cut after a '>')."""

    def __init__(self, si_lengths: array | None, si_max: int, *, shared_strings: bool = False) -> None:
        self.si_lengths, self.si_max, self.shared_strings = si_lengths, si_max, shared_strings
        self.max_row = self.max_col = 0
        self.rowless_rows = 0
        self.rowless_width = 0
        self.expanded = 0  # bytes of shared-string text the cells of this part expand to
        self.si: list[int] = []  # when this part is the shared-string table: each item's length
        self._si_open: int | None = None
        self._offset = 0
        self._carry = b""

    def feed(self, chunk: bytes, *, final: bool = False) -> None:
        buf = self._carry + chunk
        cut = len(buf) if final else buf.rfind(b">") + 1
        if not final and cut == 0:
            if len(buf) > _MAX_TAG:
                raise _bad("内容中有超长的无标签片段")
            self._carry = buf
            return
        piece, self._carry = buf[:cut], buf[cut:]
        self._scan(piece)
        self._offset += len(piece)

    def _scan(self, piece: bytes) -> None:
        prefixed = (b":c" in piece or b":row" in piece or b":v" in piece) and _PREFIXED.search(piece) is not None
        cell_tag, row_tag = (_CELL_TAG, _ROW_TAG) if prefixed else (_CELL_TAG_F, _ROW_TAG_F)
        refs = (_CELL_REF if prefixed else _CELL_REF_F).findall(piece)
        if refs:
            self.max_row = max(self.max_row, max(map(int, map(itemgetter(1), refs))))
            self.max_col = max(self.max_col, max(map(_col_index, set(map(itemgetter(0), refs)))))
        rows = (_ROW_REF if prefixed else _ROW_REF_F).findall(piece)
        if rows:
            self.max_row = max(self.max_row, max(map(int, rows)))
        n_rows = len(row_tag.findall(piece))
        self.rowless_rows += max(0, n_rows - len(rows))
        n_cells = len(cell_tag.findall(piece))
        if n_cells > len(refs):  # cells placed by position, not by reference: count them per row
            for seg in row_tag.split(piece):
                self.rowless_width = max(self.rowless_width, len(cell_tag.findall(seg)))
        # Shared strings: each cell may point at the longest one (cheap bound, enough for real files);
        # when that bound is large, add up what the cells really point at.
        if n_cells and self.si_max * n_cells > 4 * len(piece) and self.si_lengths is not None:
            n_shared = len(_SHARED_T.findall(piece))
            found = _SHARED_CELL.findall(piece)
            known = self.si_lengths
            size = len(known)
            self.expanded += sum(known[i] if i < size else 0 for i in map(int, found))
            self.expanded += self.si_max * max(0, n_shared - len(found))
        else:
            self.expanded += self.si_max * n_cells
        if not self.shared_strings:
            return
        for m in _SI.finditer(piece):
            at = self._offset + m.start()
            if self._si_open is not None:
                self.si.append(at - self._si_open)
                self._si_open = None
            if not m.group(1):
                self._si_open = at

    @property
    def height(self) -> int:
        return self.max_row + self.rowless_rows

    @property
    def width(self) -> int:
        return self.max_col + self.rowless_width


def check_xlsx(data: bytes, *, lim: UploadLimits | None = None) -> None:
    """Zip metadata first (entries, sizes, ratio, names), then one bounded streaming pass (see module doc)."""
    lim = lim or limits()
    entries, directory = _directory_size(data)
    if entries > lim.xlsx_max_entries or directory > lim.xlsx_max_entries * _DIR_ENTRY_BYTES:
        raise _too_many_parts(entries, lim)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, struct.error):
        raise _unreadable() from None
    with zf:
        infos = zf.infolist()
        if len(infos) > lim.xlsx_max_entries:
            raise _too_many_parts(len(infos), lim)
        _check_names(infos)
        total = 0
        for info in infos:
            if info.file_size > lim.xlsx_max_entry_bytes:
                raise _bomb(f"{info.filename[:80]} 解压后 {_mb(info.file_size)}，单个部件上限 {_mb(lim.xlsx_max_entry_bytes)}")
            if info.file_size > RATIO_FLOOR and info.file_size > lim.xlsx_max_ratio * max(1, info.compress_size):
                ratio = info.file_size / max(1, info.compress_size)
                raise _bomb(f"{info.filename[:80]} 压缩比 {ratio:,.0f}:1，上限 {lim.xlsx_max_ratio}:1")
            total += info.file_size
        if total > lim.xlsx_max_total_bytes:
            raise _bomb(f"全部部件解压后 {_mb(total)}，上限 {_mb(lim.xlsx_max_total_bytes)}")
        # The shared-string table first (calamine reads it from this fixed name), so sheets can be costed.
        infos.sort(key=lambda i: i.filename.lower() != "xl/sharedstrings.xml")
        si_lengths: array | None = None
        si_max = 0
        for info in infos:
            low = info.filename.lower()
            if low.endswith("/") and info.file_size == 0:
                continue  # a folder
            is_sst = low == "xl/sharedstrings.xml"
            scan = _PartScan(si_lengths, si_max, shared_strings=is_sst)
            first, xml = True, False
            for piece in _inflate(data, info):
                if first:
                    if low != "xl/vbaproject.bin" and piece.startswith(_NESTED_MAGIC):
                        raise UploadRefused(f"Excel 文件中嵌入了其他文件或压缩包（{info.filename[:80]}），已拒绝；"
                                            "请删除嵌入对象，或把数据复制到新的工作簿后再上传", code="UPLOAD_BAD_ARCHIVE")
                    if piece.startswith((b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")):
                        raise _bad(f"{info.filename[:80]} 使用了 UTF-16 编码")  # Excel writes UTF-8 parts
                    # Only XML is parsed (a worksheet may hide under any name); images and the like are not.
                    xml = piece.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<"
                    first = False
                if xml:
                    scan.feed(piece)
            scan.feed(b"", final=True)
            if is_sst:
                if len(scan.si) > lim.max_cells:
                    raise _too_many_cells(len(scan.si), 1, lim, "共享字符串表")
                si_lengths = array("L", scan.si)
                si_max = max(scan.si, default=0)
                continue
            where = f"工作表 {info.filename[:80]} 的数据"
            if scan.height > lim.max_rows:
                raise UploadRefused(f"{where}范围达到第 {scan.height:,} 行，超过 {lim.max_rows:,} 行上限；"
                                    "请删除多余的行或拆分文件后重试", code="UPLOAD_TOO_MANY_ROWS")
            if scan.width > lim.max_columns:
                raise _too_many_columns(f"{where}范围（{scan.width:,} 列）", lim)
            if scan.height * scan.width > lim.max_cells:
                raise _too_many_cells(scan.height, scan.width, lim, where)
            if info.file_size + scan.expanded > lim.xlsx_max_total_bytes:
                raise _bomb(f"{info.filename[:80]} 引用的文字展开后约 {_mb(info.file_size + scan.expanded)}，"
                            f"上限 {_mb(lim.xlsx_max_total_bytes)}")


# --- images ----------------------------------------------------------------------------------

#: What an uploaded picture may be, by content (never by its name or the client's content type).
IMAGE_TYPES = {"PNG": ("png", "image/png"), "JPEG": ("jpeg", "image/jpeg"), "WEBP": ("webp", "image/webp")}
IMAGE_MAX_SIDE = 20_000  # pixels on either side: no camera or phone makes more; a 2,000,000 x 1 strip is an attack
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"))


@dataclasses.dataclass(frozen=True)
class CheckedImage:
    """An uploaded picture that passed :func:`check_image`, re-encoded: only its pixels are kept (no
    metadata, no trailing bytes, no second file hidden behind the image)."""

    data: bytes
    ext: str  # png | jpeg | webp
    content_type: str
    width: int
    height: int


def _not_image() -> UploadRefused:
    return UploadRefused("不是可用的图片文件，请上传 JPG、PNG 或 WebP 格式的照片", code="UPLOAD_NOT_IMAGE")


def _sniff_image(data: bytes) -> str | None:
    for magic, fmt in _IMAGE_MAGIC:
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def check_image(data: bytes, *, lim: UploadLimits | None = None, max_side: int = 1600) -> CheckedImage:
    """Refuse (:class:`UploadRefused`) what is not a sane JPG / PNG / WebP picture; return it re-encoded.

    In order, each before anything costlier: the byte cap (``UPLOAD_TOO_LARGE``); the type from the first
    bytes (``UPLOAD_NOT_IMAGE``: an SVG, a GIF, an HTML page renamed ``.png``); the width x height its header
    declares against ``GC_UPLOAD_IMAGE_MAX_PIXELS`` (``UPLOAD_TOO_MANY_PIXELS``: a decompression bomb is
    refused before a pixel is decoded); then a full decode (``UPLOAD_BAD_IMAGE``: truncated or corrupt).
    The picture is turned upright (EXIF orientation), shrunk to at most ``max_side`` pixels a side and
    saved again in its own format, so what is stored and served is pixels we wrote."""
    import warnings

    from PIL import Image, ImageOps

    lim = lim or limits()
    if len(data) > lim.image_max_bytes:
        raise UploadRefused(f"图片超过 {_mb(lim.image_max_bytes)} 上限，请压缩后再上传", code="UPLOAD_TOO_LARGE",
                            status=413)
    fmt = _sniff_image(data)
    if fmt is None:
        raise _not_image()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as img:
                width, height = img.size
                if width < 1 or height < 1 or width * height > lim.image_max_pixels or max(width, height) > IMAGE_MAX_SIDE:
                    raise UploadRefused(f"图片尺寸过大（{width:,} × {height:,} 像素，上限 {lim.image_max_pixels:,} 像素），"
                                        "请缩小后再上传", code="UPLOAD_TOO_MANY_PIXELS")
                img.load()
                picture = ImageOps.exif_transpose(img)
    except UploadRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadRefused("图片尺寸过大，请缩小后再上传", code="UPLOAD_TOO_MANY_PIXELS") from None
    except Exception:  # noqa: BLE001 - any decoder failure is a broken file to the person uploading it
        raise UploadRefused("图片文件已损坏或不完整，请重新导出后上传", code="UPLOAD_BAD_IMAGE") from None
    picture.thumbnail((max_side, max_side))
    ext, content_type = IMAGE_TYPES[fmt]
    if fmt == "JPEG":
        picture = picture.convert("RGB")
    elif picture.mode not in ("RGB", "RGBA", "L", "LA"):
        picture = picture.convert("RGBA")
    out = io.BytesIO()
    picture.save(out, format=fmt, **({"quality": 88} if fmt in ("JPEG", "WEBP") else {"optimize": True}))
    return CheckedImage(out.getvalue(), ext, content_type, picture.width, picture.height)


# --- the transport ---------------------------------------------------------------------------

class UploadSizeLimit:
    """ASGI middleware: a multipart body over the upload cap is refused (413, error envelope) before it is
    read or spooled to disk; one without a ``Content-Length`` is cut off when it passes the cap."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = {k.lower(): v for k, v in scope.get("headers") or []}
        if not headers.get(b"content-type", b"").lower().startswith(b"multipart/"):
            return await self.app(scope, receive, send)
        lim = limits()
        cap = lim.max_bytes + MULTIPART_OVERHEAD
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            exc = too_large(lim)
            body = json.dumps({"error": exc.to_dict()}, ensure_ascii=False).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return None
        seen = 0

        async def limited() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    return {"type": "http.disconnect"}
            return message

        return await self.app(scope, limited, send)
