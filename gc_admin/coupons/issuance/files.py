"""Phone lists for batch issuance: pasted text (:func:`split_phones`), an uploaded file
(:func:`read_phone_file`: CSV / XLSX / TXT, UTF-8 or GBK, with or without a header) — raw values in
file order; :mod:`gc_admin.coupons.issuance.service` validates them — and the list kept on disk between
preview and issue (:func:`stash_phones` / :func:`load_phones`, in :mod:`gc_admin.coupons.staging`).
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from gc_admin.core.errors import InvalidInput, NotFound
from gc_admin.core.uploads import check_upload
from gc_admin.coupons.issuance.service import MAX_PHONES
from gc_admin.coupons.staging import staged_path, staging_file

HEADER_SCAN_ROWS = 5

_SPLIT_RE = re.compile(r"[\r\n,，;；、|\t]+")
_SPACED_PHONE_RE = re.compile(r"(?:\+?86|0086)?\d{11}")
_PHONE_HEADERS = {"手机号", "手机号码", "手机", "电话", "电话号码", "联系电话", "联系方式", "用户手机号", "客户手机号",
                  "phone", "mobile", "phonenumber", "mobilephone", "mobileno", "tel", "cellphone"}
_HEADER_STRIP = re.compile(r"[\s_\-()（）\[\]【】:：*\ufeff]")
_EXCEL_FLOAT = re.compile(r"^(\d{11})\.0+$")
_EXCEL_SCI = re.compile(r"^(\d(?:\.\d+)?)[eE]\+?(\d{1,2})$")
_LOOKS_LIKE_PHONE = r"^\s*(?:\+?86|0086)?[\s\-]*1[3-9][\d\s\-]{9,12}$"


def split_phones(text: str) -> list[str]:
    """Pasted phones: one per line, or separated by commas / spaces / semicolons / 、; blanks dropped.

    A piece whose spaces sit inside one number (``139 1234 5678``, ``+86 138-1234-5678``) stays whole.
    """
    out: list[str] = []
    for piece in _SPLIT_RE.split((text or "").replace("\ufeff", "").replace("\u3000", " ")):
        piece = piece.strip()
        if not piece:
            continue
        if " " in piece and not _SPACED_PHONE_RE.fullmatch(re.sub(r"[\s\-]", "", piece)):
            out += piece.split()
        else:
            out.append(piece)
    return out


def _norm_header(value: object) -> str:
    return _HEADER_STRIP.sub("", str(value or "")).lower()


def _cell(value: Any) -> str:
    """A cell as text, undoing what Excel does to a phone stored as a number."""
    s = "" if value is None else str(value).strip()
    m = _EXCEL_FLOAT.match(s)
    if m:
        return m.group(1)
    m = _EXCEL_SCI.match(s)
    if m and int(m.group(2)) == 10:  # 1.3812345678E10 -> 13812345678 (11 digits, exact)
        digits = m.group(1).replace(".", "")
        return digits.ljust(11, "0") if len(digits) <= 11 else s
    return s


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise InvalidInput("文件以 UTF-16 标记开头，但内容不是有效的文本", code="PHONE_FILE_INVALID") from None
    for enc in ("utf-8", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise InvalidInput("无法识别文件编码：请上传 UTF-8 或 GBK 编码的 CSV / TXT 文件，或 Excel（.xlsx）文件",
                       code="PHONE_FILE_INVALID")


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select([pl.col(c).cast(pl.String) for c in frame.columns])


def _values(series: pl.Series) -> list[str]:
    return [_cell(v) for v in series.to_list() if v is not None and str(v).strip()]


def _header_column(frame: pl.DataFrame) -> list[str] | None:
    """The values under a phone header (手机号 / phone / ...) in the first rows, if there is one."""
    for at, cells in enumerate(frame.head(HEADER_SCAN_ROWS).rows()):
        for idx, cell in enumerate(cells):
            if _norm_header(cell) in _PHONE_HEADERS:
                return _values(frame.get_column(frame.columns[idx]).slice(at + 1))
    return None


def _phone_like_counts(frame: pl.DataFrame) -> list[int]:
    return list(frame.select([
        pl.col(c).map_elements(_cell, return_dtype=pl.String).str.contains(_LOOKS_LIKE_PHONE).sum().alias(c)
        for c in frame.columns]).row(0))


def _drop_title(values: list[str]) -> list[str]:
    # An unrecognised header on the first row (e.g. "号码") is not a phone: drop it if it has no digit.
    return values[1:] if values and not re.search(r"\d", values[0]) else values


def read_phone_file(data: bytes, *, filename: str = "") -> list[str]:
    """Phones from an uploaded file, as written (not yet validated), in file order.

    ``.xlsx``/``.xls``: the first sheet with data. CSV/TXT in UTF-8, UTF-16 or GBK: a column headed
    手机号 / 手机 / 电话 / phone / mobile (in the first 5 rows) if there is one; otherwise a table's
    most phone-like column; otherwise every token separated by new lines, commas or spaces.
    The upload gate (:func:`gc_admin.core.uploads.check_upload`) refuses the file first if a parser
    must not see it (``UPLOAD_*`` codes).
    """
    if not data or not data.strip():
        raise InvalidInput("文件为空", code="PHONE_FILE_INVALID")
    if check_upload(data) in ("xlsx", "xls"):
        phones = _read_excel(data)
    else:
        phones = _read_text(data, filename)
    if not phones:
        raise InvalidInput("文件中没有找到手机号", code="PHONE_FILE_EMPTY")
    if len(phones) > MAX_PHONES:
        raise InvalidInput(f"一次最多发放 {MAX_PHONES:,} 个手机号，请拆分文件", code="TOO_MANY_PHONES")
    return phones


def _read_excel(data: bytes) -> list[str]:
    import fastexcel

    try:
        reader = fastexcel.read_excel(data)
        for idx in range(len(reader.sheet_names)):
            frame = _as_text(reader.load_sheet(idx, header_row=None, dtypes="string").to_polars())
            if frame.height == 0 or frame.width == 0:
                continue
            found = _header_column(frame)
            if found is not None:
                return found
            counts = _phone_like_counts(frame)
            best = max(range(frame.width), key=lambda i: counts[i])
            return _drop_title(_values(frame.get_column(frame.columns[best])))
    except InvalidInput:
        raise
    except Exception:
        raise InvalidInput("无法读取该 Excel 文件（文件损坏或不是 Excel 格式），请另存为 .xlsx 后重试",
                           code="PHONE_FILE_INVALID") from None
    return []


def _read_text(data: bytes, filename: str) -> list[str]:
    text = _decode(data)
    if "\x00" in text[:65536] or len(re.findall(r"[\x01-\x08\x0b\x0c\x0e-\x1f]", text[:65536])) > 8:
        raise InvalidInput("文件内容无法识别（不是文本），请上传 CSV、TXT 或 Excel 文件", code="PHONE_FILE_INVALID")
    lines = [ln for ln in text.splitlines() if ln.strip()][:HEADER_SCAN_ROWS]
    for sep in (",", "\t", ";", "|"):
        if len(lines) < 2 or not all(sep in ln for ln in lines):
            continue
        try:
            frame = _as_text(pl.read_csv(text.encode("utf-8"), has_header=False, separator=sep, infer_schema=False,
                                         truncate_ragged_lines=True, raise_if_empty=False))
        except Exception:
            break  # not a table after all: read it as a list
        found = _header_column(frame)
        if found is not None:
            return found
        counts = _phone_like_counts(frame)
        if sum(1 for n in counts if n) == 1:  # a table with one phone column (names, notes beside it)
            return _drop_title(_values(frame.get_column(frame.columns[counts.index(max(counts))])))
        break  # several phones per line: a plain list
    tokens = split_phones(text)
    if tokens and _norm_header(tokens[0]) in _PHONE_HEADERS:
        tokens = tokens[1:]
    return _drop_title([_cell(t) for t in tokens])


# --- kept between preview and issue --------------------------------------------------------

def stash_phones(phones: list[str]) -> str:
    """Keep a phone list on disk until it is issued; returns its token."""
    token, path = staging_file("phones", ".txt")
    path.write_text("\n".join(p.replace("\n", " ") for p in phones), encoding="utf-8")
    return token


def load_phones(token: str) -> list[str]:
    path = staged_path("phones", token, ".txt")
    if not path.exists():
        raise NotFound("待发放的手机号列表已失效，请重新上传或粘贴", code="STAGING_NOT_FOUND")
    text = path.read_text(encoding="utf-8")
    return text.split("\n") if text else []
