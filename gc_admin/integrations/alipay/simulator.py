"""A local stand-in for the Alipay open-API gateway (dev/test only; mounted under ``/sim/alipay``).

``build_alipay_simulator(state)`` returns a router whose ``/gateway.do`` speaks the real protocol
to :class:`~gc_admin.integrations.alipay.client.AlipayClient` (set its gateway to
``http://<host>/sim/alipay/gateway.do``):

- request parameters are read from the query string and the form body together, as Alipay does;
  the gateway checks ``charset``, ``method``, ``app_id``, ``sign_type=RSA2``, ``timestamp``
  (Beijing time, within ``max_skew_seconds``), ``version``, ``format``, the certificate SNs
  (``app_cert_sn`` = the registered application certificate's, ``alipay_root_cert_sn`` = the root
  file's) and the RSA2 ``sign`` with the application certificate's key; a refusal is
  ``40001``/``40002`` with an ``isv.*`` sub_code;
- every answer is signed with the Alipay private key over the exact text of its node and names
  ``alipay_cert_sn``. An ``error_response`` to an unknown ``app_id`` is unsigned (there is no
  application to sign for);
- ``alipay.fund.trans.uni.transfer``: validates the biz_content, is idempotent on ``out_biz_no``
  (the same parameters again answer the same order, never a second transfer; a different amount
  or payee under a used ``out_biz_no`` is ``40004 PAYMENT_INFO_INCONSISTENCY``), enforces the
  single-transfer range 0.10-50,000.00 yuan (``EXCEED_LIMIT_SM_MIN_AMOUNT`` /
  ``EXCEED_LIMIT_SM_AMOUNT``) and the payee identity's shape (``PAYEE_NOT_EXIST``); a transfer to
  an Alipay account succeeds synchronously (``status: SUCCESS``);
- ``alipay.fund.trans.common.query``: the order by ``out_biz_no`` or ``order_id`` with
  ``status``, ``trans_amount`` (yuan), ``pay_date``; ``40004 ORDER_NOT_EXIST`` when none.

State lives in the database (``sim_alipay_order``, ``sim_alipay_fault``), so all workers of a dev
server and all threads of a test share one Alipay; the unique ``(app_id, out_biz_no)`` key makes
concurrent identical requests execute once.

Test/dev helpers (not Alipay's, unsigned): ``POST /_fault {"kind", "method"?, "delay_ms"?}``
queues a failure for the next call of that method (default: the transfer); each is consumed
exactly once. Kinds (:data:`FAULT_KINDS`):

- ``timeout``: the transfer is executed, the answer withheld ``delay_ms`` (the client times out:
  the classic "paid but the answer was lost");
- ``timeout_before``: the request is dropped unexecuted after ``delay_ms``;
- ``system_error``: ``40004 SYSTEM_ERROR``, not executed; ``system_error_after``: executed, yet
  ``SYSTEM_ERROR`` is answered; ``unavailable``: ``20000 isp.unknow-error``, not executed;
- ``payee_not_exist``, ``balance_not_enough``, ``paycard_unable``, ``exceed_limit``: the
  business failures ``PAYEE_NOT_EXIST``, ``PAYER_BALANCE_NOT_ENOUGH``, ``PAYCARD_UNABLE_PAYMENT``,
  ``EXCEED_LIMIT_SM_AMOUNT`` (transfer only; nothing executed);
- ``bad_signature`` / ``unsigned``: executed, the answer's ``sign`` wrong / missing.

``GET /_transfers?out_biz_no=`` counts the transfers executed under an ``out_biz_no`` (0 or 1 —
more would be the double payment this all exists to prevent). The same as functions:
:func:`inject_fault`, :func:`transfers_for`.

Unverified against the real service (taken from public docs and SDK sources where possible):
failed business checks leave no order, so a later query answers ``ORDER_NOT_EXIST``; the exact
``isv.*`` sub_codes for certificate-SN mismatches (``isv.app-cert-sn-mismatch``,
``isv.alipay-root-cert-sn-mismatch`` here); whether Alipay puts gateway refusals in
``error_response`` or in the method's node (here: the method's node when the method is known); the
timestamp window (15 minutes here); messages (Chinese here, like Alipay's ``sub_msg``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from gc_admin.core.clock import SHANGHAI, as_utc, utcnow
from gc_admin.db import session_scope
from gc_admin.integrations.alipay import protocol as p
from gc_admin.integrations.alipay import signing
from gc_admin.integrations.alipay.models import SimAlipayFault, SimAlipayOrder

log = logging.getLogger(__name__)

MAX_SKEW_SECONDS = 15 * 60
DEFAULT_TIMEOUT_DELAY_MS = 3000

_BUSINESS_FAULTS = {
    "payee_not_exist": (p.PAYEE_NOT_EXIST, "收款账号不存在"),
    "balance_not_enough": (p.PAYER_BALANCE_NOT_ENOUGH, "付款方余额不足"),
    "paycard_unable": (p.PAYCARD_UNABLE_PAYMENT, "付款账户余额支付功能关闭"),
    "exceed_limit": (p.EXCEED_LIMIT_SM_AMOUNT, "单笔额度超限"),
}
FAULT_KINDS = frozenset({"timeout", "timeout_before", "system_error", "system_error_after", "unavailable",
                         "bad_signature", "unsigned", *_BUSINESS_FAULTS})
_EXECUTED_FAULTS = frozenset({"timeout", "system_error_after", "bad_signature", "unsigned"})
_MSG = {p.CODE_SUCCESS: "Success", p.CODE_UNAVAILABLE: "Service Currently Unavailable",
        p.CODE_MISSING: "Missing Required Arguments", p.CODE_INVALID: "Invalid Arguments",
        p.CODE_BUSINESS: "Business Failed"}
_PHONE_RE = re.compile(r"^1[3-9][0-9]{9}$")
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,100}\.[A-Za-z]{2,}$")
_USER_ID_RE = re.compile(r"^2088[0-9]{12}$")


@dataclasses.dataclass
class AlipaySimState:
    """What the simulated Alipay knows of one application, and how it signs.

    ``app_cert_pem`` is the application certificate Alipay issued (its key verifies requests, its
    SN must be the requests' ``app_cert_sn``); ``alipay_private_key_pem`` / ``alipay_cert_pem`` sign
    answers; ``alipay_root_cert_pem`` gives the expected ``alipay_root_cert_sn``. ``database_url``
    ``None``: the app's configured database. ``clock`` is the simulator's "now" (tests move it)."""

    app_id: str
    app_cert_pem: str
    alipay_private_key_pem: str
    alipay_cert_pem: str
    alipay_root_cert_pem: str
    database_url: str | None = None
    clock: Callable[[], dt.datetime] = utcnow
    max_skew_seconds: int = MAX_SKEW_SECONDS

    def __post_init__(self) -> None:
        self._app_key = signing.cert_public_key(self.app_cert_pem)
        self.app_cert_sn = signing.cert_sn(self.app_cert_pem)
        self._alipay_key = signing.load_private_key(self.alipay_private_key_pem)
        self.alipay_cert_sn = signing.cert_sn(self.alipay_cert_pem)
        self.alipay_root_cert_sn = signing.root_cert_sn(self.alipay_root_cert_pem)


class SimError(Exception):
    """An Alipay refusal: ``code`` (40001, 40002, 40004, 20000), ``sub_code``, Chinese ``sub_msg``."""

    def __init__(self, code: str, sub_code: str, sub_msg: str) -> None:
        super().__init__(f"{code} {sub_code}")
        self.code, self.sub_code, self.sub_msg = code, sub_code, sub_msg

    def node(self) -> dict[str, Any]:
        return {"code": self.code, "msg": _MSG.get(self.code, "Business Failed"), "sub_code": self.sub_code,
                "sub_msg": self.sub_msg}


def _digits(n: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(n))


# --------------------------------------------------------------------------------------------------
# state helpers (also used by tests)


def inject_fault(state: AlipaySimState, kind: str, *, method: str = p.METHOD_TRANSFER,
                 delay_ms: int = DEFAULT_TIMEOUT_DELAY_MS) -> None:
    """Queue ``kind`` for the next call of ``method`` (see the module docstring)."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}")
    if method not in (p.METHOD_TRANSFER, p.METHOD_QUERY):
        raise ValueError(f"unknown method {method!r}")
    if method == p.METHOD_QUERY and kind in {*_BUSINESS_FAULTS, "system_error_after", "timeout_before"}:
        raise ValueError(f"{kind} applies to the transfer only")
    if not 0 <= delay_ms <= 60_000:
        raise ValueError("delay_ms must be 0-60000")
    with session_scope(state.database_url) as s:
        s.add(SimAlipayFault(app_id=state.app_id, method=method, kind=kind, delay_ms=delay_ms,
                             created_at=state.clock()))


