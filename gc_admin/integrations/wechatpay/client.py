"""WeChat Pay API v3 client for a direct merchant (JSAPI / mini-program), in public-key mode.

Sync httpx like the SMS senders; the base URL and the httpx transport are injectable, so the same
code runs against ``https://api.mch.weixin.qq.com``, the local simulator over loopback
(``http://<host>/sim/wechatpay``) or the simulator in-process in tests.

Protocol rules applied here (see ``crypto.py`` for the exact messages):

- every request is signed with the merchant private key (``Authorization`` header) over the
  path *below the base URL* plus its query, exactly as it goes on the wire, and carries
  ``Wechatpay-Serial: PUB_KEY_ID_…`` (public-key mode);
- every 2xx answer is trusted only after its ``Wechatpay-Signature`` verifies with the WeChat Pay
  public key, its ``Wechatpay-Serial`` is that key's id and its ``Wechatpay-Timestamp`` is within
  ``max_skew`` (the bill file download is the documented exception: it is checked by its SHA1);
- a non-2xx answer becomes :class:`WxPayError` with WeChat's ``code`` / ``message``;
- notifies (:meth:`WxPayClient.parse_notify`) are verified the same way, rejected when stale,
  and their ``resource`` is decrypted with the APIv3 key (AES-256-GCM).

Money is ``int`` fen everywhere. Invalid arguments (a caller's bug) raise ``ValueError`` /
``TypeError``; everything the network or WeChat does wrong raises :class:`WxPayError`.
Nothing secret (keys, signatures, Authorization, bill tokens) is ever logged.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import json
import logging
import re
import zlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.integrations.wechatpay import crypto
from gc_admin.integrations.http import new_client

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"
MAX_SKEW_SECONDS = 300
USER_AGENT = "gc-admin-wxpay/1 (python-httpx)"

OUT_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")  # out_trade_no
OUT_REFUND_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")  # out_refund_no
BILL_TYPES = ("ALL", "SUCCESS", "REFUND")

# Local error codes (WeChat's own codes come from the error body, e.g. PARAM_ERROR, SIGN_ERROR).
TRANSPORT_ERROR = "TRANSPORT_ERROR"
BAD_RESPONSE = "BAD_RESPONSE"
BAD_SIGNATURE = "RESPONSE_SIGNATURE_INVALID"
HASH_MISMATCH = "BILL_HASH_MISMATCH"
NOTIFY_REJECTED = "NOTIFY_REJECTED"


class WxPayError(Exception):
    """WeChat Pay refused, failed or answered something that cannot be trusted (English, for logs).

    ``status`` is the HTTP status (``None`` if there was no answer), ``code`` WeChat's error code
    (``PARAM_ERROR``, ``NOT_ENOUGH``, …) or one of this module's local codes, ``wx_message``
    WeChat's message, ``request_id`` its ``Request-ID`` header. ``verified`` tells whether an
    error body carried a valid WeChat Pay signature.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str = "", wx_message: str = "",
                 request_id: str = "", verified: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.wx_message = wx_message
        self.request_id = request_id
        self.verified = verified


class WxPayNotifyError(WxPayError):
    """A notify was rejected: bad or missing signature, unknown serial, stale, undecryptable, malformed."""


def _dumps(obj: Any) -> bytes:
    """The exact body bytes sent and signed (compact UTF-8 JSON)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _fen(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be int fen, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum} fen, got {value}")
    return value


def rfc3339(value: dt.datetime) -> str:
    """``2026-01-01T10:00:00+08:00``: the time format WeChat Pay expects (Asia/Shanghai, seconds)."""
    if value.tzinfo is None:
        raise ValueError("time_expire must be timezone-aware")
    return value.astimezone(SHANGHAI).isoformat(timespec="seconds")


class _Headers:
    """Case-insensitive read access to any headers mapping (dict, Starlette, httpx)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._h = {str(k).lower(): str(v) for k, v in headers.items()}

    def get(self, name: str) -> str:
        return self._h.get(name.lower(), "")


