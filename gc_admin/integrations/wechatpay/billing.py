"""Parse a WeChat Pay trade bill (``/v3/bill/tradebill`` file) into typed polars frames.

The file (UTF-8, maybe with a BOM; CRLF or LF lines) is a header row of Chinese column names,
detail rows whose every field starts with a back-tick (`````, to keep spreadsheets from mangling
numbers), then a summary header (``总交易单数,…``) and one summary row. Columns are mapped by
their header names, not positions (the order is not guaranteed; a ``SUCCESS`` bill has fewer
columns); missing known columns come back as nulls so the schema is stable; unknown columns are
kept as strings under their original names, after the known ones.

Amounts are in yuan with up to two decimals and become ``Int64`` fen by exact string
arithmetic (``"12.34"`` -> ``1234``), never through floats; a malformed amount raises
:class:`TradeBillError`. ``trade_time`` is a ``Datetime`` in Asia/Shanghai.

The column list and the summary semantics are unverified against a real bill (see the notes in
``simulator.py``); :func:`read_trade_bill` checks only what is certain (row count, refund and
settlement totals) and that check can be switched off.
"""

from __future__ import annotations

import dataclasses
import io
import re

import polars as pl

COLUMNS: dict[str, str] = {
    "交易时间": "trade_time",
    "公众账号ID": "appid",
    "商户号": "mchid",
    "特约商户号": "sub_mchid",
    "设备号": "device_info",
    "微信订单号": "transaction_id",
    "商户订单号": "out_trade_no",
    "用户标识": "openid",
    "交易类型": "trade_type",
    "交易状态": "trade_state",
    "付款银行": "bank_type",
    "货币种类": "currency",
    "应结订单金额": "settlement_total_fen",
    "代金券金额": "coupon_fen",
    "微信退款单号": "refund_id",
    "商户退款单号": "out_refund_no",
    "退款金额": "refund_fen",
    "充值券退款金额": "recharge_coupon_refund_fen",
    "退款类型": "refund_type",
    "退款状态": "refund_status",
    "商品名称": "description",
    "商户数据包": "attach",
    "手续费": "fee_fen",
    "费率": "fee_rate",
    "订单金额": "total_fen",
    "申请退款金额": "applied_refund_fen",
    "费率备注": "fee_rate_remark",
}
AMOUNT_COLUMNS = frozenset(name for name in COLUMNS.values() if name.endswith("_fen"))
REQUIRED = ("交易时间", "微信订单号", "商户订单号", "交易状态")

SUMMARY_COLUMNS: dict[str, str] = {
    "总交易单数": "count",
    "应结订单总金额": "settlement_total_fen",
    "退款总金额": "refund_fen",
    "充值券退款总金额": "recharge_coupon_refund_fen",
    "手续费总金额": "fee_fen",
    "订单总金额": "total_fen",
    "申请退款总金额": "applied_refund_fen",
}
SUMMARY_MARKER = "总交易单数"

_AMOUNT_RE = r"^(?P<sign>-?)(?P<whole>[0-9]{1,15})(?:\.(?P<frac>[0-9]{1,2}))?$"  # ASCII digits only
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class TradeBillError(ValueError):
    """The bytes are not a trade bill this parser understands (English, for logs)."""


@dataclasses.dataclass(frozen=True)
class TradeBillSummary:
    """The bill's own totals (fen)."""

    count: int
    settlement_total_fen: int
    refund_fen: int
    recharge_coupon_refund_fen: int
    fee_fen: int
    total_fen: int
    applied_refund_fen: int


@dataclasses.dataclass(frozen=True)
class TradeBill:
    rows: pl.DataFrame
    summary: TradeBillSummary


def _text(data: bytes | str) -> str:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TradeBillError("the trade bill is not UTF-8") from exc
    return data.removeprefix("\ufeff")


def split_trade_bill(data: bytes | str) -> tuple[str, str | None]:
    """``(detail CSV text, summary CSV text or None)``."""
    text = _text(data)
    if text.startswith(SUMMARY_MARKER):
        return "", text
    idx = text.find("\n" + SUMMARY_MARKER)
    if idx < 0:
        return text, None
    return text[: idx + 1], text[idx + 1:]


def _read(text: str) -> pl.DataFrame:
    try:
        return pl.read_csv(io.StringIO(text), infer_schema=False, has_header=True, quote_char='"',
                           truncate_ragged_lines=False)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise TradeBillError(f"the trade bill is not valid CSV: {type(exc).__name__}") from exc


