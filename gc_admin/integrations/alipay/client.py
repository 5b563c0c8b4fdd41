"""Alipay open-API client for single transfers to an Alipay account (certificate mode).

Sync httpx (like the WeChat Pay client); the gateway URL and the httpx transport are injectable, so
the same code runs against ``https://openapi.alipay.com/gateway.do``, the local simulator over
loopback (``http://<host>/sim/alipay/gateway.do``) or in-process in tests.

Rules applied here (the exact messages are in ``signing.py``):

- every request carries ``app_cert_sn`` and ``alipay_root_cert_sn`` and is signed RSA2 with the
  application private key; it is POSTed as a form to ``<gateway>?charset=utf-8``, the timestamp in
  Beijing time;
- an answer is believed only if its ``<method>_response`` (or ``error_response``) node verifies
  with the Alipay certificate's key over the node's exact text, and the answer's
  ``alipay_cert_sn`` (when given) is that certificate's SN. An unsigned, badly signed, malformed or
  non-200 answer, a timeout or a network error is never read as success *or* failure: the result
  is ``UNKNOWN``.

Outcomes are values, not exceptions: :meth:`AlipayClient.transfer` returns a
:class:`TransferResult`, :meth:`AlipayClient.query` a :class:`QueryResult`. Invalid arguments (a
caller's bug) raise ``ValueError`` / ``TypeError``. Nothing secret (keys, signatures, the payee's
account or name) is logged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import httpx

from gc_admin.core.clock import utcnow
from gc_admin.integrations.alipay import protocol as p
from gc_admin.integrations.alipay import signing
from gc_admin.integrations.http import new_client

log = logging.getLogger(__name__)
R = TypeVar("R")

DEFAULT_GATEWAY = "https://openapi.alipay.com/gateway.do"
USER_AGENT = "gc-admin-alipay/1 (python-httpx)"

# Local error codes (Alipay's own are "10000", "40004", ... with a sub_code).
TRANSPORT_ERROR = "TRANSPORT_ERROR"  # timeout, refused or broken connection: no answer
HTTP_ERROR = "HTTP_ERROR"  # an answer that is not HTTP 200
BAD_RESPONSE = "BAD_RESPONSE"  # not the JSON Alipay sends, or about another out_biz_no
BAD_SIGNATURE = "RESPONSE_SIGNATURE_INVALID"  # unsigned, wrongly signed, or by another certificate

TransferStatus = Literal["SUCCESS", "FAIL", "UNKNOWN"]
QueryStatus = Literal["SUCCESS", "FAIL", "DEALING", "REFUND", "NOT_FOUND", "UNKNOWN"]

# Codes of a signed answer after which nothing was transferred (the gateway refused the request).
_REFUSED_CODES = frozenset({"20001", p.CODE_MISSING, p.CODE_INVALID, "40006"})
_QUERY_STATUS = {"SUCCESS": "SUCCESS", "FAIL": "FAIL", "CLOSED": "FAIL", "REFUND": "REFUND",
                 "DEALING": "DEALING", "WAIT_PAY": "DEALING", "INIT": "DEALING"}


@dataclasses.dataclass(frozen=True)
class Payee:
    """Who receives a transfer: an Alipay login id (phone or e-mail) with the holder's real name
    (required by Alipay for ``ALIPAY_LOGON_ID``), or a ``2088…`` user id (name optional, checked
    when given). ``repr`` masks both, so a payee never lands whole in a log or a traceback."""

    identity: str
    name: str | None = None
    identity_type: str = "ALIPAY_LOGON_ID"

    @classmethod
    def login_id(cls, account: str, real_name: str) -> Payee:
        return cls(identity=account, name=real_name, identity_type="ALIPAY_LOGON_ID")

    @classmethod
    def user_id(cls, user_id: str, real_name: str | None = None) -> Payee:
        return cls(identity=user_id, name=real_name, identity_type="ALIPAY_USER_ID")

    def __post_init__(self) -> None:
        if self.identity_type not in p.IDENTITY_TYPES:
            raise ValueError(f"identity_type must be one of {p.IDENTITY_TYPES}")
        if not isinstance(self.identity, str) or not 1 <= len(self.identity.strip()) <= 100:
            raise ValueError("the payee identity must be 1-100 characters")
        if self.identity_type == "ALIPAY_LOGON_ID" and not (self.name and self.name.strip()):
            raise ValueError("a transfer to an Alipay login id needs the payee's real name")

    def __repr__(self) -> str:
        shown = self.identity[:3] + "****" + self.identity[-2:] if len(self.identity) > 6 else "****"
        return f"Payee({self.identity_type}, {shown}, name={'*' if self.name else None})"

    def as_biz(self) -> dict[str, str]:
        out = {"identity": self.identity.strip(), "identity_type": self.identity_type}
        if self.name:
            out["name"] = self.name.strip()
        return out


@dataclasses.dataclass(frozen=True)
class TransferResult:
    """What became of one ``alipay.fund.trans.uni.transfer`` call.

    - ``SUCCESS``: Alipay says (signed) the money was transferred; ``order_id`` /
      ``pay_fund_order_id`` name it.
    - ``FAIL``: Alipay says (signed) it did not and will not transfer under this ``out_biz_no``
      (``sub_code`` says why: ``PAYEE_NOT_EXIST``, ``PAYER_BALANCE_NOT_ENOUGH``, ...). Only now may
      the caller give up or pay again under a *new* ``out_biz_no``.
    - ``UNKNOWN``: no trustworthy answer (timeout, network error, ``SYSTEM_ERROR``, ``20000``,
      unsigned or badly signed answer, ``PAYMENT_INFO_INCONSISTENCY``, status ``DEALING``). The
      money may or may not have moved: :meth:`AlipayClient.query` before anything else, and resend
      only the *same* ``out_biz_no`` with the same amount and payee.

    ``error_code`` is Alipay's ``code`` (``"40004"``) or a local one (``TRANSPORT_ERROR``,
    ``HTTP_ERROR``, ``BAD_RESPONSE``, ``RESPONSE_SIGNATURE_INVALID``); ``message`` is Alipay's
    ``sub_msg``/``msg`` (Chinese) or an English description of the local problem.
    """

    status: TransferStatus
    out_biz_no: str
    order_id: str | None = None
    pay_fund_order_id: str | None = None
    error_code: str | None = None
    sub_code: str | None = None
    message: str | None = None
    alipay_status: str | None = None  # the raw ``status`` of the answer (SUCCESS, FAIL, DEALING, ...)
    trans_date: str | None = None  # ``yyyy-MM-dd HH:mm:ss`` Beijing time, when Alipay gives it


@dataclasses.dataclass(frozen=True)
class QueryResult:
    """What ``alipay.fund.trans.common.query`` says about an ``out_biz_no``.

    ``status``: ``SUCCESS`` (transferred; ``amount_fen`` is what was), ``FAIL`` (failed or closed:
    nothing transferred, a new ``out_biz_no`` may be used), ``REFUND`` (transferred, then returned),
    ``DEALING`` (still in progress: ask again later), ``NOT_FOUND`` (``ORDER_NOT_EXIST``: the
    transfer never arrived — resend the *same* ``out_biz_no``), ``UNKNOWN`` (no trustworthy answer:
    ask again later). Fields as in :class:`TransferResult`; ``fail_reason`` / ``fail_code`` are the
    order's own (``fail_reason``, ``error_code``) for a failed order.
    """

    status: QueryStatus
    out_biz_no: str
    order_id: str | None = None
    pay_fund_order_id: str | None = None
    amount_fen: int | None = None
    pay_date: str | None = None
    alipay_status: str | None = None
    error_code: str | None = None
    sub_code: str | None = None
    message: str | None = None
    fail_code: str | None = None
    fail_reason: str | None = None


@dataclasses.dataclass(frozen=True)
class _Answer:
    """A verified response node, or the local reason there is none (``node`` is then ``None``)."""

    node: dict[str, Any] | None
    problem: str | None = None
    detail: str | None = None


def _s(node: dict[str, Any], key: str) -> str | None:
    value = node.get(key)
    return value if isinstance(value, str) and value else None


def _check_out_biz_no(out_biz_no: str) -> None:
    if not isinstance(out_biz_no, str) or not p.OUT_BIZ_NO_RE.match(out_biz_no):
        raise ValueError("out_biz_no must be 1-64 characters of [0-9A-Za-z_-]")


class AlipayClient:
    """Transfers and transfer queries for one Alipay application in certificate mode.

    ``app_private_key_pem``: the application's RSA private key. ``app_cert_pem``:
    ``appCertPublicKey_<app_id>.crt``. ``alipay_cert_pem``: ``alipayCertPublicKey_RSA2.crt`` (its key
    verifies answers). ``alipay_root_cert_pem``: ``alipayRootCert.crt``. ``gateway``: the full
    ``gateway.do`` URL. ``timeout``: seconds for the whole exchange (connect: at most 5).
    """

    def __init__(self, *, app_id: str, app_private_key_pem: str | bytes, app_cert_pem: str | bytes,
                 alipay_cert_pem: str | bytes, alipay_root_cert_pem: str | bytes, gateway: str = DEFAULT_GATEWAY,
                 timeout: float = 15.0, transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], Any] = utcnow) -> None:
        if not app_id:
            raise ValueError("app_id is required")
        self.app_id = app_id
        self.gateway = gateway
        self._private_key = signing.load_private_key(app_private_key_pem)
        self.app_cert_sn = signing.cert_sn(app_cert_pem)
        self.alipay_cert_sn = signing.cert_sn(alipay_cert_pem)
        self.alipay_root_cert_sn = signing.root_cert_sn(alipay_root_cert_pem)
        self._alipay_key = signing.cert_public_key(alipay_cert_pem)
        self._clock = clock
        self._http = new_client(timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)), transport=transport,
                                  headers={"User-Agent": USER_AGENT})

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------------------------------
    # the exchange

    def request_params(self, method: str, biz: dict[str, Any]) -> dict[str, str]:
        """The signed form parameters of one call (public for tests and tooling)."""
        params = {
            "app_id": self.app_id, "method": method, "format": p.FORMAT, "charset": p.CHARSET,
            "sign_type": p.SIGN_TYPE, "timestamp": p.alipay_timestamp(self._clock()), "version": p.VERSION,
            "app_cert_sn": self.app_cert_sn, "alipay_root_cert_sn": self.alipay_root_cert_sn,
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        params["sign"] = signing.sign_params(self._private_key, params)
        return params

    def verify_answer(self, method: str, body: str) -> _Answer:
        """The verified node of an answer body, or why it cannot be believed."""
        try:
            node = signing.signed_node(body, (p.response_key(method), p.ERROR_RESPONSE_KEY))
        except signing.AlipayCryptoError as exc:
            return _Answer(None, BAD_RESPONSE, str(exc))
        if not node.sign:
            return _Answer(None, BAD_SIGNATURE, "the answer is not signed")
        if node.alipay_cert_sn is not None and node.alipay_cert_sn != self.alipay_cert_sn:
            return _Answer(None, BAD_SIGNATURE, "the answer is signed by another Alipay certificate "
                                                "(alipay_cert_sn differs: update alipayCertPublicKey_RSA2.crt)")
        if not signing.rsa_verify(self._alipay_key, node.text, node.sign):
            return _Answer(None, BAD_SIGNATURE, "the answer's signature does not verify")
        return _Answer(node.value)

    def _call(self, method: str, biz: dict[str, Any]) -> _Answer:
        params = self.request_params(method, biz)
        try:
            response = self._http.post(self.gateway, params={"charset": p.CHARSET}, data=params)
        except httpx.TransportError as exc:  # timeouts included: the request may have been executed
            log.warning("alipay %s: no answer (%s)", method, type(exc).__name__)
            return _Answer(None, TRANSPORT_ERROR, f"no answer from the gateway: {type(exc).__name__}")
        if response.status_code != 200:
            log.warning("alipay %s: HTTP %s", method, response.status_code)
            return _Answer(None, HTTP_ERROR, f"HTTP {response.status_code} from the gateway")
        try:
            text = response.content.decode("utf-8")
        except UnicodeDecodeError:
            return _Answer(None, BAD_RESPONSE, "the answer is not UTF-8")
        answer = self.verify_answer(method, text)
        if answer.node is None:
            log.warning("alipay %s: answer refused (%s: %s)", method, answer.problem, answer.detail)
        return answer

    # ------------------------------------------------------------------------------------------
    # the API

    def transfer(self, *, out_biz_no: str, amount_fen: int, payee: Payee, order_title: str,
                 remark: str | None = None) -> TransferResult:
        """Transfer ``amount_fen`` to ``payee`` (``alipay.fund.trans.uni.transfer``,
        ``TRANS_ACCOUNT_NO_PWD`` / ``DIRECT_TRANSFER``). ``out_biz_no`` is the idempotency key: the
        same one again with the same amount and payee never transfers twice. ``order_title`` is
        what the payee sees in the Alipay bill (转账业务的标题)."""
        _check_out_biz_no(out_biz_no)
        if not isinstance(payee, Payee):
            raise TypeError("payee must be a Payee")
        yuan = p.fen_to_yuan(amount_fen)
        if amount_fen <= 0:
            raise ValueError("amount_fen must be positive")
        if not order_title or len(order_title) > 128:
            raise ValueError("order_title must be 1-128 characters")
        biz: dict[str, Any] = {"out_biz_no": out_biz_no, "trans_amount": yuan, "product_code": p.PRODUCT_CODE,
                               "biz_scene": p.BIZ_SCENE, "order_title": order_title, "payee_info": payee.as_biz()}
        if remark:
            if len(remark) > 200:
                raise ValueError("remark must be at most 200 characters")
            biz["remark"] = remark
        answer = self._call(p.METHOD_TRANSFER, biz)
        result = self._transfer_result(out_biz_no, answer)
        log.info("alipay transfer %s of %s fen: %s %s", out_biz_no, amount_fen, result.status,
                 result.sub_code or result.error_code or "")
        return result

    @staticmethod
    def _transfer_result(out_biz_no: str, answer: _Answer) -> TransferResult:
        return _answered(answer, out_biz_no, TransferResult, _read_transfer)

    def query(self, *, out_biz_no: str) -> QueryResult:
        """What Alipay knows of ``out_biz_no`` (``alipay.fund.trans.common.query``)."""
        _check_out_biz_no(out_biz_no)
        answer = self._call(p.METHOD_QUERY, {"out_biz_no": out_biz_no, "product_code": p.PRODUCT_CODE,
                                             "biz_scene": p.BIZ_SCENE})
        result = self._query_result(out_biz_no, answer)
        log.info("alipay query %s: %s %s", out_biz_no, result.status, result.sub_code or result.error_code or "")
        return result

    @staticmethod
    def _query_result(out_biz_no: str, answer: _Answer) -> QueryResult:
        return _answered(answer, out_biz_no, QueryResult, _read_query)


def _answered(answer: _Answer, out_biz_no: str, result: Callable[..., R],
              read: Callable[[str, dict[str, Any], str | None, str | None, str | None], R]) -> R:
    """The result of a call: ``UNKNOWN`` with the local problem when the answer was refused (unreachable,
    unsigned, badly signed, not JSON...), else what ``read`` makes of the verified node, its ``code``,
    ``sub_code`` and message (``sub_msg`` or ``msg``)."""
    node = answer.node
    if node is None:
        return result("UNKNOWN", out_biz_no, error_code=answer.problem, message=answer.detail)
    return read(out_biz_no, node, _s(node, "code"), _s(node, "sub_code"), _s(node, "sub_msg") or _s(node, "msg"))


def _read_transfer(out_biz_no: str, node: dict[str, Any], code: str | None, sub_code: str | None,
                   message: str | None) -> TransferResult:
    if code == p.CODE_SUCCESS:
        if node.get("out_biz_no") != out_biz_no:
            return TransferResult("UNKNOWN", out_biz_no, error_code=BAD_RESPONSE,
                                  message="the answer is about another out_biz_no")
        raw = _s(node, "status")
        status: TransferStatus = {"SUCCESS": "SUCCESS", "FAIL": "FAIL", "REFUND": "FAIL"}.get(raw or "", "UNKNOWN")
        return TransferResult(status, out_biz_no, order_id=_s(node, "order_id"),
                              pay_fund_order_id=_s(node, "pay_fund_order_id"), error_code=code,
                              sub_code=sub_code, message=message, alipay_status=raw,
                              trans_date=_s(node, "trans_date"))
    if code == p.CODE_BUSINESS and sub_code not in p.UNCERTAIN_SUB_CODES and sub_code:
        return TransferResult("FAIL", out_biz_no, error_code=code, sub_code=sub_code, message=message)
    if code in _REFUSED_CODES:
        return TransferResult("FAIL", out_biz_no, error_code=code, sub_code=sub_code, message=message)
    return TransferResult("UNKNOWN", out_biz_no, error_code=code, sub_code=sub_code, message=message)


def _read_query(out_biz_no: str, node: dict[str, Any], code: str | None, sub_code: str | None,
                message: str | None) -> QueryResult:
    if code == p.CODE_BUSINESS and sub_code == p.ORDER_NOT_EXIST:
        return QueryResult("NOT_FOUND", out_biz_no, error_code=code, sub_code=sub_code, message=message)
    if code != p.CODE_SUCCESS:
        return QueryResult("UNKNOWN", out_biz_no, error_code=code, sub_code=sub_code, message=message)
    if node.get("out_biz_no", out_biz_no) != out_biz_no:
        return QueryResult("UNKNOWN", out_biz_no, error_code=BAD_RESPONSE,
                           message="the answer is about another out_biz_no")
    raw = _s(node, "status")
    amount: int | None = None
    if (trans_amount := _s(node, "trans_amount")) is not None:
        try:
            amount = p.yuan_to_fen(trans_amount)
        except ValueError:
            return QueryResult("UNKNOWN", out_biz_no, error_code=BAD_RESPONSE,
                               message="the answer's trans_amount is not a yuan amount")
    status: QueryStatus = _QUERY_STATUS.get(raw or "", "UNKNOWN")  # type: ignore[assignment]
    return QueryResult(status, out_biz_no, order_id=_s(node, "order_id"),
                       pay_fund_order_id=_s(node, "pay_fund_order_id"), amount_fen=amount,
                       pay_date=_s(node, "pay_date"), alipay_status=raw, error_code=code, sub_code=sub_code,
                       message=message, fail_code=_s(node, "error_code"), fail_reason=_s(node, "fail_reason"))
