"""A local stand-in for the WeChat Pay API v3 (dev/test only; the app mounts it under ``/sim/wechatpay``).

``build_wxpay_simulator(state)`` returns a router; with the client's ``base_url`` set to
``http://<host>/sim/wechatpay`` the same :class:`~gc_admin.integrations.wechatpay.client.WxPayClient`
code that talks to ``api.mch.weixin.qq.com`` pays, refunds and downloads bills here.

What it does like WeChat Pay (public-key mode):

- verifies every merchant request's ``Authorization`` (RSA-SHA256 with the merchant's public key,
  mchid, certificate serial, 5-minute timestamp window) over ``METHOD\\nURL\\nTS\\nNONCE\\nBODY\\n``,
  where URL is the raw request path *below the mount point* plus the raw query: the prefix is
  found by matching the route's own segment count against the received ``raw_path``, so it
  works under any ``include_router`` prefix, ``root_path`` or sub-application mount;
  a failure is ``401 {"code":"SIGN_ERROR"}``;
- signs every API answer (also errors and 204s) with the platform private key:
  ``Wechatpay-Timestamp/Nonce/Signature/Serial/Signature-Type`` and ``Request-ID``; the bill file
  download is unsigned, as documented;
- validates bodies (``400 PARAM_ERROR``), keeps orders and refunds, enforces ``out_trade_no``
  uniqueness (same body again → the same ``prepay_id``; different → ``400 INVALID_REQUEST``),
  ``out_refund_no`` idempotency (same order and amounts → the existing refund; otherwise
  ``400 INVALID_REQUEST``) and the refundable balance (``400 NOT_ENOUGH``);
- sends notifies as WeChat does: JSON envelope, ``resource`` encrypted with AES-256-GCM under the
  APIv3 key, headers signed with the platform key. Delivery goes through ``state.deliver(url,
  headers, body) -> HTTP status`` (default: an httpx POST), so tests can deliver in-process,
  replay, tamper with or delay a notify; every notify is recorded in ``state.notifies``.

Test/dev helpers (not part of WeChat Pay, unsigned): ``POST /_pay {"prepay_id"}`` plays the user
paying (order → SUCCESS, then a ``TRANSACTION.SUCCESS`` notify to the order's ``notify_url``);
``POST /_refund {"out_refund_no", "status"?}`` plays WeChat finishing a refund (``SUCCESS`` by
default, or ``ABNORMAL`` / ``CLOSED``) and sends ``REFUND.<status>`` to the refund's ``notify_url``.
The same are plain functions: :func:`pay_order`, :func:`finish_refund`, :func:`make_notify`.

Unverified parts (checked against docs/notes where possible, but not against the real service):

- error codes and HTTP statuses per situation: ``ORDERPAID`` / ``ORDER_CLOSED`` / ``INVALID_REQUEST``
  (duplicate ``out_trade_no``), ``APPID_MCHID_NOT_MATCH``, ``ORDER_NOT_EXIST`` (404),
  ``RESOURCE_NOT_EXISTS`` (404), ``NOT_ENOUGH`` for refunds above the refundable balance,
  ``NO_STATEMENT_EXIST`` for an empty bill day; messages here are English (WeChat's are Chinese);
- whether WeChat signs error answers (this simulator does; the client does not rely on it);
- refunds start ``PROCESSING`` and finish only through ``/_refund`` (WeChat usually finishes
  within seconds to minutes); the real maximum amount and partial-refund count limits are not
  enforced (any positive int fen is accepted);
- the trade bill: column list and order (taken from the v2 format as commonly quoted), CRLF
  lines, no BOM, RFC-4180 quoting of fields that contain a comma/quote (WeChat's handling of
  such characters is unknown), the fee (``fee_rate_bp`` basis points of each amount, rounded
  half-up to the fen, negative on refund rows), which day a row belongs to (its success time in
  Asia/Shanghai), refund rows showing ``应结订单金额`` 0.00, ``总交易单数`` = detail rows;
  today's bill is served (WeChat serves a day's bill only after 10:00 the next day); the
  download token is valid for 30 seconds and reusable within that time;
- payments by anything but the user's balance (``bank_type`` is always ``OTHERS``), coupons,
  ``promotion_detail`` and the settlement/discount amounts (always equal to the paid amounts).

Its state (orders, refunds, notifies, bill download tokens) lives in ``state.store``
(:mod:`~gc_admin.integrations.simstore`): Redis shared by every worker and host when the app has
``GC_REDIS_URL`` (a JSAPI order opened through one worker is paid and refunded through any other), else
this process's memory. Each decision is taken under ``state.lock`` (exclusive across processes) and every
changed order or refund is written back.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import gzip
import hashlib
import io
import json
import logging
import threading
import re
import secrets
import uuid
from collections.abc import Callable, Mapping, MutableMapping
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.integrations.simio import Deliver, http_deliver, load_or_create_json
from gc_admin.integrations.simstore import MemoryStore, RedisStore
from gc_admin.integrations.wechatpay import crypto

log = logging.getLogger(__name__)

MAX_SKEW_SECONDS = 300
BILL_URL_TTL = dt.timedelta(seconds=30)
PREPAY_TTL = dt.timedelta(hours=2)

_OUT_TRADE_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
_OUT_REFUND_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")

TRADE_BILL_COLUMNS = (
    "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识", "交易类型",
    "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额", "微信退款单号", "商户退款单号", "退款金额",
    "充值券退款金额", "退款类型", "退款状态", "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额",
    "费率备注",
)
TRADE_BILL_SUMMARY_COLUMNS = ("总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额",
                              "订单总金额", "申请退款总金额")

TRADE_STATE_DESC = {
    "NOTPAY": "订单未支付",
    "SUCCESS": "支付成功",
    "REFUND": "转入退款",
    "CLOSED": "订单已关闭",
}
NOTIFY_SUMMARY = {
    "TRANSACTION.SUCCESS": "支付成功",
    "REFUND.SUCCESS": "退款成功",
    "REFUND.ABNORMAL": "退款异常",
    "REFUND.CLOSED": "退款关闭",
}

@dataclasses.dataclass
class SimOrder:
    out_trade_no: str
    prepay_id: str
    appid: str
    mchid: str
    description: str
    total: int  # fen
    openid: str
    notify_url: str
    attach: str
    time_expire: dt.datetime | None
    create_time: dt.datetime
    request: dict[str, Any]  # the prepay body, to tell a retry from a conflicting reuse
    trade_state: str = "NOTPAY"
    transaction_id: str = ""
    success_time: dt.datetime | None = None


@dataclasses.dataclass
class SimRefund:
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    refund: int  # fen
    total: int  # fen
    reason: str
    notify_url: str
    create_time: dt.datetime
    status: str = "PROCESSING"
    success_time: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class SimNotify:
    """One notify the simulator built and tried to deliver (``status`` 0: delivery raised)."""

    url: str
    event_type: str
    headers: dict[str, str]
    body: bytes
    status: int
    resource: dict[str, Any]


@dataclasses.dataclass
class _BillFile:
    data: bytes
    expires: dt.datetime


@dataclasses.dataclass
class WxPaySimState:
    """What WeChat Pay knows about one merchant, and what happened.

    ``merchant_public_key_pem`` verifies the merchant's request signatures (registered with its
    ``merchant_serial_no``); ``platform_private_key_pem`` signs answers and notifies under
    ``platform_public_key_id`` (``PUB_KEY_ID_…``); ``apiv3_key`` encrypts notify resources.
    ``clock`` is the simulator's "now" (tests move it); ``deliver`` posts notifies.
    """

    mchid: str
    appid: str
    merchant_public_key_pem: str | bytes
    merchant_serial_no: str
    platform_private_key_pem: str | bytes
    platform_public_key_id: str
    apiv3_key: str
    deliver: Deliver = http_deliver
    clock: Callable[[], dt.datetime] = utcnow
    max_skew: int = MAX_SKEW_SECONDS
    fee_rate_bp: int = 60  # 0.60 %
    # dev: finish each new refund by itself after this many seconds (SUCCESS + notify), as WeChat Pay does;
    # None = only when asked (tests, `finish_refund` / POST /_refund)
    auto_refund_seconds: float | None = None
    store: MemoryStore | RedisStore = dataclasses.field(default_factory=MemoryStore, repr=False)
    orders: MutableMapping[str, SimOrder] = dataclasses.field(init=False)
    refunds: MutableMapping[str, SimRefund] = dataclasses.field(init=False)
    notifies: Any = dataclasses.field(init=False)  # a list of SimNotify (a Redis log when shared)
    bill_files: MutableMapping[str, _BillFile] = dataclasses.field(init=False, repr=False)
    lock: Any = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.orders = self.store.table("wxpay.orders", SimOrder)
        self.refunds = self.store.table("wxpay.refunds", SimRefund)
        self.notifies = self.store.log("wxpay.notifies", SimNotify)
        self.bill_files = self.store.table("wxpay.bill_files", _BillFile)
        # lookups WeChat Pay answers by: prepay_id / transaction_id -> out_trade_no, out_trade_no -> refunds
        self._by_prepay: MutableMapping[str, str] = self.store.table("wxpay.by_prepay")
        self._by_transaction: MutableMapping[str, str] = self.store.table("wxpay.by_transaction")
        self._order_refunds: MutableMapping[str, list[str]] = self.store.table("wxpay.order_refunds")
        self.lock = self.store.lock
        self._merchant_key = crypto.load_public_key(self.merchant_public_key_pem)
        self._platform_key = crypto.load_private_key(self.platform_private_key_pem)
        if len(self.apiv3_key.encode("utf-8")) != crypto.APIV3_KEY_LENGTH:
            raise ValueError("the APIv3 key must be 32 bytes")

    def order_by_prepay_id(self, prepay_id: str) -> SimOrder | None:
        with self.lock:
            out_trade_no = self._by_prepay.get(prepay_id)
            return None if out_trade_no is None else self.orders.get(out_trade_no)

    def order_by_transaction_id(self, transaction_id: str) -> SimOrder | None:
        with self.lock:
            out_trade_no = self._by_transaction.get(transaction_id) if transaction_id else None
            return None if out_trade_no is None else self.orders.get(out_trade_no)

    def refunded(self, out_trade_no: str) -> int:
        """Fen refunded or being refunded on an order (closed refunds excluded)."""
        with self.lock:
            found = (self.refunds.get(no) for no in self._order_refunds.get(out_trade_no, []))
            return sum(r.refund for r in found if r is not None and r.status != "CLOSED")

    def save_order(self, order: SimOrder) -> None:
        """Write ``order`` (new or changed) and its lookups; call it under :attr:`lock`."""
        self.orders[order.out_trade_no] = order
        self._by_prepay[order.prepay_id] = order.out_trade_no
        if order.transaction_id:
            self._by_transaction[order.transaction_id] = order.out_trade_no

    def save_refund(self, refund: SimRefund) -> None:
        """Write ``refund`` (new or changed) and its order's list; call it under :attr:`lock`."""
        if refund.out_refund_no not in self.refunds:
            self._order_refunds[refund.out_trade_no] = [*self._order_refunds.get(refund.out_trade_no, []),
                                                        refund.out_refund_no]
        self.refunds[refund.out_refund_no] = refund