def _take_fault(state: AlipaySimState, method: str) -> tuple[str, int] | None:
    """The oldest unused fault for ``method``, marked used (a conditional update: one taker only)."""
    with session_scope(state.database_url) as s:
        while True:
            row = s.exec(select(SimAlipayFault).where(SimAlipayFault.app_id == state.app_id,
                                                      SimAlipayFault.method == method,
                                                      col(SimAlipayFault.used_at).is_(None))
                         .order_by(col(SimAlipayFault.id)).limit(1)).first()
            if row is None:
                return None
            taken = s.execute(update(SimAlipayFault).where(col(SimAlipayFault.id) == row.id,
                                                           col(SimAlipayFault.used_at).is_(None))
                              .values(used_at=state.clock()))
            if taken.rowcount == 1:
                return row.kind, row.delay_ms


def transfers_for(state: AlipaySimState, out_biz_no: str) -> list[SimAlipayOrder]:
    """The transfers executed under ``out_biz_no`` (the unique key allows at most one)."""
    with session_scope(state.database_url) as s:
        return list(s.exec(select(SimAlipayOrder).where(SimAlipayOrder.app_id == state.app_id,
                                                        SimAlipayOrder.out_biz_no == out_biz_no)).all())


def _find_order(state: AlipaySimState, *, out_biz_no: str | None = None,
                order_id: str | None = None) -> SimAlipayOrder | None:
    with session_scope(state.database_url) as s:
        q = select(SimAlipayOrder).where(SimAlipayOrder.app_id == state.app_id)
        q = q.where(SimAlipayOrder.order_id == order_id) if order_id else q.where(SimAlipayOrder.out_biz_no == out_biz_no)
        return s.exec(q).first()