def _strip(name: str) -> pl.Expr:
    """The column's text without the leading back-tick and surrounding blanks; empty -> null."""
    value = pl.col(name).str.strip_chars().str.strip_prefix("`").str.strip_chars()
    return pl.when(value == "").then(None).otherwise(value)


def _fen_frame(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Convert yuan text columns to Int64 fen exactly; raise on any malformed value."""
    if not columns or frame.height == 0:
        return frame.with_columns(pl.col(c).cast(pl.Int64) for c in columns)
    exprs = []
    for c in columns:
        g = pl.col(c).str.extract_groups(_AMOUNT_RE)
        fen = (g.struct.field("whole").cast(pl.Int64) * 100
               + g.struct.field("frac").fill_null("").str.pad_end(2, "0").cast(pl.Int64))
        exprs.append(pl.when(g.struct.field("sign") == "-").then(-fen).otherwise(fen).alias(c))
    converted = frame.with_columns(exprs)
    for c in columns:
        bad = frame.filter(pl.col(c).is_not_null() & converted[c].is_null())
        if bad.height:
            raise TradeBillError(f"malformed amount in column {c!r}: {bad[c][0]!r}")
    return converted


def parse_trade_bill(data: bytes | str) -> pl.DataFrame:
    """The detail rows of a trade bill as a typed frame (see the module docstring for columns)."""
    detail, _ = split_trade_bill(data)
    if not detail.strip():
        raise TradeBillError("the trade bill has no header row")
    raw = _read(detail)
    headers = [h.strip().removeprefix("\ufeff") for h in raw.columns]
    raw.columns = headers
    missing = [h for h in REQUIRED if h not in headers]
    if missing:
        raise TradeBillError(f"the trade bill lacks columns {missing}")
    known = [
        (_strip(h) if h in headers else pl.lit(None, dtype=pl.String)).alias(name)
        for h, name in COLUMNS.items()
    ]
    extra = [_strip(h).alias(h) for h in headers if h not in COLUMNS]
    frame = raw.select(known + extra)
    frame = _fen_frame(frame, [c for c in COLUMNS.values() if c in AMOUNT_COLUMNS])
    times = frame["trade_time"].str.strptime(pl.Datetime("us"), _TIME_FORMAT, strict=False)
    if (times.is_null() & frame["trade_time"].is_not_null()).any():
        raise TradeBillError("malformed 交易时间 (expected YYYY-MM-DD HH:MM:SS)")
    return frame.with_columns(times.dt.replace_time_zone("Asia/Shanghai").alias("trade_time"))


def parse_trade_bill_summary(data: bytes | str) -> TradeBillSummary:
    """The summary row of a trade bill (raises :class:`TradeBillError` if there is none)."""
    _, summary = split_trade_bill(data)
    if summary is None:
        raise TradeBillError("the trade bill has no summary (总交易单数) section")
    raw = _read(summary)
    raw.columns = [h.strip() for h in raw.columns]
    if raw.height != 1:
        raise TradeBillError(f"the trade bill summary has {raw.height} rows, expected 1")
    missing = [h for h in SUMMARY_COLUMNS if h not in raw.columns]
    if missing:
        raise TradeBillError(f"the trade bill summary lacks columns {missing}")
    frame = raw.select(_strip(h).alias(name) for h, name in SUMMARY_COLUMNS.items())
    count = frame["count"][0]
    if count is None or not re.fullmatch(r"[0-9]{1,15}", count):
        raise TradeBillError(f"malformed 总交易单数: {count!r}")
    amounts = _fen_frame(frame.drop("count"), [n for n in SUMMARY_COLUMNS.values() if n != "count"])
    values = {name: (amounts[name][0] or 0) for name in amounts.columns}
    return TradeBillSummary(count=int(count), **values)


def read_trade_bill(data: bytes | str, *, check_summary: bool = True) -> TradeBill:
    """Detail rows and summary; with ``check_summary`` the row count and the settlement and refund
    totals must agree with the rows (:class:`TradeBillError` otherwise)."""
    rows = parse_trade_bill(data)
    summary = parse_trade_bill_summary(data)
    if check_summary:
        problems = []
        if summary.count != rows.height:
            problems.append(f"总交易单数 {summary.count} != {rows.height} rows")
        for field in ("settlement_total_fen", "refund_fen"):
            actual = int(rows[field].sum() or 0)
            if getattr(summary, field) != actual:
                problems.append(f"{field}: summary {getattr(summary, field)} != rows {actual}")
        if problems:
            raise TradeBillError("the trade bill summary does not match its rows: " + "; ".join(problems))
    return TradeBill(rows=rows, summary=summary)
