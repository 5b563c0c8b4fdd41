"""Local SMS vendor simulators: Aliyun dysmsapi ``SendSms`` and Tencent Cloud ``SendSms``.

``build_sms_simulator(accounts)`` returns a router with ``POST /aliyun/`` and ``POST /tencent/``
(and ``GET /_inbox?phone=``: what a phone received, for scripts that play the user in dev);
the app mounts it under ``/sim/sms`` (dev/test only), so senders use the endpoints
``http://<host>/sim/sms/aliyun`` and ``http://<host>/sim/sms/tencent``.

Each route really checks the request the way the vendor does: it recomputes the signature from
the raw request it received (method, raw query string, headers, body bytes) with the canonical
URI ``/`` (the path below the vendor endpoint), rejects unknown keys, bad or incomplete
signatures, stale timestamps, replayed Aliyun nonces and malformed phones, and answers with the
vendor's error shapes. Accepted messages are appended to ``accounts.sent``; nothing is delivered.
What the simulators remember (accepted messages, used nonces) is in ``accounts.store``
(:mod:`~gc_admin.integrations.simstore`): Redis shared by every worker when the app has ``GC_REDIS_URL``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import json
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gc_admin.core.clock import utcnow
from gc_admin.core.phone import mask_phone
from gc_admin.integrations.sms import aliyun, tencent
from gc_admin.integrations.simstore import MemoryStore, RedisStore
from gc_admin.integrations.sms.signing import (
    acs3_canonical_request,
    acs3_signature,
    acs3_string_to_sign,
    parse_acs3_authorization,
    parse_tc3_authorization,
    sha256_hex,
    tc3_canonical_request,
    tc3_credential_scope,
    tc3_signature,
)

log = logging.getLogger(__name__)

ALIYUN_HOST_ID = "dysmsapi.aliyuncs.com"
TENCENT_REGIONS = frozenset({"ap-guangzhou", "ap-beijing", "ap-nanjing"})  # where SMS is served
# Aliyun PhoneNumbers: mainland numbers, optionally with the 86 / +86 / 0086 prefix.
_ALIYUN_PHONE_RE = re.compile(r"^(?:\+86|0086|86)?1[3-9]\d{9}$")
# Tencent PhoneNumberSet: E.164; mainland numbers must be +86 and 11 digits.
_E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")
_CN_MOBILE_RE = re.compile(r"^\+861[3-9]\d{9}$")


@dataclasses.dataclass(frozen=True)
class SimSms:
    """One message a simulator accepted (one per phone number)."""

    vendor: str  # "aliyun" | "tencent"
    phone: str  # as the vendor received it ("13800138000" / "+8613800138000")
    sign_name: str
    template_code: str  # Aliyun TemplateCode / Tencent TemplateId
    params: dict[str, str] | tuple[str, ...]  # Aliyun TemplateParam object / Tencent TemplateParamSet
    provider_ref: str  # the BizId / SerialNo answered
    key_id: str  # the AccessKey id / SecretId that signed the request


@dataclasses.dataclass
class SimAccounts:
    """The simulators' known credentials and what they accepted.

    ``aliyun`` maps AccessKey id -> secret, ``tencent`` maps SecretId -> SecretKey. ``clock`` is the
    simulators' "now" (tests move it to make requests stale).
    """

    aliyun: dict[str, str] = dataclasses.field(default_factory=dict)
    tencent: dict[str, str] = dataclasses.field(default_factory=dict)
    clock: Callable[[], dt.datetime] = utcnow
    aliyun_max_skew: dt.timedelta = dt.timedelta(minutes=15)  # x-acs-date window (and nonce memory)
    tencent_max_skew: dt.timedelta = dt.timedelta(minutes=5)  # X-TC-Timestamp window, as Tencent documents
    store: MemoryStore | RedisStore = dataclasses.field(default_factory=MemoryStore, repr=False)
    sent: Any = dataclasses.field(init=False)  # a list of SimSms (a Redis log when shared)
    _nonces: MutableMapping[str, dt.datetime] = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.sent = self.store.log("sms.sent", SimSms)
        self._nonces = self.store.table("sms.nonces")

    def use_nonce(self, nonce: str) -> bool:
        """Record an Aliyun signature nonce; ``False`` if it was seen within the skew window."""
        now = self.clock()
        horizon = now - 2 * self.aliyun_max_skew
        with self.store.lock:
            for old, seen in list(self._nonces.items()):
                if seen < horizon:
                    del self._nonces[old]
            if nonce in self._nonces:
                return False
            self._nonces[nonce] = now
        return True


class _Reject(Exception):
    """A vendor error answer: HTTP status, code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def _raw_headers(request: Request) -> dict[str, str]:
    """The received headers, names lower-cased; repeated headers joined with ``,``."""
    out: dict[str, str] = {}
    for name, value in request.headers.items():
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