# --------------------------------------------------------------------------------------------------
# the gateway's checks


def _merged_params(query_string: str, body: bytes) -> dict[str, str]:
    try:
        form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise SimError(p.CODE_INVALID, "isv.invalid-charset", "请求参数不是 UTF-8 编码") from None
    params: dict[str, str] = {}
    for key, value in [*parse_qsl(query_string, keep_blank_values=True), *form]:
        if key in params and params[key] != value:
            raise SimError(p.CODE_INVALID, "isv.invalid-parameter", f"参数 {key} 重复且取值不同")
        params[key] = value
    return params


def _require(params: dict[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise SimError(p.CODE_MISSING, f"isv.missing-{name.replace('_', '-')}", f"缺少 {name} 参数")
    return value


def _verify_gateway(state: AlipaySimState, params: dict[str, str]) -> None:
    """The common-parameter checks, in the gateway's order; raises :class:`SimError`."""
    if params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise SimError(p.CODE_INVALID, "isv.invalid-charset", "字符集错误")
    if params.get("format", p.FORMAT).upper() != p.FORMAT:
        raise SimError(p.CODE_INVALID, "isv.invalid-format", "参数格式错误")
    if _require(params, "sign_type") != p.SIGN_TYPE:
        raise SimError(p.CODE_INVALID, "isv.invalid-signature-type", "无效签名类型")
    _require(params, "sign")
    try:
        sent = p.parse_alipay_timestamp(_require(params, "timestamp"))
    except ValueError:
        raise SimError(p.CODE_INVALID, "isv.invalid-timestamp", "非法的时间戳参数") from None
    if abs((state.clock() - sent).total_seconds()) > state.max_skew_seconds:
        raise SimError(p.CODE_INVALID, "isv.invalid-timestamp", "非法的时间戳参数（与支付宝时间相差过大）")
    if _require(params, "version") != p.VERSION:
        raise SimError(p.CODE_INVALID, "isv.invalid-version", "非法的版本参数")
    if _require(params, "app_cert_sn") != state.app_cert_sn:
        raise SimError(p.CODE_INVALID, "isv.app-cert-sn-mismatch", "应用公钥证书序列号与开发者上传的证书不匹配")
    if _require(params, "alipay_root_cert_sn") != state.alipay_root_cert_sn:
        raise SimError(p.CODE_INVALID, "isv.alipay-root-cert-sn-mismatch", "支付宝根证书序列号不匹配")
    if not signing.verify_params(state._app_key, params):
        raise SimError(p.CODE_INVALID, "isv.invalid-signature", "验签出错，建议检查签名字符串或签名私钥与应用公钥证书是否匹配")


def _biz(params: dict[str, str]) -> dict[str, Any]:
    try:
        biz = json.loads(params.get("biz_content") or "")
    except ValueError:
        raise SimError(p.CODE_BUSINESS, p.INVALID_PARAMETER, "biz_content 不是 JSON 对象") from None
    if not isinstance(biz, dict):
        raise SimError(p.CODE_BUSINESS, p.INVALID_PARAMETER, "biz_content 不是 JSON 对象")
    return biz


def _text(biz: dict[str, Any], name: str, *, max_len: int, required: bool = True) -> str | None:
    value = biz.get(name)
    if value is None or value == "":
        if required:
            raise SimError(p.CODE_BUSINESS, p.INVALID_PARAMETER, f"缺少参数 {name}")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise SimError(p.CODE_BUSINESS, p.INVALID_PARAMETER, f"参数 {name} 格式错误")
    return value


# --------------------------------------------------------------------------------------------------
# the two methods


def _order_node(state: AlipaySimState, order: SimAlipayOrder) -> dict[str, Any]:
    return {"code": p.CODE_SUCCESS, "msg": "Success", "out_biz_no": order.out_biz_no, "order_id": order.order_id,
            "pay_fund_order_id": order.pay_fund_order_id, "status": order.status,
            "trans_date": p.alipay_timestamp(as_utc(order.created_at))}


def _transfer(state: AlipaySimState, biz: dict[str, Any], fault: str | None) -> dict[str, Any]:
    out_biz_no = _text(biz, "out_biz_no", max_len=64)
    assert out_biz_no is not None
    if not p.OUT_BIZ_NO_RE.match(out_biz_no):
        raise SimError(p.CODE_BUSINESS, p.INVALID_PARAMETER, "out_biz_no 格式错误")
    try:
        amount = p.yuan_to_fen(_text(biz, "trans_amount", max_len=20) or "")
    except ValueError:
        raise SimError(p.CODE_BUSINESS, "MONEY_FORMAT_ERROR", "金额格式错误（单位元，最多两位小数）") from None
    if biz.get("product_code") != p.PRODUCT_CODE:
        raise SimError(p.CODE_BUSINESS, "PRODUCT_NOT_SIGN", "产品码错误或未签约")
    if biz.get("biz_scene") != p.BIZ_SCENE:
        raise SimError(p.CODE_BUSINESS, p.INVALID_PARAMETER, "biz_scene 错误")
    _text(biz, "order_title", max_len=128)
    payee = biz.get("payee_info")
    if not isinstance(payee, dict):
        raise SimError(p.CODE_BUSINESS, p.INVALID_PARAMETER, "缺少参数 payee_info")
    identity = _text(payee, "identity", max_len=100) or ""
    identity_type = _text(payee, "identity_type", max_len=32)
    name = _text(payee, "name", max_len=100, required=False)
    if identity_type not in p.IDENTITY_TYPES:
        raise SimError(p.CODE_BUSINESS, p.INVALID_PARAMETER, "identity_type 错误")
    if identity_type == "ALIPAY_LOGON_ID" and not name:
        raise SimError(p.CODE_BUSINESS, p.INVALID_PARAMETER, "收款方为支付宝登录号时必须提供真实姓名 name")
    digest = hashlib.sha256(json.dumps([amount, identity_type, identity, name or ""]).encode()).hexdigest()

    def replay() -> dict[str, Any] | None:
        existing = _find_order(state, out_biz_no=out_biz_no)
        if existing is None:
            return None
        if existing.request_digest != digest:
            raise SimError(p.CODE_BUSINESS, p.PAYMENT_INFO_INCONSISTENCY, "两次请求商户单号一样，但是参数不一致")
        return _order_node(state, existing)

    if (again := replay()) is not None:
        log.info("alipay simulator: %s again, same order answered", out_biz_no)
        return again
    if fault in _BUSINESS_FAULTS:
        sub_code, sub_msg = _BUSINESS_FAULTS[fault]
        raise SimError(p.CODE_BUSINESS, sub_code, sub_msg)
    if amount < p.MIN_TRANSFER_FEN:
        raise SimError(p.CODE_BUSINESS, p.EXCEED_LIMIT_SM_MIN_AMOUNT, "单笔最低转账金额0.1元")
    if amount > p.MAX_TRANSFER_FEN:
        raise SimError(p.CODE_BUSINESS, p.EXCEED_LIMIT_SM_AMOUNT, "单笔额度超限")
    valid = (_USER_ID_RE.match(identity) if identity_type == "ALIPAY_USER_ID"
             else _PHONE_RE.match(identity) or _EMAIL_RE.match(identity))
    if not valid:
        raise SimError(p.CODE_BUSINESS, p.PAYEE_NOT_EXIST, "收款账号不存在")
    now = state.clock()
    day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
    order = SimAlipayOrder(app_id=state.app_id, out_biz_no=out_biz_no, order_id=day + "1100700" + _digits(17),
                           pay_fund_order_id=day + "1100701" + _digits(17), amount_fen=amount, request_digest=digest,
                           status="SUCCESS", created_at=now)
    try:
        with session_scope(state.database_url) as s:
            s.add(order)
    except IntegrityError:  # a concurrent twin executed it first: answer as its replay
        again = replay()
        if again is None:
            raise
        return again
    log.info("alipay simulator: transfer %s of %s fen executed", out_biz_no, amount)
    return _order_node(state, order)


def _query(state: AlipaySimState, biz: dict[str, Any], fault: str | None) -> dict[str, Any]:
    out_biz_no = _text(biz, "out_biz_no", max_len=64, required=False)
    order_id = _text(biz, "order_id", max_len=32, required=False)
    if not (out_biz_no or order_id):
        raise SimError(p.CODE_BUSINESS, p.INVALID_PARAMETER, "out_biz_no 与 order_id 不能同时为空")
    order = _find_order(state, out_biz_no=out_biz_no, order_id=order_id)
    if order is None:
        raise SimError(p.CODE_BUSINESS, p.ORDER_NOT_EXIST, "转账订单不存在")
    return {**_order_node(state, order), "trans_amount": p.fen_to_yuan(order.amount_fen),
            "pay_date": p.alipay_timestamp(as_utc(order.created_at)), "order_fee": "0.00"}


_METHODS: dict[str, Callable[[AlipaySimState, dict[str, Any], str | None], dict[str, Any]]] = {
    p.METHOD_TRANSFER: _transfer, p.METHOD_QUERY: _query,
}


def _answer(state: AlipaySimState, params: dict[str, str]) -> tuple[str, dict[str, Any], str | None, int]:
    """``(node key, node, fault, delay_ms)`` for one gateway call (blocking: runs in a thread)."""
    method = params.get("method", "")
    key = p.response_key(method) if method in _METHODS else p.ERROR_RESPONSE_KEY
    try:
        if not method:
            raise SimError(p.CODE_MISSING, "isv.missing-method", "缺少方法名参数")
        if method not in _METHODS:
            raise SimError(p.CODE_INVALID, "isv.invalid-method", "不存在的方法名")
        if _require(params, "app_id") != state.app_id:
            raise SimError(p.CODE_INVALID, "isv.invalid-app-id", "无效的AppID参数")
        _verify_gateway(state, params)
        biz = _biz(params)
        fault, delay = _take_fault(state, method) or (None, 0)
        delay = delay if fault in ("timeout", "timeout_before") else 0
        if fault == "timeout_before":
            return key, SimError(p.CODE_BUSINESS, p.SYSTEM_ERROR, "系统繁忙").node(), fault, delay
        if fault == "system_error":
            raise SimError(p.CODE_BUSINESS, p.SYSTEM_ERROR, "系统繁忙")
        if fault == "unavailable":
            raise SimError(p.CODE_UNAVAILABLE, "isp.unknow-error", "服务暂不可用（业务系统不可用）")
        try:
            node = _METHODS[method](state, biz, fault)
        except SimError as err:
            return key, err.node(), fault, delay
        if fault == "system_error_after":
            node = SimError(p.CODE_BUSINESS, p.SYSTEM_ERROR, "系统繁忙").node()
        return key, node, fault, delay
    except SimError as err:
        log.info("alipay simulator: %s refused: %s %s", method or "?", err.code, err.sub_code)
        return key, err.node(), None, 0


def _body(state: AlipaySimState, key: str, node: dict[str, Any], *, signed: bool, fault: str | None) -> str:
    if not signed or fault == "unsigned":
        return json.dumps({key: node}, ensure_ascii=False, separators=(",", ":"))
    body = signing.signed_body(state._alipay_key, key, node, alipay_cert_sn=state.alipay_cert_sn)
    if fault == "bad_signature":  # a valid signature, but over other text
        other = signing.rsa_sign(state._alipay_key, json.dumps({**node, "status": "FAIL"}))
        body = body[: body.rindex('"sign":')] + '"sign":' + json.dumps(other) + "}"
    return body


def build_alipay_simulator(state: AlipaySimState) -> APIRouter:
    """``/gateway.do`` plus the ``/_fault`` and ``/_transfers`` helpers (mount under ``/sim/alipay``)."""
    router = APIRouter(tags=["simulators"])

    @router.api_route("/gateway.do", methods=["GET", "POST"], include_in_schema=False)
    async def gateway(request: Request) -> Response:
        body = await request.body()
        query = request.scope.get("query_string", b"").decode("latin-1")
        try:
            params = _merged_params(query, body)
        except SimError as err:  # unreadable parameters: nobody to sign for
            params, (key, node, fault, delay) = {}, (p.ERROR_RESPONSE_KEY, err.node(), None, 0)
        else:
            key, node, fault, delay = await run_in_threadpool(_answer, state, params)
        if delay:
            await asyncio.sleep(delay / 1000)
        signed = params.get("app_id") == state.app_id
        text = _body(state, key, node, signed=signed, fault=fault)
        return Response(content=text.encode("utf-8"), media_type="application/json;charset=utf-8")

    @router.post("/_fault", include_in_schema=False)
    def sim_fault(payload: dict[str, Any]) -> JSONResponse:
        """Dev/test: queue a failure for the next call (``kind``, ``method``?, ``delay_ms``?)."""
        try:
            inject_fault(state, str(payload.get("kind", "")), method=str(payload.get("method", p.METHOD_TRANSFER)),
                         delay_ms=int(payload.get("delay_ms", DEFAULT_TIMEOUT_DELAY_MS)))
        except (TypeError, ValueError) as exc:
            return JSONResponse({"code": "INVALID_FAULT", "message": str(exc)}, status_code=400)
        return JSONResponse({"queued": payload.get("kind")})

    @router.get("/_transfers", include_in_schema=False)
    def sim_transfers(out_biz_no: str) -> JSONResponse:
        """Dev/test: how many transfers were executed under ``out_biz_no``."""
        orders = transfers_for(state, out_biz_no)
        return JSONResponse({"out_biz_no": out_biz_no, "transfers": len(orders),
                             "orders": [{"order_id": o.order_id, "amount_fen": o.amount_fen, "status": o.status}
                                        for o in orders]})

    return router
