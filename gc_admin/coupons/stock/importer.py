"""Reading a file of redemption codes (CSV or Excel) into a polars frame, with a reason per bad row.

Two kinds of problem, handled differently:
- the *file* cannot be read (empty, binary garbage, unknown encoding, no code column, merged
  header cells, ...): :class:`FileRejected` with a Chinese reason; nothing may be imported;
- a *row* is bad (empty code, unreadable date, bad amount): the row gets a ``reason`` and the
  rest of the file is imported.

Everything is vectorised in polars: the file is read with every column as text (so a code like
``000123`` keeps its zeros) and each rule is a column expression, never a Python loop per row.

Before any parser runs, :func:`gc_admin.core.uploads.check_upload` refuses a file that would
blow up (size, zip bombs, too many rows / columns / cells, overlong lines); its code (``UPLOAD_*``)
travels on the :class:`FileRejected`.

Accepted:
- CSV in UTF-8 (with or without BOM), UTF-16 with BOM, or GBK/GB18030, separated by
  comma, tab, semicolon or ``|``; ``.xlsx``/``.xls`` (first sheet that has a code column);
- headers in English or Chinese (see ``ALIASES``), anywhere in the first 10 rows (a title row
  above the header is skipped);
- dates ``2026-12-31``, ``2026/12/31``, ``2026.12.31``, ``2026年12月31日``, ``20261231``, Excel date
  cells and Excel serial numbers, optionally with a time. A date without a time, or with
  ``00:00:00`` (how Excel renders a plain date cell), means *valid through that day* in
  Asia/Shanghai, i.e. until 23:59:59 local time.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
import zipfile

import polars as pl

from gc_admin.core.clock import SHANGHAI, UTC
from gc_admin.core.uploads import UploadRefused, check_upload

MAX_CODE_LEN = 128
HEADER_SCAN_ROWS = 10
TZ = "Asia/Shanghai"

# Normalised header text (lower case, without spaces, _ - brackets and colons) -> field.
ALIASES: dict[str, str] = {}
for _field, _names in {
    "code": ["code", "券码", "兑换码", "卡密", "券号", "电子码", "兑换券码", "couponcode", "redemptioncode", "voucher"],
    "expires_at": ["expiresat", "expires", "expiry", "expire", "expireat", "expirydate", "expirationdate", "validuntil",
                   "有效期", "过期时间", "过期日期", "到期日", "到期时间", "到期日期", "有效期至", "截止日期", "失效日期",
                   "失效时间", "有效截止日期", "有效期截止"],
    "face_fen": ["facefen", "面值分", "面额分"],
    "face_yuan": ["face", "facevalue", "faceyuan", "面值", "面额", "面值元", "面额元"],
    "cost_fen": ["costfen", "成本分", "进价分", "采购价分"],
    "cost_yuan": ["cost", "costyuan", "成本", "进价", "采购价", "成本元", "进价元", "采购价元"],
    "batch_ref": ["batchref", "batch", "批次", "批次号", "批号"],
}.items():
    for _n in _names:
        ALIASES[_n] = _field
FIELD_LABELS = {"code": "券码", "expires_at": "有效期", "face_fen": "面值", "face_yuan": "面值", "cost_fen": "成本",
                "cost_yuan": "成本", "batch_ref": "批次号"}
_HEADER_STRIP = re.compile(r"[\s_\-()（）\[\]【】:：*\ufeff]")

_DATE_RE = (r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
            r"(?:[T\s]+(\d{1,2})[:：](\d{1,2})(?:[:：](\d{1,2})(?:\.\d+)?)?)?$")
_COMPACT_DATE_RE = r"^(\d{4})(\d{2})(\d{2})$"
_SERIAL_RE = r"^(\d{5})(?:\.\d+)?$"  # an Excel date serial number (1900 date system)
_SCI_RE = r"^\d(?:\.\d+)?[eE][+-]?\d+$"
_CONTROL_RE = r"[\x00-\x1f\x7f]"

SUPPORTED_DATES = "2026-12-31、2026/12/31、2026年12月31日、20261231"


class FileRejected(Exception):
    """The file as a whole cannot be imported; ``reason`` is Chinese, for the clerk; ``code`` is
    ``IMPORT_FILE_INVALID``, or the ``UPLOAD_*`` code when the upload gate refused it unparsed."""

    def __init__(self, reason: str, *, code: str = "IMPORT_FILE_INVALID") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclasses.dataclass(frozen=True)
class ParsedFile:
    """Every non-blank data row of the file.

    ``frame`` columns: ``row`` (the row/line number a person sees in the file), ``code``,
    ``expires_at`` (UTC), ``face_fen``, ``cost_fen`` (null = product default), ``batch_ref``,
    ``reason`` (null for a good row; Chinese otherwise). Reasons never quote a code.
    """

    frame: pl.DataFrame
    file_type: str
    encoding: str | None
    columns: dict[str, str]  # field -> header text as found

    @property
    def rows(self) -> int:
        return self.frame.height


def end_of_day(day: dt.date) -> dt.datetime:
    """A date printed on a code means valid through that day, Asia/Shanghai: 23:59:59 local, as UTC."""
    return dt.datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=SHANGHAI).astimezone(UTC)


def expiry_instant(value: dt.date | dt.datetime) -> dt.datetime:
    """A caller-given expiry (a date, or a datetime; naive means Asia/Shanghai) as aware UTC."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=SHANGHAI)
        local = value.astimezone(SHANGHAI)
        if local.time() == dt.time(0, 0):
            return end_of_day(local.date())
        return value.astimezone(UTC)
    return end_of_day(value)