class SimError(Exception):
    """A WeChat Pay error answer: HTTP status, code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


# --------------------------------------------------------------------------------------------------
# signing and notifies


def _fmt_time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(SHANGHAI).isoformat(timespec="seconds")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign_headers(state: WxPaySimState, body: bytes, *, timestamp: int | None = None,
                 nonce: str | None = None) -> dict[str, str]:
    """The ``Wechatpay-*`` headers WeChat Pay puts on an answer or a notify with ``body``."""
    ts = str(int(state.clock().timestamp()) if timestamp is None else timestamp)
    nonce = nonce or crypto.make_nonce(32)
    signature = crypto.rsa_sign(state._platform_key, crypto.response_message(ts, nonce, body))
    return {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": state.platform_public_key_id,
        "Wechatpay-Signature-Type": crypto.SIGNATURE_TYPE,
    }


def make_notify(state: WxPaySimState, event_type: str, resource: Mapping[str, Any], *,
                timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    """A signed, encrypted notify as WeChat Pay POSTs it: ``(headers, body)``.

    ``event_type`` is ``TRANSACTION.SUCCESS`` or ``REFUND.SUCCESS|ABNORMAL|CLOSED``; ``resource``
    is the plaintext object (a transaction or refund); ``timestamp`` (UNIX seconds) defaults to now."""
    original_type = "refund" if event_type.startswith("REFUND.") else "transaction"
    when = state.clock() if timestamp is None else dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
    envelope = {
        "id": str(uuid.uuid4()),
        "create_time": _fmt_time(when),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": NOTIFY_SUMMARY.get(event_type, event_type),
        "resource": crypto.encrypt_resource(state.apiv3_key, original_type=original_type,
                                            plaintext=_dumps(dict(resource))),
    }
    body = _dumps(envelope)
    headers = {"Content-Type": "application/json", **sign_headers(state, body, timestamp=timestamp)}
    return headers, body


def _send_notify(state: WxPaySimState, url: str, event_type: str, resource: dict[str, Any]) -> SimNotify:
    headers, body = make_notify(state, event_type, resource)
    try:
        status = int(state.deliver(url, headers, body))
    except Exception as exc:  # noqa: BLE001 - a failed delivery is recorded, as WeChat would retry it
        log.warning("wxpay simulator: %s notify delivery failed: %s", event_type, type(exc).__name__)
        status = 0
    notify = SimNotify(url=url, event_type=event_type, headers=headers, body=body, status=status, resource=resource)
    with state.lock:
        state.notifies.append(notify)
    log.info("wxpay simulator: %s notify delivered, HTTP %s", event_type, status)
    return notify


# --------------------------------------------------------------------------------------------------
# resources


def transaction_resource(state: WxPaySimState, order: SimOrder) -> dict[str, Any]:
    """The transaction object (query answer and TRANSACTION.* notify resource)."""
    out: dict[str, Any] = {
        "appid": order.appid,
        "mchid": order.mchid,
        "out_trade_no": order.out_trade_no,
        "trade_state": order.trade_state,
        "trade_state_desc": TRADE_STATE_DESC.get(order.trade_state, order.trade_state),
        "attach": order.attach,
        "payer": {"openid": order.openid},
        "amount": {"total": order.total, "currency": "CNY"},
    }
    if order.transaction_id:
        out.update({
            "transaction_id": order.transaction_id,
            "trade_type": "JSAPI",
            "bank_type": "OTHERS",
            "success_time": _fmt_time(order.success_time),
        })
        out["amount"].update({"payer_total": order.total, "payer_currency": "CNY"})
    return out


def refund_resource(state: WxPaySimState, refund: SimRefund) -> dict[str, Any]:
    """The refund object (refund / query-refund answer)."""
    out: dict[str, Any] = {
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": refund.transaction_id,
        "out_trade_no": refund.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": _fmt_time(refund.create_time),
        "status": refund.status,
        "funds_account": "AVAILABLE",
        "amount": {
            "total": refund.total, "refund": refund.refund, "payer_total": refund.total,
            "payer_refund": refund.refund, "settlement_refund": refund.refund, "settlement_total": refund.total,
            "discount_refund": 0, "currency": "CNY",
        },
        "promotion_detail": [],
    }
    if refund.success_time is not None:
        out["success_time"] = _fmt_time(refund.success_time)
    return out


def refund_notify_resource(state: WxPaySimState, refund: SimRefund) -> dict[str, Any]:
    """The REFUND.* notify resource (a flatter shape than the refund object)."""
    out: dict[str, Any] = {
        "mchid": state.mchid,
        "out_trade_no": refund.out_trade_no,
        "transaction_id": refund.transaction_id,
        "out_refund_no": refund.out_refund_no,
        "refund_id": refund.refund_id,
        "refund_status": refund.status,
        "user_received_account": "支付用户零钱",
        "amount": {"total": refund.total, "refund": refund.refund, "payer_total": refund.total,
                   "payer_refund": refund.refund},
    }
    if refund.success_time is not None:
        out["success_time"] = _fmt_time(refund.success_time)
    return out


def _digits(n: int) -> str:
    return "".join(str(secrets.randbelow(10)) for _ in range(n))


# --------------------------------------------------------------------------------------------------
# the user's and WeChat's side (helpers)


def pay_order(state: WxPaySimState, prepay_id: str, *, deliver: bool = True) -> SimNotify | None:
    """Play the user paying ``prepay_id``: the order becomes SUCCESS and (if ``deliver``) a
    TRANSACTION.SUCCESS notify goes to its ``notify_url``. Raises :class:`SimError`."""
    now = state.clock()
    with state.lock:
        order = state.order_by_prepay_id(prepay_id)
        if order is None or now > order.create_time + PREPAY_TTL:
            raise SimError(404, "RESOURCE_NOT_EXISTS", "prepay_id does not exist or has expired")
        if order.trade_state in ("SUCCESS", "REFUND"):
            raise SimError(400, "ORDERPAID", "the order has been paid")
        if order.trade_state == "CLOSED":
            raise SimError(400, "ORDER_CLOSED", "the order has been closed")
        if order.time_expire is not None and now > order.time_expire:
            raise SimError(400, "ORDER_CLOSED", "the order has expired (time_expire)")
        order.trade_state = "SUCCESS"
        order.transaction_id = "4200" + _digits(24)
        order.success_time = now
        state.save_order(order)
        resource = transaction_resource(state, order)
        url = order.notify_url
    log.info("wxpay simulator: order %s paid (%s fen)", order.out_trade_no, order.total)
    return _send_notify(state, url, "TRANSACTION.SUCCESS", resource) if deliver else None


def finish_refund(state: WxPaySimState, out_refund_no: str, *, status: str = "SUCCESS",
                  deliver: bool = True) -> SimNotify | None:
    """Play WeChat finishing a PROCESSING refund with ``status`` (SUCCESS, ABNORMAL or CLOSED)
    and (if ``deliver`` and the refund has a ``notify_url``) send ``REFUND.<status>``."""
    if status not in ("SUCCESS", "ABNORMAL", "CLOSED"):
        raise SimError(400, "PARAM_ERROR", "status must be SUCCESS, ABNORMAL or CLOSED")
    with state.lock:
        refund = state.refunds.get(out_refund_no)
        if refund is None:
            raise SimError(404, "RESOURCE_NOT_EXISTS", "refund does not exist")
        if refund.status != "PROCESSING":
            raise SimError(400, "INVALID_REQUEST", f"refund is already {refund.status}")
        refund.status = status
        if status == "SUCCESS":
            refund.success_time = state.clock()
        state.save_refund(refund)
        resource = refund_notify_resource(state, refund)
        url = refund.notify_url
    log.info("wxpay simulator: refund %s finished %s", out_refund_no, status)
    if not (deliver and url):
        return None
    return _send_notify(state, url, f"REFUND.{status}", resource)


# --------------------------------------------------------------------------------------------------
# trade bill


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def _fee(state: WxPaySimState, fen: int) -> int:
    value = (Decimal(fen) * state.fee_rate_bp / Decimal(10000)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(value)


def _local_day(value: dt.datetime | None) -> dt.date | None:
    return None if value is None else value.astimezone(SHANGHAI).date()


def build_trade_bill(state: WxPaySimState, bill_date: dt.date, bill_type: str = "ALL") -> bytes | None:
    """The trade bill CSV of ``bill_date`` (Asia/Shanghai), or ``None`` if the day has no rows."""
    rate = f"{Decimal(state.fee_rate_bp) / Decimal(100):.2f}%"
    rows: list[tuple[dt.datetime, list[str]]] = []
    with state.lock:
        orders = list(state.orders.values())
        refunds = [r for r in state.refunds.values() if r.status == "SUCCESS"]
    by_no = {o.out_trade_no: o for o in orders}
    if bill_type in ("ALL", "SUCCESS"):
        for o in orders:
            if o.success_time is None or _local_day(o.success_time) != bill_date:
                continue
            rows.append((o.success_time, [
                o.success_time.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"), o.appid, o.mchid, "0", "",
                o.transaction_id, o.out_trade_no, o.openid, "JSAPI", "SUCCESS", "OTHERS", "CNY", _yuan(o.total),
                "0.00", "0", "0", "0.00", "0.00", "", "", o.description, o.attach, _yuan(_fee(state, o.total)), rate,
                _yuan(o.total), "0.00", "",
            ]))
    if bill_type in ("ALL", "REFUND"):
        for r in refunds:
            if _local_day(r.success_time) != bill_date:
                continue
            o = by_no[r.out_trade_no]
            assert r.success_time is not None
            rows.append((r.success_time, [
                r.success_time.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"), o.appid, o.mchid, "0", "",
                o.transaction_id, o.out_trade_no, o.openid, "JSAPI", "REFUND", "OTHERS", "CNY", "0.00", "0.00",
                r.refund_id, r.out_refund_no, _yuan(r.refund), "0.00", "ORIGINAL", "SUCCESS", o.description, o.attach,
                _yuan(-_fee(state, r.refund)), rate, _yuan(o.total), _yuan(r.refund), "",
            ]))
    if not rows:
        return None
    rows.sort(key=lambda item: item[0])
    col = {name: i for i, name in enumerate(TRADE_BILL_COLUMNS)}

    def column_sum(name: str, *, state_filter: str | None = None) -> str:
        return _yuan(sum(_parse_yuan_exact(r[col[name]]) for _, r in rows
                         if state_filter is None or r[col["交易状态"]] == state_filter))

    summary = [
        str(len(rows)),
        column_sum("应结订单金额"),
        column_sum("退款金额"),
        column_sum("充值券退款金额"),
        column_sum("手续费"),
        column_sum("订单金额", state_filter="SUCCESS"),  # each order once, from its payment row
        column_sum("申请退款金额"),
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TRADE_BILL_COLUMNS)
    writer.writerows(["`" + v for v in r] for _, r in rows)
    writer.writerow(TRADE_BILL_SUMMARY_COLUMNS)
    writer.writerow(["`" + v for v in summary])
    return out.getvalue().encode("utf-8")


def _parse_yuan_exact(text: str) -> int:
    """``"-12.34"`` -> ``-1234`` fen, exactly (no floats)."""
    neg = text.startswith("-")
    whole, _, frac = text.lstrip("-").partition(".")
    fen = int(whole or "0") * 100 + int((frac or "0").ljust(2, "0")[:2])
    return -fen if neg else fen


# --------------------------------------------------------------------------------------------------
# the HTTP API


@dataclasses.dataclass
class _Call:
    method: str
    path_params: dict[str, str]
    query: dict[str, str]
    body: bytes
    mchid: str  # from the verified Authorization
    origin_prefix: str  # "http://host:port/sim/wechatpay": where this API is served

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body)
        except ValueError:
            raise SimError(400, "PARAM_ERROR", "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise SimError(400, "PARAM_ERROR", "the body is not a JSON object")
        return data


def _signed_url(request: Request, template: str) -> tuple[str, str]:
    """``(URL as signed, mount prefix)``: the last N raw path segments, where N is the segment count
    of the route's own template (path parameters never contain ``/``), plus the raw query."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode("utf-8")
    raw_path = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
    n = template.count("/")
    parts = raw_path.split("/")
    below = "/" + "/".join(parts[-n:])
    prefix = "/".join(parts[:-n])
    query = request.scope.get("query_string", b"").decode("latin-1")
    return (below + ("?" + query if query else "")), prefix