# --------------------------------------------------------------------------------------------------
# Aliyun


def _aliyun_verify(accounts: SimAccounts, *, method: str, raw_query: str, headers: Mapping[str, str],
                   body: bytes) -> tuple[str, list[tuple[str, str]]]:
    """Check an ACS3-HMAC-SHA256 request; return (AccessKey id, query pairs) or raise ``_Reject``."""
    incomplete = "The request signature does not conform to Aliyun standards."
    if headers.get("x-acs-action") != aliyun.ACTION:
        raise _Reject(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
    if headers.get("x-acs-version") != aliyun.API_VERSION:
        raise _Reject(400, "InvalidVersion", "Specified parameter Version is not valid.")
    auth = parse_acs3_authorization(headers.get("authorization", ""))
    if auth is None:
        raise _Reject(400, "IncompleteSignature", incomplete + " (the Authorization header is missing or malformed)")
    key_id, signed_headers, signature = auth
    for required in ("host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"):
        if not headers.get(required):
            raise _Reject(400, "IncompleteSignature", incomplete + f" (header {required} is missing)")
    signed = {h.lower() for h in signed_headers}
    must_sign = {h for h in headers if h.startswith("x-acs-") or h in ("host", "content-type")}
    if not must_sign <= signed:
        raise _Reject(400, "IncompleteSignature",
                      incomplete + f" (headers not signed: {';'.join(sorted(must_sign - signed))})")
    if not signed <= set(headers):
        raise _Reject(400, "IncompleteSignature",
                      incomplete + f" (signed headers not sent: {';'.join(sorted(signed - set(headers)))})")
    try:
        date = dt.datetime.strptime(headers["x-acs-date"], aliyun.DATE_FORMAT).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise _Reject(400, "InvalidTimeStamp.Format",
                      "Specified time stamp or date value is not well formatted.") from None
    if abs(accounts.clock() - date) > accounts.aliyun_max_skew:
        raise _Reject(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
    secret = accounts.aliyun.get(key_id)
    if secret is None:
        raise _Reject(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    query = parse_qsl(raw_query, keep_blank_values=True)
    # The payload hash is ours, from the bytes received: a changed body cannot keep a valid signature.
    canonical = acs3_canonical_request(
        method=method, canonical_uri="/", query=query, headers=headers, signed_headers=sorted(signed),
        hashed_payload=sha256_hex(body),
    )
    expected = acs3_signature(access_key_secret=secret, canonical_request=canonical)
    if headers["x-acs-content-sha256"] != sha256_hex(body) or not hmac.compare_digest(expected, signature):
        raise _Reject(400, "SignatureDoesNotMatch",
                      "Specified signature is not matched with our calculation. server string to sign is:"
                      + acs3_string_to_sign(canonical))
    if not accounts.use_nonce(headers["x-acs-signature-nonce"]):
        raise _Reject(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
    return key_id, query


def _aliyun_send_sms(accounts: SimAccounts, key_id: str, query: list[tuple[str, str]]) -> tuple[int, dict[str, Any]]:
    """Apply SendSms to verified query parameters: (HTTP status, body without RequestId)."""
    params: dict[str, str] = {}
    for k, v in query:
        params.setdefault(k, v)
    for name in ("PhoneNumbers", "SignName", "TemplateCode"):
        if not params.get(name):
            return 400, {"Code": f"Missing{name}", "Message": f"{name} is mandatory for this action."}
    phones = params["PhoneNumbers"].split(",")
    if not all(_ALIYUN_PHONE_RE.match(p) for p in phones):
        return 200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "invalid mobile number"}
    template_params: dict[str, str] = {}
    if params.get("TemplateParam"):
        try:
            parsed = json.loads(params["TemplateParam"])
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            return 200, {"Code": "isv.INVALID_JSON_PARAM",
                         "Message": "TemplateParam must be a JSON object with string values."}
        template_params = parsed
    biz_id = f"{secrets.randbelow(10**18):018d}^0"
    for phone in phones:
        accounts.sent.append(SimSms(
            vendor="aliyun", phone=phone, sign_name=params["SignName"], template_code=params["TemplateCode"],
            params=dict(template_params), provider_ref=biz_id, key_id=key_id,
        ))
        log.info("sms simulator: aliyun accepted %s to %s", params["TemplateCode"], mask_phone(phone))
    return 200, {"Code": "OK", "Message": "OK", "BizId": biz_id}


def aliyun_handle(accounts: SimAccounts, *, method: str, raw_query: str, headers: Mapping[str, str],
                  body: bytes) -> tuple[int, dict[str, Any]]:
    """One Aliyun SendSms exchange on a raw request: (HTTP status, JSON body)."""
    request_id = _request_id()
    try:
        key_id, query = _aliyun_verify(accounts, method=method, raw_query=raw_query, headers=headers, body=body)
    except _Reject as rej:
        log.warning("sms simulator: aliyun rejected a request: %s", rej.code)
        return rej.status, {
            "RequestId": request_id, "HostId": ALIYUN_HOST_ID, "Code": rej.code, "Message": rej.message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={rej.code}&product=Dysmsapi",
        }
    status, answer = _aliyun_send_sms(accounts, key_id, query)
    if answer["Code"] != "OK":
        log.warning("sms simulator: aliyun refused SendSms: %s", answer["Code"])
    return status, {"RequestId": request_id, **answer}


# --------------------------------------------------------------------------------------------------
# Tencent


def _tencent_verify(accounts: SimAccounts, *, method: str, headers: Mapping[str, str], body: bytes) -> str:
    """Check a TC3-HMAC-SHA256 request; return the SecretId or raise ``_Reject`` (status unused)."""
    action = headers.get("x-tc-action")
    if not action:
        raise _Reject(200, "MissingParameter", "The request is missing a required parameter `Action`.")
    if action != tencent.ACTION:
        raise _Reject(200, "InvalidAction", f"The requested action `{action}` does not exist.")
    version = headers.get("x-tc-version")
    if not version:
        raise _Reject(200, "MissingParameter", "The request is missing a required parameter `Version`.")
    if version != tencent.API_VERSION:
        raise _Reject(200, "NoSuchVersion", f"The requested version `{version}` of action `{action}` does not exist.")
    raw_ts = headers.get("x-tc-timestamp")
    if not raw_ts:
        raise _Reject(200, "MissingParameter", "The request is missing a required parameter `Timestamp`.")
    if not raw_ts.isdigit():
        raise _Reject(200, "InvalidParameter", "The parameter `Timestamp` is not a UNIX timestamp in seconds.")
    timestamp = int(raw_ts)
    region = headers.get("x-tc-region")
    if not region:
        raise _Reject(200, "MissingParameter", "The request is missing a required parameter `Region`.")
    if region not in TENCENT_REGIONS:
        raise _Reject(200, "UnsupportedRegion", f"The region `{region}` is not supported.")
    auth = parse_tc3_authorization(headers.get("authorization", ""))
    if auth is None:
        raise _Reject(200, "AuthFailure.InvalidAuthorization", "The Authorization header is missing or invalid.")
    secret_id, scope, signed_headers, signature = auth
    now = accounts.clock().timestamp()
    if abs(now - timestamp) > accounts.tencent_max_skew.total_seconds():
        raise _Reject(200, "AuthFailure.SignatureExpire",
                      "Signature expired. Timestamp and server time cannot differ by more than five minutes.")
    secret_key = accounts.tencent.get(secret_id)
    if secret_key is None:
        raise _Reject(200, "AuthFailure.SecretIdNotFound",
                      "The SecretId is not found, please ensure that your SecretId is correct.")
    bad_signature = _Reject(200, "AuthFailure.SignatureFailure",
                            "The provided credentials could not be validated. Please check your signature is correct.")
    signed = {h.lower() for h in signed_headers}
    if scope != tc3_credential_scope(timestamp=timestamp, service=tencent.SERVICE):
        raise bad_signature
    if not {"content-type", "host"} <= signed or not signed <= set(headers):
        raise bad_signature
    canonical = tc3_canonical_request(
        method=method, canonical_uri="/", canonical_query="", headers=headers, signed_headers=sorted(signed),
        hashed_payload=sha256_hex(body),
    )
    expected = tc3_signature(secret_key=secret_key, timestamp=timestamp, service=tencent.SERVICE,
                             canonical_request=canonical)
    if not hmac.compare_digest(expected, signature):
        raise bad_signature
    return secret_id


def _tencent_send_sms(accounts: SimAccounts, secret_id: str, body: bytes) -> dict[str, Any]:
    """Apply SendSms to a verified JSON body: the ``Response`` object without RequestId."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise _Reject(200, "FailedOperation.JsonParseFail", "Failed to parse the request body as a JSON object.")
    for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId", "SignName"):
        if name not in payload:
            raise _Reject(200, "MissingParameter", f"The request is missing a required parameter `{name}`.")
    phones = payload["PhoneNumberSet"]
    if not isinstance(phones, list) or not phones or len(phones) > 200 or not all(isinstance(p, str) for p in phones):
        raise _Reject(200, "InvalidParameterValue", "PhoneNumberSet must be a list of 1 to 200 strings.")
    for name in ("SmsSdkAppId", "TemplateId", "SignName"):
        if not isinstance(payload[name], str) or not payload[name]:
            raise _Reject(200, "InvalidParameterValue", f"{name} must be a non-empty string.")
    template_params = payload.get("TemplateParamSet", [])
    if not isinstance(template_params, list) or not all(isinstance(p, str) for p in template_params):
        raise _Reject(200, "InvalidParameterValue.TemplateParameterFormatError",
                      "TemplateParamSet must be a list of strings.")
    session = payload.get("SessionContext", "")
    statuses = []
    for phone in phones:
        if not (_E164_RE.match(phone) and (not phone.startswith("+86") or _CN_MOBILE_RE.match(phone))):
            statuses.append({"SerialNo": "", "PhoneNumber": phone, "Fee": 0, "SessionContext": session,
                             "Code": "InvalidParameterValue.IncorrectPhoneNumber",
                             "Message": "incorrect phone number", "IsoCode": ""})
            log.warning("sms simulator: tencent refused a malformed phone number")
            continue
        serial_no = f"{secrets.randbelow(10000):04d}:{secrets.randbelow(10**30):030d}"
        accounts.sent.append(SimSms(
            vendor="tencent", phone=phone, sign_name=payload["SignName"], template_code=payload["TemplateId"],
            params=tuple(template_params), provider_ref=serial_no, key_id=secret_id,
        ))
        log.info("sms simulator: tencent accepted %s to %s", payload["TemplateId"], mask_phone(phone))
        statuses.append({"SerialNo": serial_no, "PhoneNumber": phone, "Fee": 1, "SessionContext": session,
                         "Code": "Ok", "Message": "send success", "IsoCode": "CN" if phone.startswith("+86") else ""})
    return {"SendStatusSet": statuses}


def tencent_handle(accounts: SimAccounts, *, method: str, headers: Mapping[str, str],
                   body: bytes) -> tuple[int, dict[str, Any]]:
    """One Tencent SendSms exchange on a raw request: (HTTP status, JSON body); always HTTP 200."""
    request_id = str(uuid.uuid4())
    try:
        secret_id = _tencent_verify(accounts, method=method, headers=headers, body=body)
        result = _tencent_send_sms(accounts, secret_id, body)
    except _Reject as rej:
        log.warning("sms simulator: tencent rejected a request: %s", rej.code)
        return 200, {"Response": {"Error": {"Code": rej.code, "Message": rej.message}, "RequestId": request_id}}
    return 200, {"Response": {**result, "RequestId": request_id}}


# --------------------------------------------------------------------------------------------------


def build_sms_simulator(accounts: SimAccounts) -> APIRouter:
    """Routes ``POST /aliyun/`` and ``POST /tencent/`` (mount under ``/sim/sms``, dev/test only)."""
    router = APIRouter(tags=["simulators"])

    @router.post("/aliyun/", include_in_schema=False)
    async def aliyun_sendsms(request: Request) -> JSONResponse:
        body = await request.body()
        status, answer = aliyun_handle(
            accounts, method=request.method, raw_query=request.scope.get("query_string", b"").decode("latin-1"),
            headers=_raw_headers(request), body=body)
        return JSONResponse(answer, status_code=status)

    @router.post("/tencent/", include_in_schema=False)
    async def tencent_sendsms(request: Request) -> JSONResponse:
        body = await request.body()
        status, answer = tencent_handle(accounts, method=request.method, headers=_raw_headers(request), body=body)
        return JSONResponse(answer, status_code=status)

    @router.get("/_inbox", include_in_schema=False)
    def inbox(phone: str = "") -> JSONResponse:
        """The phone's side: what it received, whole (login codes included), newest first. Staff pages
        mask the codes; this plays the user reading their SMS, like ``/sim/wechat/_mint`` plays WeChat."""
        from gc_admin.db import session_scope
        from gc_admin.integrations.sms.service import messages_to

        digits = "".join(ch for ch in phone if ch.isascii() and ch.isdigit())[:11]
        with session_scope() as session:
            items = [{"content": m.content, "template": m.template, "created_at": m.created_at.isoformat()}
                     for m in messages_to(session, phone=digits)] if len(digits) == 11 else []
        return JSONResponse({"phone": digits, "items": items})

    return router