def read_codes_file(
    data: bytes, *, filename: str = "", default_expires_at: dt.date | dt.datetime | None = None
) -> ParsedFile:
    """Parse an uploaded codes file; raises :class:`FileRejected` when the file as a whole is unusable."""
    if not data or not data.strip():
        raise FileRejected("文件为空")
    try:
        kind = check_upload(data)
    except UploadRefused as exc:
        raise FileRejected(exc.message, code=exc.code) from None
    if kind in ("xlsx", "xls"):
        raw, first_row, columns = _read_excel(data)
        file_type, encoding = kind, None
    else:
        raw, first_row, columns, encoding = _read_csv(data)
        file_type = "csv"
    default = expiry_instant(default_expires_at) if default_expires_at is not None else None
    return _rows(raw, first_row, columns, default, file_type, encoding)


# --- file level ------------------------------------------------------------------------------

def _norm_header(value: object) -> str:
    return _HEADER_STRIP.sub("", str(value or "")).lower()


def _map_header(cells: list[object]) -> dict[str, int] | None:
    """field -> column index when ``cells`` is a header row (it names a code column), else None."""
    found: dict[str, int] = {}
    duplicates: list[str] = []
    for idx, cell in enumerate(cells):
        field = ALIASES.get(_norm_header(cell))
        if field is None:
            continue
        if field in found:
            duplicates.append(field)
            continue
        found[field] = idx
    if "code" not in found:
        return None
    if duplicates:
        label = "、".join(sorted({FIELD_LABELS[f] for f in duplicates}))
        raise FileRejected(f"表头中“{label}”列出现了不止一次，请只保留一列")
    for a, b in (("face_fen", "face_yuan"), ("cost_fen", "cost_yuan")):
        if a in found and b in found:
            raise FileRejected(f"表头中同时有以分和以元为单位的{FIELD_LABELS[a]}列，请只保留一列")
    return found


def _no_code_column() -> FileRejected:
    return FileRejected("未找到券码列：第一行应为列名，例如 code,expires_at 或 券码,有效期（前 10 行内都没有找到）")


def _decode(data: bytes) -> tuple[bytes, str]:
    """UTF-8 bytes for polars, and the encoding the file was in."""
    if data.startswith(b"\xef\xbb\xbf"):
        body, enc = data[3:], "utf-8-sig"
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise FileRejected("文件以 UTF-8 标记开头，但内容不是有效的 UTF-8 文本") from None
        return body, enc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16").encode("utf-8"), "utf-16"
        except UnicodeDecodeError:
            raise FileRejected("文件以 UTF-16 标记开头，但内容不是有效的 UTF-16 文本") from None
    try:
        data.decode("utf-8")
        return data, "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030").encode("utf-8"), "gbk"
    except UnicodeDecodeError:
        raise FileRejected("无法识别文件编码：请上传 UTF-8 或 GBK 编码的 CSV 文件，或 Excel（.xlsx）文件") from None