def _verify_request(state: WxPaySimState, method: str, url: str, headers: Mapping[str, str], body: bytes) -> str:
    """Check a merchant request's Authorization; return the mchid or raise ``SimError(401, SIGN_ERROR)``."""
    auth = crypto.parse_authorization(headers.get("authorization", ""))
    if auth is None:
        raise SimError(401, "SIGN_ERROR", "the Authorization header is missing or malformed")
    if auth["mchid"] != state.mchid:
        raise SimError(401, "SIGN_ERROR", "the mchid in Authorization is unknown")
    if auth["serial_no"].upper() != state.merchant_serial_no.upper():
        raise SimError(401, "SIGN_ERROR", "the merchant certificate serial_no is not registered")
    ts = auth["timestamp"]
    if not (ts.isascii() and ts.isdigit()) or abs(int(state.clock().timestamp()) - int(ts)) > state.max_skew:
        raise SimError(401, "SIGN_ERROR", "the Authorization timestamp is expired or invalid")
    if len(auth["nonce_str"]) > 32:
        raise SimError(401, "SIGN_ERROR", "nonce_str is longer than 32 characters")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SimError(401, "SIGN_ERROR", "the body is not UTF-8") from None
    message = crypto.request_message(method, url, ts, auth["nonce_str"], text)
    if not crypto.rsa_verify(state._merchant_key, message, auth["signature"]):
        raise SimError(401, "SIGN_ERROR", "signature verification failed, check the signed message and the key")
    return auth["mchid"]


