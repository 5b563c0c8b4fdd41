"""Constants and value rules of the Alipay open API shared by the client and the simulator.

Money: this project counts in ``int`` fen; Alipay's ``trans_amount`` is a yuan string with at most
two decimals (``"12.30"``). :func:`fen_to_yuan` and :func:`yuan_to_fen` convert exactly, with
integer arithmetic only (never a float).

Result codes (公共错误码): ``10000`` success; ``20000`` service temporarily unavailable
(``isp.unknow-error``: the outcome is unknown); ``20001`` insufficient authorisation; ``40001``
missing parameter; ``40002`` invalid parameter (``isv.invalid-signature``, ...); ``40004``
business failure, the reason in ``sub_code``; ``40006`` insufficient permissions.
"""

from __future__ import annotations

import datetime as dt
import re

from gc_admin.core.clock import SHANGHAI

METHOD_TRANSFER = "alipay.fund.trans.uni.transfer"
METHOD_QUERY = "alipay.fund.trans.common.query"
PRODUCT_CODE = "TRANS_ACCOUNT_NO_PWD"  # 单笔无密转账到支付宝账户
BIZ_SCENE = "DIRECT_TRANSFER"
IDENTITY_TYPES = ("ALIPAY_LOGON_ID", "ALIPAY_USER_ID")
SIGN_TYPE = "RSA2"
VERSION = "1.0"
CHARSET = "utf-8"
FORMAT = "JSON"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"  # Beijing time, as Alipay reads it

CODE_SUCCESS = "10000"
CODE_UNAVAILABLE = "20000"
CODE_MISSING = "40001"
CODE_INVALID = "40002"
CODE_BUSINESS = "40004"

# Business sub_codes of 40004 for the transfer and the query (subset the simulator speaks).
SYSTEM_ERROR = "SYSTEM_ERROR"  # 系统繁忙: the outcome is unknown, query before any retry
PAYEE_NOT_EXIST = "PAYEE_NOT_EXIST"  # 收款账号不存在
PAYEE_USER_INFO_ERROR = "PAYEE_USER_INFO_ERROR"  # 收款方账号与姓名不匹配
PAYER_BALANCE_NOT_ENOUGH = "PAYER_BALANCE_NOT_ENOUGH"  # 付款方余额不足
PAYCARD_UNABLE_PAYMENT = "PAYCARD_UNABLE_PAYMENT"  # 付款账户余额支付功能关闭
EXCEED_LIMIT_SM_AMOUNT = "EXCEED_LIMIT_SM_AMOUNT"  # 单笔金额超限
EXCEED_LIMIT_SM_MIN_AMOUNT = "EXCEED_LIMIT_SM_MIN_AMOUNT"  # 单笔金额低于下限
PAYMENT_INFO_INCONSISTENCY = "PAYMENT_INFO_INCONSISTENCY"  # 同一 out_biz_no 参数不一致
INVALID_PARAMETER = "INVALID_PARAMETER"  # 参数有误
ORDER_NOT_EXIST = "ORDER_NOT_EXIST"  # 转账订单不存在 (query)

# Sub_codes after which Alipay may or may not have moved the money: query, never assume.
UNCERTAIN_SUB_CODES = frozenset({SYSTEM_ERROR, PAYMENT_INFO_INCONSISTENCY})

MIN_TRANSFER_FEN = 10  # 0.1 yuan, TRANS_ACCOUNT_NO_PWD
MAX_TRANSFER_FEN = 50_000_00  # 50,000 yuan to a person per transfer

OUT_BIZ_NO_RE = re.compile(r"^[0-9A-Za-z_\-]{1,64}$")
_YUAN_RE = re.compile(r"^(0|[1-9][0-9]{0,13})(?:\.([0-9]{1,2}))?$")


def fen_to_yuan(fen: int) -> str:
    """``1230`` -> ``"12.30"`` (non-negative int fen only; ``bool`` and ``float`` are refused)."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError("amount must be int fen")
    if fen < 0:
        raise ValueError("amount must not be negative")
    return f"{fen // 100}.{fen % 100:02d}"


def yuan_to_fen(yuan: str) -> int:
    """``"12.30"`` / ``"12.3"`` / ``"12"`` -> ``1230``; anything else (signs, exponents, three
    decimals, spaces, floats) raises ``ValueError``."""
    if not isinstance(yuan, str):
        raise ValueError("a yuan amount must be a string")
    m = _YUAN_RE.match(yuan)
    if m is None:
        raise ValueError(f"not a yuan amount: {yuan!r}")
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))


def alipay_timestamp(when: dt.datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Asia/Shanghai (an aware datetime in any zone)."""
    if when.tzinfo is None:
        raise ValueError("timestamp needs an aware datetime")
    return when.astimezone(SHANGHAI).strftime(TIMESTAMP_FORMAT)


def parse_alipay_timestamp(value: str) -> dt.datetime:
    """The aware datetime of an Alipay ``timestamp`` (Beijing time); ``ValueError`` if malformed."""
    return dt.datetime.strptime(value, TIMESTAMP_FORMAT).replace(tzinfo=SHANGHAI)


def response_key(method: str) -> str:
    """``alipay.fund.trans.uni.transfer`` -> ``alipay_fund_trans_uni_transfer_response``."""
    return method.replace(".", "_") + "_response"


ERROR_RESPONSE_KEY = "error_response"