class WxPayClient:
    """WeChat Pay v3 for one direct merchant and one mini-program appid (public-key mode)."""

    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        merchant_private_key_pem: str | bytes,
        merchant_serial_no: str,
        apiv3_key: str,
        platform_public_key_pem: str | bytes,
        platform_public_key_id: str,
        notify_url: str,
        refund_notify_url: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        max_skew: int = MAX_SKEW_SECONDS,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        if len(apiv3_key.encode("utf-8")) != crypto.APIV3_KEY_LENGTH:
            raise ValueError("the APIv3 key must be 32 bytes")
        if not platform_public_key_id:
            raise ValueError("platform_public_key_id (PUB_KEY_ID_...) is required")
        self.mchid = mchid
        self.appid = appid
        self._private_key = crypto.load_private_key(merchant_private_key_pem)
        self._serial_no = merchant_serial_no
        self._apiv3_key = apiv3_key
        self._platform_key = crypto.load_public_key(platform_public_key_pem)
        self._platform_key_id = platform_public_key_id
        self.notify_url = notify_url
        self.refund_notify_url = refund_notify_url
        self._base = httpx.URL(base_url.rstrip("/"))
        # The signed URL is the path below the base URL: "" for the real host, "/sim/wechatpay" locally.
        self._base_path = self._base.raw_path.decode("ascii").split("?")[0].rstrip("/")
        self._max_skew = max_skew
        self._clock = clock
        self._http = new_client(transport=transport, timeout=timeout, follow_redirects=False)

    # ------------------------------------------------------------------------------------------
    # plumbing

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WxPayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now(self) -> int:
        return int(self._clock().timestamp())

    def build_request(self, method: str, path: str, *, body: Any = None,
                      url: httpx.URL | None = None) -> httpx.Request:
        """A signed request for ``path`` (below the base URL, with its query) or an absolute ``url``."""
        target = url if url is not None else httpx.URL(str(self._base) + path)
        raw_path = target.raw_path.decode("ascii")
        signed_url = raw_path[len(self._base_path):] if (
            self._base_path and raw_path.startswith(self._base_path + "/")) else raw_path
        content = b"" if body is None else _dumps(body)
        authorization = crypto.sign_request(
            self._private_key, method=method, url=signed_url, body=content, mchid=self.mchid,
            serial_no=self._serial_no, timestamp=self._now(), nonce_str=crypto.make_nonce(32))
        headers = {
            "Authorization": authorization,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "Wechatpay-Serial": self._platform_key_id,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        return httpx.Request(method, target, headers=headers, content=content)

    def _send(self, request: httpx.Request, *, verify: bool = True) -> httpx.Response:
        what = f"{request.method} {request.url.path}"  # no query: the bill token stays out of logs
        try:
            response = self._http.send(request)
        except httpx.HTTPError as exc:
            log.warning("wxpay %s: transport error %s", what, type(exc).__name__)
            raise WxPayError(f"wxpay {what}: transport error: {type(exc).__name__}", code=TRANSPORT_ERROR) from None
        request_id = response.headers.get("Request-ID", "")
        if response.status_code // 100 != 2:
            raise self._error(what, response)
        if verify:
            try:
                self.verify_signature(response.headers, response.content)
            except WxPayNotifyError as exc:
                log.warning("wxpay %s: HTTP %s answer failed verification (%s), request_id=%s",
                            what, response.status_code, exc, request_id)
                raise WxPayError(f"wxpay {what}: answer not trusted: {exc}", status=response.status_code,
                                 code=BAD_SIGNATURE, request_id=request_id) from None
        log.info("wxpay %s -> HTTP %s, request_id=%s", what, response.status_code, request_id)
        return response

    def _error(self, what: str, response: httpx.Response) -> WxPayError:
        request_id = response.headers.get("Request-ID", "")
        code, message = "", ""
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            code, message = str(data.get("code", "")), str(data.get("message", ""))
        try:
            self.verify_signature(response.headers, response.content)
            verified = True
        except WxPayNotifyError:
            verified = False
        log.warning("wxpay %s -> HTTP %s code=%s request_id=%s", what, response.status_code, code or "-", request_id)
        return WxPayError(f"wxpay {what} failed: HTTP {response.status_code}, code={code or '-'}, message={message}",
                          status=response.status_code, code=code or BAD_RESPONSE, wx_message=message,
                          request_id=request_id, verified=verified)

    @staticmethod
    def _json(response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise WxPayError(f"wxpay {what}: HTTP {response.status_code} without a JSON object",
                             status=response.status_code, code=BAD_RESPONSE,
                             request_id=response.headers.get("Request-ID", ""))
        return data

    def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self._send(self.build_request(method, path, body=body))

    # ------------------------------------------------------------------------------------------
    # signatures

    def verify_signature(self, headers: Mapping[str, str], body: bytes | str, *, now: int | None = None) -> None:
        """Check a WeChat Pay signature (answer or notify); raise :class:`WxPayNotifyError` if it
        is missing, from another key, stale (more than ``max_skew`` seconds off) or invalid."""
        h = _Headers(headers)
        signature, timestamp, nonce = h.get("Wechatpay-Signature"), h.get("Wechatpay-Timestamp"), h.get("Wechatpay-Nonce")
        serial = h.get("Wechatpay-Serial")
        if not (signature and timestamp and nonce and serial):
            raise WxPayNotifyError("missing Wechatpay-Signature/Timestamp/Nonce/Serial headers", code=NOTIFY_REJECTED)
        sig_type = h.get("Wechatpay-Signature-Type")
        if sig_type and sig_type != crypto.SIGNATURE_TYPE:
            raise WxPayNotifyError(f"unsupported Wechatpay-Signature-Type {sig_type!r}", code=NOTIFY_REJECTED)
        if serial != self._platform_key_id:
            raise WxPayNotifyError(f"unknown Wechatpay-Serial {serial!r}", code=NOTIFY_REJECTED)
        if not (timestamp.isascii() and timestamp.isdigit()):
            raise WxPayNotifyError("Wechatpay-Timestamp is not a UNIX time", code=NOTIFY_REJECTED)
        skew = abs((self._now() if now is None else now) - int(timestamp))
        if skew > self._max_skew:
            raise WxPayNotifyError(f"Wechatpay-Timestamp is {skew} s off (limit {self._max_skew} s)",
                                   code=NOTIFY_REJECTED)
        try:
            text = body.decode("utf-8") if isinstance(body, bytes) else body
        except UnicodeDecodeError:
            raise WxPayNotifyError("body is not UTF-8", code=NOTIFY_REJECTED) from None
        if not crypto.rsa_verify(self._platform_key, crypto.response_message(timestamp, nonce, text), signature):
            raise WxPayNotifyError("Wechatpay-Signature does not verify", code=NOTIFY_REJECTED)

    # ------------------------------------------------------------------------------------------
    # payments

    def jsapi_prepay(self, *, out_trade_no: str, description: str, amount_fen: int, payer_openid: str,
                     time_expire: dt.datetime | None = None, attach: str | None = None) -> str:
        """Create a JSAPI / mini-program order; returns its ``prepay_id`` (valid 2 hours).

        Calling again with the same ``out_trade_no`` and the same parameters returns the same
        order; different parameters are refused by WeChat (``WxPayError``)."""
        if not OUT_NO_RE.match(out_trade_no):
            raise ValueError("out_trade_no must be 6-32 characters of [0-9A-Za-z_-|*]")
        if not 1 <= len(description) <= 127:
            raise ValueError("description must be 1-127 characters")
        if not payer_openid:
            raise ValueError("payer_openid is required")
        if not self.notify_url:
            raise ValueError("notify_url is not configured")
        body: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "description": description,
            "out_trade_no": out_trade_no,
            "notify_url": self.notify_url,
            "amount": {"total": _fen("amount_fen", amount_fen, minimum=1), "currency": "CNY"},
            "payer": {"openid": payer_openid},
        }
        if time_expire is not None:
            body["time_expire"] = rfc3339(time_expire)
        if attach:
            if len(attach) > 128:
                raise ValueError("attach must be at most 128 characters")
            body["attach"] = attach
        data = self._json(self._call("POST", "/v3/pay/transactions/jsapi", body), "jsapi prepay")
        prepay_id = data.get("prepay_id")
        if not isinstance(prepay_id, str) or not prepay_id:
            raise WxPayError("wxpay jsapi prepay: no prepay_id in the answer", status=200, code=BAD_RESPONSE)
        return prepay_id

    def mini_program_pay_params(self, prepay_id: str, *, timestamp: str | None = None,
                                nonce_str: str | None = None) -> dict[str, str]:
        """The parameters of ``wx.requestPayment`` (``appId`` is signed but not passed to it)."""
        if not prepay_id:
            raise ValueError("prepay_id is required")
        ts = timestamp or str(self._now())
        nonce = nonce_str or crypto.make_nonce(32)
        package = f"prepay_id={prepay_id}"
        return {
            "appId": self.appid,
            "timeStamp": ts,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": crypto.rsa_sign(self._private_key, crypto.pay_sign_message(self.appid, ts, nonce, package)),
        }

    def query_order(self, out_trade_no: str) -> dict[str, Any]:
        """The transaction object (``trade_state``, ``amount.total``, ``transaction_id``, …)."""
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}?mchid={quote(self.mchid, safe='')}"
        return self._json(self._call("GET", path), "query order")

    def close_order(self, out_trade_no: str) -> None:
        """Close an unpaid order (WeChat answers 204; a paid order is refused with ``ORDERPAID``)."""
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}/close"
        response = self._call("POST", path, {"mchid": self.mchid})
        if response.status_code != 204:
            log.info("wxpay close order: HTTP %s instead of 204", response.status_code)

    # ------------------------------------------------------------------------------------------
    # refunds

    def refund(self, *, out_refund_no: str, out_trade_no: str, refund_fen: int, total_fen: int,
               reason: str | None = None) -> dict[str, Any]:
        """Request a refund. ``out_refund_no`` is the idempotency key: retrying it with the same
        amounts returns the same refund, never a second one. Returns WeChat's refund object
        (``status`` is usually ``PROCESSING``; the result comes by notify or :meth:`query_refund`)."""
        if not OUT_REFUND_NO_RE.match(out_refund_no):
            raise ValueError("out_refund_no must be 1-64 characters of [0-9A-Za-z_-|*@]")
        if not OUT_NO_RE.match(out_trade_no):
            raise ValueError("out_trade_no must be 6-32 characters of [0-9A-Za-z_-|*]")
        refund = _fen("refund_fen", refund_fen, minimum=1)
        total = _fen("total_fen", total_fen, minimum=1)
        if refund > total:
            raise ValueError("refund_fen exceeds total_fen")
        body: dict[str, Any] = {
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "amount": {"refund": refund, "total": total, "currency": "CNY"},
        }
        if reason:
            if len(reason) > 80:
                raise ValueError("reason must be at most 80 characters")
            body["reason"] = reason
        if self.refund_notify_url:
            body["notify_url"] = self.refund_notify_url
        data = self._json(self._call("POST", "/v3/refund/domestic/refunds", body), "refund")
        if data.get("out_refund_no") != out_refund_no:
            raise WxPayError("wxpay refund: the answer is for another out_refund_no", status=200, code=BAD_RESPONSE)
        return data

    def query_refund(self, out_refund_no: str) -> dict[str, Any]:
        """WeChat's refund object for ``out_refund_no`` (``status``: SUCCESS, PROCESSING, ABNORMAL, CLOSED)."""
        path = f"/v3/refund/domestic/refunds/{quote(out_refund_no, safe='')}"
        return self._json(self._call("GET", path), "query refund")

    # ------------------------------------------------------------------------------------------
    # bills

    def trade_bill(self, bill_date: dt.date | str, *, bill_type: str = "ALL", gzip_file: bool = True) -> bytes:
        """The trade bill of ``bill_date`` (Asia/Shanghai) as CSV bytes (see ``billing.py``).

        Two signed GETs: ``/v3/bill/tradebill`` gives ``download_url`` and the SHA1 of the
        uncompressed file; the file itself is unsigned, so its SHA1 is checked (``WxPayError``
        with code ``BILL_HASH_MISMATCH`` otherwise) after gunzipping a GZIP file."""
        day = bill_date.isoformat() if isinstance(bill_date, dt.date) else str(bill_date)
        try:
            dt.date.fromisoformat(day)
        except ValueError:
            raise ValueError("bill_date must be a date or YYYY-MM-DD") from None
        if len(day) != 10:
            raise ValueError("bill_date must be YYYY-MM-DD")
        if bill_type not in BILL_TYPES:
            raise ValueError(f"bill_type must be one of {BILL_TYPES}")
        path = f"/v3/bill/tradebill?bill_date={day}&bill_type={bill_type}"
        if gzip_file:
            path += "&tar_type=GZIP"
        info = self._json(self._call("GET", path), "trade bill")
        download_url, hash_type, hash_value = info.get("download_url"), info.get("hash_type"), info.get("hash_value")
        if not (isinstance(download_url, str) and isinstance(hash_value, str) and hash_type == "SHA1"):
            raise WxPayError("wxpay trade bill: the answer lacks download_url / SHA1 hash", status=200,
                             code=BAD_RESPONSE)
        data = self.download_bill(download_url)
        if gzip_file:
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error):
                raise WxPayError("wxpay trade bill: the GZIP file is corrupt", code=HASH_MISMATCH) from None
        if not hmac.compare_digest(hashlib.sha1(data).hexdigest(), hash_value.lower()):
            log.warning("wxpay trade bill %s: SHA1 mismatch, file discarded", day)
            raise WxPayError(f"wxpay trade bill {day}: SHA1 of the downloaded file does not match",
                             code=HASH_MISMATCH)
        return data

    def download_bill(self, download_url: str) -> bytes:
        """GET a bill ``download_url`` (signed like any request; the answer is the raw, unsigned file).

        Only URLs on the configured API origin (or a ``*.mch.weixin.qq.com`` HTTPS host) are
        fetched, so a forged URL cannot make the client send signed requests elsewhere."""
        url = httpx.URL(download_url)
        same_origin = (url.scheme, url.host, url.port) == (self._base.scheme, self._base.host, self._base.port)
        wechat_host = url.scheme == "https" and (url.host or "").endswith(".mch.weixin.qq.com")
        if not (same_origin or wechat_host):
            raise WxPayError("wxpay bill download_url is not on the WeChat Pay API origin", code=BAD_RESPONSE)
        response = self._send(self.build_request("GET", "", url=url), verify=False)
        return response.content

    # ------------------------------------------------------------------------------------------
    # notifies

    def parse_notify(self, headers: Mapping[str, str], body: bytes | str, *,
                     now: dt.datetime | int | None = None) -> dict[str, Any]:
        """Verify and decrypt a notify POSTed by WeChat Pay.

        Returns ``{"id", "event_type", "create_time", "resource_type", "summary", "original_type",
        "resource": <decrypted JSON object>}``. Raises :class:`WxPayNotifyError` when the signature
        is missing or invalid, ``Wechatpay-Serial`` is not the configured public key id, the
        timestamp is more than ``max_skew`` seconds from ``now``, the resource cannot be
        decrypted with the APIv3 key, or the result is malformed. Amount and order checks are the
        caller's (compare ``resource.amount.total`` with the order)."""
        now_ts = int(now.timestamp()) if isinstance(now, dt.datetime) else now
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self.verify_signature(headers, raw, now=now_ts)
        try:
            envelope = json.loads(raw)
        except ValueError:
            raise WxPayNotifyError("notify body is not JSON", code=NOTIFY_REJECTED) from None
        if not isinstance(envelope, dict):
            raise WxPayNotifyError("notify body is not a JSON object", code=NOTIFY_REJECTED)
        resource = envelope.get("resource")
        if envelope.get("resource_type") != "encrypt-resource" or not isinstance(resource, dict):
            raise WxPayNotifyError("notify has no encrypted resource", code=NOTIFY_REJECTED)
        if resource.get("algorithm") != crypto.AEAD_ALGORITHM:
            raise WxPayNotifyError(f"unsupported resource algorithm {resource.get('algorithm')!r}",
                                   code=NOTIFY_REJECTED)
        nonce, ciphertext = resource.get("nonce"), resource.get("ciphertext")
        if not (isinstance(nonce, str) and nonce and isinstance(ciphertext, str) and ciphertext):
            raise WxPayNotifyError("notify resource lacks nonce/ciphertext", code=NOTIFY_REJECTED)
        try:
            plaintext = crypto.aes_gcm_decrypt(self._apiv3_key, nonce=nonce, ciphertext=ciphertext,
                                               associated_data=str(resource.get("associated_data") or ""))
            decrypted = json.loads(plaintext)
        except crypto.WxPayCryptoError as exc:
            raise WxPayNotifyError(f"notify resource: {exc}", code=NOTIFY_REJECTED) from None
        except ValueError:
            raise WxPayNotifyError("notify resource plaintext is not JSON", code=NOTIFY_REJECTED) from None
        if not isinstance(decrypted, dict):
            raise WxPayNotifyError("notify resource is not a JSON object", code=NOTIFY_REJECTED)
        if decrypted.get("mchid", self.mchid) != self.mchid:
            raise WxPayNotifyError("notify resource is for another mchid", code=NOTIFY_REJECTED)
        if decrypted.get("appid", self.appid) != self.appid:
            raise WxPayNotifyError("notify resource is for another appid", code=NOTIFY_REJECTED)
        event_id, event_type = envelope.get("id"), envelope.get("event_type")
        if not (isinstance(event_id, str) and isinstance(event_type, str) and event_id and event_type):
            raise WxPayNotifyError("notify lacks id / event_type", code=NOTIFY_REJECTED)
        return {
            "id": event_id,
            "event_type": event_type,
            "create_time": envelope.get("create_time"),
            "resource_type": envelope.get("resource_type"),
            "summary": envelope.get("summary"),
            "original_type": resource.get("original_type"),
            "resource": decrypted,
        }


# Acknowledgements for the notify route: WeChat Pay treats 200/204 as received, anything else
# as a failure to retry (15s, 15s, 30s, 3m, … for about 24 h).
NOTIFY_ACK_FAIL = {"code": "FAIL", "message": "failed"}