def _signed_response(state: WxPaySimState, status: int, payload: dict[str, Any] | None) -> Response:
    body = b"" if payload is None else _dumps(payload)
    headers = {**sign_headers(state, body), "Request-ID": uuid.uuid4().hex.upper()}
    if payload is None:
        return Response(status_code=status, headers=headers)
    return Response(content=body, status_code=status, headers=headers, media_type="application/json")


def _str(data: Mapping[str, Any], name: str, *, max_len: int, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise SimError(400, "PARAM_ERROR", f"missing required field {name}")
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise SimError(400, "PARAM_ERROR", f"{name} must be a string of 1-{max_len} characters")
    return value


def _int_fen(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SimError(400, "PARAM_ERROR", f"{name} must be a positive integer (fen)")
    return value


def _currency(amount: Mapping[str, Any]) -> None:
    if amount.get("currency", "CNY") != "CNY":
        raise SimError(400, "PARAM_ERROR", "currency must be CNY")


def _jsapi(state: WxPaySimState, call: _Call) -> tuple[int, dict[str, Any] | None]:
    data = call.json()
    appid = _str(data, "appid", max_len=32)
    mchid = _str(data, "mchid", max_len=32)
    description = _str(data, "description", max_len=127)
    out_trade_no = _str(data, "out_trade_no", max_len=32)
    notify_url = _str(data, "notify_url", max_len=255)
    attach = _str(data, "attach", max_len=128, required=False) or ""
    if appid != state.appid or mchid != state.mchid or mchid != call.mchid:
        raise SimError(400, "APPID_MCHID_NOT_MATCH", "appid and mchid do not match")
    assert out_trade_no is not None and notify_url is not None and description is not None
    if not _OUT_TRADE_NO_RE.match(out_trade_no):
        raise SimError(400, "PARAM_ERROR", "out_trade_no must be 6-32 characters of [0-9A-Za-z_-|*]")
    url = httpx.URL(notify_url)
    if url.scheme not in ("http", "https") or not url.host or url.query:
        raise SimError(400, "PARAM_ERROR", "notify_url must be an absolute http(s) URL without a query")
    amount = data.get("amount")
    if not isinstance(amount, dict):
        raise SimError(400, "PARAM_ERROR", "missing required field amount")
    total = _int_fen(amount.get("total"), "amount.total")
    _currency(amount)
    payer = data.get("payer")
    if not isinstance(payer, dict) or not isinstance(payer.get("openid"), str) or not payer["openid"]:
        raise SimError(400, "PARAM_ERROR", "missing required field payer.openid")
    time_expire: dt.datetime | None = None
    if data.get("time_expire") is not None:
        try:
            time_expire = dt.datetime.fromisoformat(str(data["time_expire"]))
        except ValueError:
            raise SimError(400, "PARAM_ERROR", "time_expire is not RFC 3339") from None
        if time_expire.tzinfo is None:
            raise SimError(400, "PARAM_ERROR", "time_expire needs a time zone offset")
        if time_expire <= state.clock():
            raise SimError(400, "PARAM_ERROR", "time_expire is in the past")
    with state.lock:
        existing = state.orders.get(out_trade_no)
        if existing is not None:
            if existing.trade_state in ("SUCCESS", "REFUND"):
                raise SimError(400, "ORDERPAID", "the order has been paid")
            if existing.trade_state == "CLOSED":
                raise SimError(400, "ORDER_CLOSED", "the order has been closed")
            if existing.request != data:
                raise SimError(400, "INVALID_REQUEST", "out_trade_no is already used with different parameters")
            return 200, {"prepay_id": existing.prepay_id}
        now = state.clock()
        order = SimOrder(
            out_trade_no=out_trade_no, prepay_id="wx" + now.astimezone(SHANGHAI).strftime("%d%H%M%S") + _digits(26),
            appid=appid, mchid=mchid, description=description, total=total, openid=payer["openid"],
            notify_url=notify_url, attach=attach, time_expire=time_expire, create_time=now, request=data,
        )
        state.save_order(order)
    log.info("wxpay simulator: prepay %s for %s fen", out_trade_no, total)
    return 200, {"prepay_id": order.prepay_id}


def _require_mchid(state: WxPaySimState, call: _Call, value: Any) -> None:
    if not value:
        raise SimError(400, "PARAM_ERROR", "missing required parameter mchid")
    if value != state.mchid or value != call.mchid:
        raise SimError(400, "PARAM_ERROR", "mchid does not match the requesting merchant")


def _query_by_out_trade_no(state: WxPaySimState, call: _Call) -> tuple[int, dict[str, Any] | None]:
    _require_mchid(state, call, call.query.get("mchid"))
    with state.lock:
        order = state.orders.get(call.path_params["out_trade_no"])
        if order is None:
            raise SimError(404, "ORDER_NOT_EXIST", "the order does not exist")
        return 200, transaction_resource(state, order)


def _query_by_transaction_id(state: WxPaySimState, call: _Call) -> tuple[int, dict[str, Any] | None]:
    _require_mchid(state, call, call.query.get("mchid"))
    with state.lock:
        order = state.order_by_transaction_id(call.path_params["transaction_id"])
        if order is None:
            raise SimError(404, "ORDER_NOT_EXIST", "the order does not exist")
        return 200, transaction_resource(state, order)


def _close(state: WxPaySimState, call: _Call) -> tuple[int, dict[str, Any] | None]:
    data = call.json()
    _require_mchid(state, call, data.get("mchid"))
    with state.lock:
        order = state.orders.get(call.path_params["out_trade_no"])
        if order is None:
            raise SimError(404, "ORDER_NOT_EXIST", "the order does not exist")
        if order.trade_state in ("SUCCESS", "REFUND"):
            raise SimError(400, "ORDERPAID", "the order has been paid and cannot be closed")
        order.trade_state = "CLOSED"
        state.save_order(order)
    log.info("wxpay simulator: order %s closed", order.out_trade_no)
    return 204, None


def _refund(state: WxPaySimState, call: _Call) -> tuple[int, dict[str, Any] | None]:
    data = call.json()
    out_refund_no = _str(data, "out_refund_no", max_len=64)
    assert out_refund_no is not None
    if not _OUT_REFUND_NO_RE.match(out_refund_no):
        raise SimError(400, "PARAM_ERROR", "out_refund_no must be 1-64 characters of [0-9A-Za-z_-|*@]")
    out_trade_no = _str(data, "out_trade_no", max_len=32, required=False)
    transaction_id = _str(data, "transaction_id", max_len=32, required=False)
    if not (out_trade_no or transaction_id):
        raise SimError(400, "PARAM_ERROR", "transaction_id or out_trade_no is required")
    reason = _str(data, "reason", max_len=80, required=False) or ""
    notify_url = _str(data, "notify_url", max_len=256, required=False) or ""
    amount = data.get("amount")
    if not isinstance(amount, dict):
        raise SimError(400, "PARAM_ERROR", "missing required field amount")
    refund_fen = _int_fen(amount.get("refund"), "amount.refund")
    total_fen = _int_fen(amount.get("total"), "amount.total")
    _currency(amount)
    with state.lock:
        if transaction_id:
            order = state.order_by_transaction_id(transaction_id)
        else:
            order = state.orders.get(out_trade_no or "")
        if order is None:
            raise SimError(404, "RESOURCE_NOT_EXISTS", "the order does not exist")
        existing = state.refunds.get(out_refund_no)
        if existing is not None:
            if (existing.out_trade_no, existing.refund, existing.total) != (order.out_trade_no, refund_fen, total_fen):
                raise SimError(400, "INVALID_REQUEST",
                               "out_refund_no is already used with a different order or amount")
            return 200, refund_resource(state, existing)
        if order.trade_state not in ("SUCCESS", "REFUND"):
            raise SimError(400, "INVALID_REQUEST", "the order is not paid")
        if total_fen != order.total:
            raise SimError(400, "INVALID_REQUEST", "amount.total does not match the order amount")
        if refund_fen > order.total - state.refunded(order.out_trade_no):
            raise SimError(400, "NOT_ENOUGH", "the refund exceeds the refundable amount of the order")
        refund = SimRefund(
            out_refund_no=out_refund_no, refund_id="50" + _digits(27), out_trade_no=order.out_trade_no,
            transaction_id=order.transaction_id, refund=refund_fen, total=total_fen, reason=reason,
            notify_url=notify_url, create_time=state.clock(),
        )
        state.save_refund(refund)
        order.trade_state = "REFUND"
        state.save_order(order)
    log.info("wxpay simulator: refund %s of %s fen on %s", out_refund_no, refund_fen, order.out_trade_no)
    if state.auto_refund_seconds is not None:
        timer = threading.Timer(state.auto_refund_seconds, _finish_by_itself, args=(state, out_refund_no))
        timer.daemon = True
        timer.start()
    return 200, refund_resource(state, refund)


def _finish_by_itself(state: WxPaySimState, out_refund_no: str) -> None:
    """The dev simulator's own end of a refund (GC_SIM_REFUND_SECONDS): SUCCESS and the signed notify, once;
    a refund somebody already finished (a test helper, another worker) is left alone."""
    try:
        finish_refund(state, out_refund_no)
    except SimError as e:
        log.info("wxpay simulator: refund %s not auto-finished: %s", out_refund_no, e.message)
    except Exception:  # noqa: BLE001 - a timer thread must not die loudly; the refund stays PROCESSING (queryable)
        log.exception("wxpay simulator: auto-finishing refund %s failed", out_refund_no)


def _query_refund(state: WxPaySimState, call: _Call) -> tuple[int, dict[str, Any] | None]:
    with state.lock:
        refund = state.refunds.get(call.path_params["out_refund_no"])
        if refund is None:
            raise SimError(404, "RESOURCE_NOT_EXISTS", "the refund does not exist")
        return 200, refund_resource(state, refund)


def _trade_bill(state: WxPaySimState, call: _Call) -> tuple[int, dict[str, Any] | None]:
    raw_date = call.query.get("bill_date", "")
    try:
        bill_date = dt.date.fromisoformat(raw_date)
    except ValueError:
        raise SimError(400, "PARAM_ERROR", "bill_date must be YYYY-MM-DD") from None
    if len(raw_date) != 10:
        raise SimError(400, "PARAM_ERROR", "bill_date must be YYYY-MM-DD")
    bill_type = call.query.get("bill_type", "ALL")
    if bill_type not in ("ALL", "SUCCESS", "REFUND"):
        raise SimError(400, "PARAM_ERROR", "bill_type must be ALL, SUCCESS or REFUND")
    tar_type = call.query.get("tar_type")
    if tar_type not in (None, "GZIP"):
        raise SimError(400, "PARAM_ERROR", "tar_type must be GZIP")
    today = state.clock().astimezone(SHANGHAI).date()
    if bill_date > today:
        raise SimError(400, "INVALID_REQUEST", "bill_date is in the future")
    if bill_date < today - dt.timedelta(days=92):
        raise SimError(400, "INVALID_REQUEST", "bills are kept for three months")
    csv_bytes = build_trade_bill(state, bill_date, bill_type)
    if csv_bytes is None:
        raise SimError(400, "NO_STATEMENT_EXIST", "there is no bill for this day")
    stored = gzip.compress(csv_bytes, mtime=0) if tar_type == "GZIP" else csv_bytes
    token = secrets.token_urlsafe(24)
    with state.lock:
        now = state.clock()
        for old, f in list(state.bill_files.items()):
            if f.expires < now:
                del state.bill_files[old]
        state.bill_files[token] = _BillFile(data=stored, expires=now + BILL_URL_TTL)
    return 200, {
        "hash_type": "SHA1",
        "hash_value": hashlib.sha1(csv_bytes).hexdigest(),
        "download_url": f"{call.origin_prefix}/v3/billdownload/file?token={token}",
    }


def build_wxpay_simulator(state: WxPaySimState) -> APIRouter:
    """The WeChat Pay v3 routes plus ``/_pay`` and ``/_refund`` (mount under ``/sim/wechatpay``)."""
    router = APIRouter(tags=["simulators"])

    def api(method: str, template: str, handler: Callable[[WxPaySimState, _Call], tuple[int, Any]]) -> None:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            signed_url, prefix = _signed_url(request, template)
            try:
                mchid = _verify_request(state, request.method, signed_url, request.headers, body)
                call = _Call(
                    method=request.method, path_params=dict(request.path_params),
                    query=dict(parse_qsl(request.scope.get("query_string", b"").decode("latin-1"),
                                         keep_blank_values=True)),
                    body=body, mchid=mchid, origin_prefix=f"{request.url.scheme}://{request.url.netloc}{prefix}",
                )
                status, payload = handler(state, call)
            except SimError as err:
                log.warning("wxpay simulator: %s %s refused: %s", request.method, template, err.code)
                return _signed_response(state, err.status, {"code": err.code, "message": err.message})
            return _signed_response(state, status, payload)

        endpoint.__name__ = f"wxpay_sim_{method.lower()}_{re.sub(r'[^a-z]+', '_', template)}"
        router.add_api_route(template, endpoint, methods=[method], include_in_schema=False)

    api("POST", "/v3/pay/transactions/jsapi", _jsapi)
    api("GET", "/v3/pay/transactions/out-trade-no/{out_trade_no}", _query_by_out_trade_no)
    api("GET", "/v3/pay/transactions/id/{transaction_id}", _query_by_transaction_id)
    api("POST", "/v3/pay/transactions/out-trade-no/{out_trade_no}/close", _close)
    api("POST", "/v3/refund/domestic/refunds", _refund)
    api("GET", "/v3/refund/domestic/refunds/{out_refund_no}", _query_refund)
    api("GET", "/v3/bill/tradebill", _trade_bill)

    @router.get("/v3/billdownload/file", include_in_schema=False)
    async def bill_download(request: Request) -> Response:
        body = await request.body()
        signed_url, _ = _signed_url(request, "/v3/billdownload/file")
        try:
            _verify_request(state, request.method, signed_url, request.headers, body)
            with state.lock:
                file = state.bill_files.get(request.query_params.get("token", ""))
                if file is None or file.expires < state.clock():
                    raise SimError(400, "INVALID_REQUEST", "the download token is invalid or expired")
        except SimError as err:
            return _signed_response(state, err.status, {"code": err.code, "message": err.message})
        return Response(content=file.data, media_type="application/octet-stream",
                        headers={"Request-ID": uuid.uuid4().hex.upper()})

    @router.post("/_pay", include_in_schema=False)
    def sim_pay(payload: dict[str, Any]) -> JSONResponse:
        """Dev/test: the user pays ``prepay_id``; the notify is delivered before this answers."""
        try:
            notify = pay_order(state, str(payload.get("prepay_id", "")))
        except SimError as err:
            return JSONResponse({"code": err.code, "message": err.message}, status_code=err.status)
        order = state.order_by_prepay_id(str(payload["prepay_id"]))
        assert order is not None and notify is not None
        return JSONResponse({"out_trade_no": order.out_trade_no, "transaction_id": order.transaction_id,
                             "trade_state": order.trade_state, "notify_status": notify.status})

    @router.post("/_refund", include_in_schema=False)
    def sim_refund(payload: dict[str, Any]) -> JSONResponse:
        """Dev/test: WeChat finishes a refund (``status`` SUCCESS by default) and notifies."""
        out_refund_no = str(payload.get("out_refund_no", ""))
        try:
            notify = finish_refund(state, out_refund_no, status=str(payload.get("status", "SUCCESS")))
        except SimError as err:
            return JSONResponse({"code": err.code, "message": err.message}, status_code=err.status)
        refund = state.refunds[out_refund_no]
        return JSONResponse({"out_refund_no": out_refund_no, "status": refund.status,
                             "notify_status": None if notify is None else notify.status})

    return router


# --------------------------------------------------------------------------------------------------
# dev credentials


@dataclasses.dataclass(frozen=True)
class DevKeys:
    """Throwaway credentials shared by the dev client and the dev simulator (never real ones)."""

    merchant_private_key_pem: str
    merchant_public_key_pem: str
    merchant_serial_no: str
    platform_private_key_pem: str
    platform_public_key_pem: str
    platform_public_key_id: str
    apiv3_key: str

    @classmethod
    def generate(cls) -> DevKeys:
        m_priv, m_pub = crypto.generate_rsa_keypair()
        p_priv, p_pub = crypto.generate_rsa_keypair()
        return cls(
            merchant_private_key_pem=m_priv, merchant_public_key_pem=m_pub,
            merchant_serial_no=secrets.token_hex(20).upper(),
            platform_private_key_pem=p_priv, platform_public_key_pem=p_pub,
            platform_public_key_id="PUB_KEY_ID_" + _digits(32),
            apiv3_key=crypto.make_nonce(crypto.APIV3_KEY_LENGTH),
        )


def load_or_create_dev_keys(path: Path | str) -> DevKeys:
    """The dev keys stored at ``path`` (JSON), created once: every worker process of the dev server
    then signs and verifies with the same keys. Creation is atomic (``os.link`` of a complete temp
    file), so concurrent first starts agree on one set."""
    return DevKeys(**load_or_create_json(path, lambda: dataclasses.asdict(DevKeys.generate())))


def sim_state_for(keys: DevKeys, *, mchid: str, appid: str, deliver: Deliver = http_deliver,
                  store: MemoryStore | RedisStore | None = None) -> WxPaySimState:
    """A simulator state that accepts a client built from ``keys`` (same mchid/appid), its state in ``store``
    (this process's memory by default)."""
    return WxPaySimState(
        mchid=mchid, appid=appid, merchant_public_key_pem=keys.merchant_public_key_pem,
        merchant_serial_no=keys.merchant_serial_no, platform_private_key_pem=keys.platform_private_key_pem,
        platform_public_key_id=keys.platform_public_key_id, apiv3_key=keys.apiv3_key, deliver=deliver,
        store=store or MemoryStore(),
    )