def _read_csv(data: bytes) -> tuple[pl.DataFrame, int, dict[str, str], str]:
    body, encoding = _decode(data)
    head = body[:65536].decode("utf-8", errors="ignore")
    if "\x00" in head or len(re.findall(r"[\x01-\x08\x0b\x0c\x0e-\x1f]", head)) > 8 or b"\x00" in body:
        raise FileRejected("文件内容无法识别（不是文本表格），请上传 CSV 或 Excel 文件")
    lines = [line.rstrip("\r") for line in head.split("\n")[:HEADER_SCAN_ROWS]]
    header_at = separator = columns = None
    header: list[str] = []
    for idx, line in enumerate(lines):
        for sep in (",", "\t", ";", "|"):
            try:
                cells = next(csv.reader([line], delimiter=sep), [])
            except csv.Error:
                continue
            mapped = _map_header(cells)
            if mapped is not None:
                header_at, separator, columns, header = idx, sep, mapped, cells
                break
        if header_at is not None:
            break
    if header_at is None or separator is None or columns is None:
        raise _no_code_column()
    try:
        frame = pl.read_csv(
            io.BytesIO(body), has_header=False, skip_lines=header_at, separator=separator, infer_schema=False,
            truncate_ragged_lines=True, raise_if_empty=False,
        )
    except Exception:  # polars raises several kinds for malformed text
        raise FileRejected("CSV 文件格式有误，无法读取（请检查引号是否成对），可用 Excel 另存为 CSV 后重试") from None
    frame = frame.slice(1)  # the header row itself
    return _select(frame, columns), header_at + 2, _found(columns, header), encoding


def _merged_ranges(data: bytes) -> list[str]:
    """Merged cell ranges of the first worksheet of an .xlsx (calamine reads them as blanks)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = [n for n in zf.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)]
            found: list[str] = []
            for name in sorted(names, key=lambda n: int(re.findall(r"\d+", n)[-1])):
                xml = zf.read(name)
                at = xml.find(b"<mergeCells")
                if at >= 0:
                    found += [m.decode() for m in re.findall(rb'<mergeCell\s+ref="([A-Z]+\d+:[A-Z]+\d+)"', xml[at:])]
                if found:
                    break
            return found
    except (zipfile.BadZipFile, KeyError, OSError):
        return []


def _col_letter(idx: int) -> str:
    letters = ""
    idx += 1
    while idx:
        idx, rem = divmod(idx - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _col_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def _numeric_cells(data: bytes, sheet_index: int, column: int) -> list[int]:
    """Worksheet rows whose cell in frame column ``column`` is stored as a number (no ``t=`` attribute).

    calamine starts the frame at the first used *column* (rows start at 1 with ``skip_rows=0``),
    so the column letter is offset by the sheet's first used column, read from ``<dimension>``.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            xml = zf.read(f"xl/worksheets/sheet{sheet_index + 1}.xml")
    except (zipfile.BadZipFile, KeyError, OSError):
        return []
    dim = re.search(rb'<dimension ref="([A-Z]+)\d+', xml[:4096])
    offset = _col_number(dim.group(1).decode()) if dim else 0
    pattern = rb'<c r="' + _col_letter(column + offset).encode() + rb'(\d+)"(?![^>]*\bt=")[^>]*>\s*<v>'
    return [int(m) for m in re.findall(pattern, xml)]


def _read_excel(data: bytes) -> tuple[pl.DataFrame, int, dict[str, str]]:
    import fastexcel

    try:
        reader = fastexcel.read_excel(data)
        names = reader.sheet_names
    except Exception:
        raise FileRejected("无法读取该 Excel 文件（文件损坏或不是 Excel 格式），请另存为 .xlsx 后重试") from None
    if data[:2] == b"PK":
        merged = _merged_ranges(data)
        if merged:
            shown = "、".join(merged[:3]) + ("等" if len(merged) > 3 else "")
            raise FileRejected(f"表格中有合并单元格（{shown}），请取消合并，确保第一行每列一个列名、每行一个券码后再导入")
    for idx in range(len(names)):
        try:
            sheet = reader.load_sheet(idx, header_row=None, skip_rows=0, dtypes="string")
            frame = sheet.to_polars()
        except Exception:
            raise FileRejected(f"无法读取工作表“{names[idx]}”，请检查文件内容后重试") from None
        if frame.height == 0:
            continue
        head = frame.head(HEADER_SCAN_ROWS).rows()
        for at, cells in enumerate(head):
            columns = _map_header(list(cells))
            if columns is not None:
                # with skip_rows=0 the frame starts at worksheet row 1, even when the data does not
                body = _select(frame.slice(at + 1), columns)
                first = at + 2
                body = body.with_columns(_lossy_numbers(data, idx, columns["code"], body, first))
                return body, first, _found(columns, list(cells))
    if not any(reader.load_sheet(i, header_row=None, dtypes="string").height for i in range(len(names))):
        raise FileRejected("Excel 文件中没有数据")
    raise _no_code_column()


def _lossy_numbers(data: bytes, sheet_index: int, column: int, body: pl.DataFrame, first: int) -> pl.Expr:
    """Flag codes longer than 15 digits that Excel stored as numbers: their last digits are lost."""
    long_digits = pl.col("code").str.contains(r"^\s*\d{16,}\s*$")
    flag = pl.lit(False)
    if data[:2] == b"PK" and body.select(long_digits.any()).item():
        numeric_rows = _numeric_cells(data, sheet_index, column)
        if numeric_rows:
            row_no = pl.int_range(0, pl.len()) + first
            flag = long_digits & row_no.is_in(numeric_rows)
    return flag.alias("_lossy")


def _found(columns: dict[str, int], header: list[object]) -> dict[str, str]:
    return {field: str(header[idx]).strip() for field, idx in columns.items()}


def _select(frame: pl.DataFrame, columns: dict[str, int]) -> pl.DataFrame:
    """Keep the mapped columns, renamed to their field names, as text."""
    names = frame.columns
    return frame.select([pl.col(names[idx]).cast(pl.String).alias(field)
                         for field, idx in columns.items() if idx < len(names)])


# --- row level -------------------------------------------------------------------------------

def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    s = expr.str.strip_chars()
    return pl.when(s.str.len_chars() > 0).then(s).otherwise(None)


def _parse_expiry(s: pl.Expr) -> pl.Expr:
    """Text -> aware UTC datetime, or null when unreadable."""
    g = s.str.extract_groups(_DATE_RE)
    c = s.str.extract_groups(_COMPACT_DATE_RE)
    year = pl.coalesce(g.struct.field("1"), c.struct.field("1"))
    month = pl.coalesce(g.struct.field("2"), c.struct.field("2"))
    day = pl.coalesce(g.struct.field("3"), c.struct.field("3"))
    hh, mm, ss = g.struct.field("4"), g.struct.field("5"), g.struct.field("6").fill_null("00")
    date_only = hh.is_null() | ((hh.cast(pl.Int32, strict=False) == 0) & (mm.cast(pl.Int32, strict=False) == 0)
                                & (ss.cast(pl.Int32, strict=False) == 0))
    text = pl.format(
        "{}-{}-{} {}:{}:{}", year, month.str.zfill(2), day.str.zfill(2),
        pl.when(date_only).then(pl.lit("23")).otherwise(hh.str.zfill(2)),
        pl.when(date_only).then(pl.lit("59")).otherwise(mm.str.zfill(2)),
        pl.when(date_only).then(pl.lit("59")).otherwise(ss.str.zfill(2)),
    )
    parsed = text.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
    serial = s.str.extract(_SERIAL_RE, 1).cast(pl.Int64, strict=False)
    from_serial = pl.when(serial.is_between(20000, 80000)).then(
        pl.lit(dt.datetime(1899, 12, 30, 23, 59, 59)).cast(pl.Datetime("us")) + pl.duration(days=serial)
    )
    local = pl.coalesce(parsed, from_serial)
    return local.dt.replace_time_zone(TZ, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")


def _parse_money(s: pl.Expr, unit: str) -> pl.Expr:
    """Text -> int fen, or null when unreadable (negative amounts are unreadable too)."""
    clean = s.str.replace_all(r"[,，¥￥元\s]", "")
    if unit == "fen":
        return clean.str.extract(r"^(\d{1,12})(?:\.0*)?$", 1).cast(pl.Int64, strict=False)
    g = clean.str.extract_groups(r"^(\d{1,10})(?:\.(\d{1,2})0*)?$")
    whole = g.struct.field("1").cast(pl.Int64, strict=False)
    frac = g.struct.field("2").fill_null("0").str.pad_end(2, "0").cast(pl.Int64, strict=False)
    return whole * 100 + frac


def _rows(raw: pl.DataFrame, first_row: int, columns: dict[str, str], default: dt.datetime | None,
          file_type: str, encoding: str | None) -> ParsedFile:
    if "expires_at" not in columns and default is None:
        raise FileRejected("文件中没有有效期列（expires_at / 有效期 / 过期时间 / 到期日），也没有指定整批的有效期")
    if "_lossy" not in raw.columns:
        raw = raw.with_columns(pl.lit(False).alias("_lossy"))
    fields = [c for c in raw.columns if c != "_lossy"]
    frame = raw.with_row_index("row", offset=first_row).with_columns(pl.col("row").cast(pl.Int64))
    frame = frame.with_columns([_blank_to_null(pl.col(f)).alias(f) for f in fields])
    frame = frame.filter(pl.any_horizontal([pl.col(f).is_not_null() for f in fields]))  # blank rows are not rows
    if frame.height == 0:
        raise FileRejected("文件中只有表头，没有券码数据")

    # Dates repeat (a file has a handful of distinct expiries): parse each distinct text once.
    utc = pl.Datetime("us", "UTC")
    if "expires_at" in fields:
        texts = frame.get_column("expires_at").drop_nulls().unique()
        parsed = pl.DataFrame({"t": texts}).select(_parse_expiry(pl.col("t")).alias("p")).get_column("p")
        frame = frame.with_columns(
            pl.col("expires_at").replace_strict(texts, parsed, default=None, return_dtype=utc).alias("_parsed"))
        exp_text = pl.col("expires_at")
    else:
        frame = frame.with_columns(pl.lit(None, utc).alias("_parsed"))
        exp_text = pl.lit(None, pl.String)
    default_exp = pl.lit(default, utc) if default is not None else pl.lit(None, utc)
    frame = frame.with_columns(pl.when(exp_text.is_null()).then(default_exp).otherwise(pl.col("_parsed")).alias("_exp"))

    code = pl.col("code")
    money: dict[str, pl.Expr] = {}
    reasons: list[pl.Expr] = [
        pl.when(code.is_null()).then(pl.lit("券码为空")),
        pl.when(code.str.len_chars() > MAX_CODE_LEN).then(pl.lit(f"券码超过 {MAX_CODE_LEN} 个字符")),
        pl.when(code.str.contains(_CONTROL_RE)).then(pl.lit("券码含有不可见字符")),
        pl.when(code.str.contains(_SCI_RE)).then(pl.lit("券码被 Excel 存成了科学计数法数字，请把券码列设为文本后重新导出")),
        pl.when(pl.col("_lossy")).then(pl.lit("券码超过 15 位，在 Excel 中是数字格式，末几位已丢失，请把券码列设为文本后重新导出")),
        pl.when(exp_text.is_null() & (default is None)).then(pl.lit("缺少有效期")),
        pl.when(exp_text.is_not_null() & pl.col("_parsed").is_null()).then(pl.lit(f"有效期无法识别（支持 {SUPPORTED_DATES}）")),
        pl.when(pl.col("_exp").dt.year().is_between(2000, 2099).not_()).then(pl.lit("有效期年份不合理")),
    ]
    for target in ("face", "cost"):
        for unit in ("fen", "yuan"):
            name = f"{target}_{unit}"
            if name in fields:
                money[target] = _parse_money(pl.col(name), unit)
                label = "面值" if target == "face" else "成本"
                reasons.append(pl.when(pl.col(name).is_not_null() & money[target].is_null())
                               .then(pl.lit(f"{label}不是有效金额")))
    reason = pl.concat_str(reasons, separator="；", ignore_nulls=True)
    out = frame.select(
        pl.col("row"),
        code.alias("code"),
        pl.col("_exp").alias("expires_at"),
        money.get("face", pl.lit(None, pl.Int64)).alias("face_fen"),
        money.get("cost", pl.lit(None, pl.Int64)).alias("cost_fen"),
        (pl.col("batch_ref").str.slice(0, 64) if "batch_ref" in fields else pl.lit(None, pl.String)).alias("batch_ref"),
        pl.when(reason.str.len_chars() > 0).then(reason).otherwise(None).alias("reason"),
    )
    return ParsedFile(frame=out, file_type=file_type, encoding=encoding, columns=columns)
