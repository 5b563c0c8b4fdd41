"""Aliyun and Tencent SMS senders against the local vendor simulators, in-process.

The senders are sync; a sync ``httpx.Client`` reaches the ASGI simulator through
:class:`InProcessTransport`, a sync wrapper around ``httpx.ASGITransport`` (public API only). The signature functions are also checked against the vendors'
published example vectors and against canonical requests written out by hand here, so a bug
shared by the senders and the simulator (they use the same ``signing`` helpers) is still caught.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import FastAPI

from gc_admin.core.clock import utcnow
from gc_admin.integrations.sms import signing
from gc_admin.integrations.sms.aliyun import AliyunSmsSender
from gc_admin.integrations.sms.base import SmsError
from gc_admin.integrations.sms.simulator import SimAccounts, build_sms_simulator
from gc_admin.integrations.sms.tencent import TencentSmsSender
from tests.support import InProcessTransport

AK_ID, AK_SECRET = "LTAI5tSimAccessKey01", "sim-aliyun-secret-0001"
TC_ID, TC_KEY = "AKIDsimSecretId00000001", "sim-tencent-secret-0001"
SIGN = "滚财车主权益"
ALIYUN_TEMPLATES = {"login_code": "SMS_465001", "new_order": "SMS_465002"}
TENCENT_TEMPLATES = {"login_code": "2001001", "new_order": "2001002"}
BASE = "http://sim.test/sim/sms"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class TamperingTransport(httpx.BaseTransport):
    """Rewrites each request (after the sender signed it) before passing it on."""

    def __init__(self, inner: httpx.BaseTransport, rewrite: Callable[[httpx.Request], httpx.Request]) -> None:
        self._inner, self._rewrite = inner, rewrite

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(self._rewrite(request))


def _with_query(request: httpx.Request, **changes: str) -> httpx.Request:
    query = dict(parse_qsl(request.url.query.decode(), keep_blank_values=True))
    query.update(changes)
    raw = "&".join(f"{signing.acs3_encode(k)}={signing.acs3_encode(v)}" for k, v in query.items())
    return httpx.Request(request.method, request.url.copy_with(query=raw.encode()),
                         headers=request.headers, content=request.content)


@pytest.fixture
def accounts() -> SimAccounts:
    return SimAccounts(aliyun={AK_ID: AK_SECRET}, tencent={TC_ID: TC_KEY})


@pytest.fixture
def app(accounts: SimAccounts) -> FastAPI:
    app = FastAPI()
    app.include_router(build_sms_simulator(accounts), prefix="/sim/sms")
    return app


@pytest.fixture
def transport(app: FastAPI) -> InProcessTransport:
    return InProcessTransport(app)


def aliyun_sender(transport: httpx.BaseTransport, *, key_id: str = AK_ID, secret: str = AK_SECRET) -> AliyunSmsSender:
    return AliyunSmsSender(access_key_id=key_id, access_key_secret=secret, sign_name=SIGN,
                           templates=ALIYUN_TEMPLATES, endpoint=f"{BASE}/aliyun", transport=transport)


def tencent_sender(transport: httpx.BaseTransport, *, secret_id: str = TC_ID, secret_key: str = TC_KEY,
                   region: str = "ap-guangzhou") -> TencentSmsSender:
    return TencentSmsSender(secret_id=secret_id, secret_key=secret_key, sdk_app_id="1400000001", sign_name=SIGN,
                            templates=TENCENT_TEMPLATES, region=region, endpoint=f"{BASE}/tencent",
                            transport=transport)


def _raw_send(transport: httpx.BaseTransport, request: httpx.Request) -> httpx.Response:
    with httpx.Client(transport=transport) as client:
        return client.send(request)


# ------------------------------------------------------------------------------------------------
# Signature functions vs. the vendors' published examples and hand-written canonical requests


def test_acs3_matches_aliyun_published_example() -> None:
    # help.aliyun.com/zh/sdk/product-overview/v3-request-structure-and-signature, "fixed parameters" example.
    headers = {
        "host": "ecs.cn-shanghai.aliyuncs.com",
        "x-acs-action": "RunInstances",
        "x-acs-content-sha256": EMPTY_SHA256,
        "x-acs-date": "2023-10-26T10:22:32Z",
        "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
        "x-acs-version": "2014-05-26",
    }
    expected_canonical = (
        "POST\n/\n"
        "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n"
        "host:ecs.cn-shanghai.aliyuncs.com\n"
        "x-acs-action:RunInstances\n"
        f"x-acs-content-sha256:{EMPTY_SHA256}\n"
        "x-acs-date:2023-10-26T10:22:32Z\n"
        "x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n"
        "x-acs-version:2014-05-26\n"
        "\n"
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n"
        f"{EMPTY_SHA256}"
    )
    canonical = signing.acs3_canonical_request(
        method="POST", canonical_uri="/",
        query=[("RegionId", "cn-shanghai"), ("ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd")],
        headers=headers, signed_headers=list(reversed(headers)), hashed_payload=signing.sha256_hex(b""),
    )
    assert canonical == expected_canonical
    assert hashlib.sha256(canonical.encode()).hexdigest() == "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    signature = signing.acs3_signature(access_key_secret="YourAccessKeySecret", canonical_request=canonical)
    assert signature == "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    assert signing.acs3_authorization(access_key_id="YourAccessKeyId", signed_headers=list(headers),
                                      signature=signature) == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,"
        "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )
    assert signing.parse_acs3_authorization(signing.acs3_authorization(
        access_key_id="AK", signed_headers=["b", "a"], signature="f00")) == ("AK", ["a", "b"], "f00")


def test_acs3_rfc3986_encoding_and_query_order() -> None:
    assert signing.acs3_encode("a b*~/+&=中") == "a%20b%2A~%2F%2B%26%3D%E4%B8%AD"
    assert signing.acs3_encode("-_.~AZaz09") == "-_.~AZaz09"
    assert signing.acs3_canonical_query([("b", "1"), ("a", ""), ("TemplateParam", '{"k":"v w"}')]) == (
        "TemplateParam=%7B%22k%22%3A%22v%20w%22%7D&a=&b=1")
    assert signing.acs3_canonical_query([]) == ""


def test_tc3_matches_tencent_published_example() -> None:
    # Tencent Cloud API 3.0 "Signature v3" example (CVM DescribeInstances, 2019-02-25).
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    assert signing.sha256_hex(payload) == "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    canonical = signing.tc3_canonical_request(
        method="POST", canonical_uri="/", canonical_query="",
        headers={"Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com"},
        signed_headers=["host", "content-type"], hashed_payload=signing.sha256_hex(payload),
    )
    assert canonical == (
        "POST\n/\n\n"
        "content-type:application/json; charset=utf-8\n"
        "host:cvm.tencentcloudapi.com\n"
        "\n"
        "content-type;host\n"
        "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    assert signing.tc3_string_to_sign(timestamp=1551113065, service="cvm", canonical_request=canonical) == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    signature = signing.tc3_signature(secret_key="Gu5t9xGARNpq86cd98joQYCN3*******", timestamp=1551113065,
                                      service="cvm", canonical_request=canonical)
    assert signature == "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    auth = signing.tc3_authorization(secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", timestamp=1551113065,
                                     service="cvm", signed_headers=["content-type", "host"], signature=signature)
    assert auth == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    )
    # TC3 lower-cases header values too (ACS3 does not: see "RunInstances" above), and trims them.
    assert signing.tc3_canonical_request(
        method="post", canonical_uri="/", canonical_query="", headers={"content-type": " Application/JSON ",
                                                                       "host": "SMS.TencentCloudAPI.com"},
        signed_headers=["content-type", "host"], hashed_payload="h",
    ) == "POST\n/\n\ncontent-type:application/json\nhost:sms.tencentcloudapi.com\n\ncontent-type;host\nh"
    assert signing.parse_tc3_authorization(auth) == (
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", "2019-02-25/cvm/tc3_request", ["content-type", "host"], signature)


def test_aliyun_sender_request_matches_hand_built_signature() -> None:
    """The sender's request, re-derived step by step here with hashlib/hmac only."""
    sender = AliyunSmsSender(access_key_id="AKID", access_key_secret="s3cret", sign_name="滚财",
                             templates={"new_order": "SMS_1"}, endpoint="https://dysmsapi.aliyuncs.com")
    request = sender.build_request(phone="13800138000", template="new_order",
                                   params={"order_no": "GC 1*", "order_type": "洗车~"},
                                   now=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), nonce="n0nce")
    query = ("PhoneNumbers=13800138000&SignName=%E6%BB%9A%E8%B4%A2&TemplateCode=SMS_1"
             "&TemplateParam=%7B%22order_no%22%3A%22GC%201%2A%22%2C%22order_type%22%3A%22%E6%B4%97%E8%BD%A6~%22%7D")
    assert str(request.url) == "https://dysmsapi.aliyuncs.com/?" + query
    assert request.method == "POST" and request.content == b""
    canonical = (
        "POST\n/\n" + query + "\n"
        "host:dysmsapi.aliyuncs.com\n"
        "x-acs-action:SendSms\n"
        f"x-acs-content-sha256:{EMPTY_SHA256}\n"
        "x-acs-date:2026-01-02T03:04:05Z\n"
        "x-acs-signature-nonce:n0nce\n"
        "x-acs-version:2017-05-25\n"
        "\n"
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n"
        f"{EMPTY_SHA256}"
    )
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(b"s3cret", to_sign.encode(), hashlib.sha256).hexdigest()
    assert request.headers["authorization"] == (
        "ACS3-HMAC-SHA256 Credential=AKID,"
        "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        f"Signature={signature}"
    )
    for name, value in [("host", "dysmsapi.aliyuncs.com"), ("x-acs-action", "SendSms"),
                        ("x-acs-version", "2017-05-25"), ("x-acs-date", "2026-01-02T03:04:05Z"),
                        ("x-acs-signature-nonce", "n0nce"), ("x-acs-content-sha256", EMPTY_SHA256)]:
        assert request.headers[name] == value


def test_tencent_sender_request_matches_hand_built_signature() -> None:
    sender = TencentSmsSender(secret_id="AKIDx", secret_key="k3y", sdk_app_id="1400000001", sign_name="滚财",
                              templates={"new_order": "100"}, region="ap-beijing")
    request = sender.build_request(phone="13800138000", template="new_order",
                                   params={"order_type": "洗车", "order_no": "GC1"},
                                   now=dt.datetime(2026, 1, 2, 23, 59, 59, tzinfo=dt.timezone.utc))
    body = ('{"PhoneNumberSet":["+8613800138000"],"SmsSdkAppId":"1400000001","SignName":"滚财",'
            '"TemplateId":"100","TemplateParamSet":["GC1","洗车"]}').encode()
    assert request.content == body
    assert str(request.url) == "https://sms.tencentcloudapi.com/"
    ts = 1767398399  # 2026-01-02T23:59:59Z
    assert request.headers["x-tc-timestamp"] == str(ts)
    canonical = ("POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:sms.tencentcloudapi.com\n\n"
                 "content-type;host\n" + hashlib.sha256(body).hexdigest())
    to_sign = ("TC3-HMAC-SHA256\n" + str(ts) + "\n2026-01-02/sms/tc3_request\n"
               + hashlib.sha256(canonical.encode()).hexdigest())

    def mac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = mac(mac(mac(b"TC3k3y", "2026-01-02"), "sms"), "tc3_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    assert request.headers["authorization"] == (
        "TC3-HMAC-SHA256 Credential=AKIDx/2026-01-02/sms/tc3_request, SignedHeaders=content-type;host, "
        f"Signature={signature}")
    assert request.headers["x-tc-action"] == "SendSms"
    assert request.headers["x-tc-version"] == "2021-01-11"
    assert request.headers["x-tc-region"] == "ap-beijing"
    assert request.headers["content-type"] == "application/json; charset=utf-8"


# ------------------------------------------------------------------------------------------------
# Aliyun sender <-> simulator


def test_aliyun_delivers_and_simulator_records(transport: InProcessTransport, accounts: SimAccounts) -> None:
    sender = aliyun_sender(transport)
    result = sender.send(phone="138 0013 8000", template="login_code", params={"code": "123456"})
    assert len(accounts.sent) == 1
    sms = accounts.sent[0]
    assert (sms.vendor, sms.phone, sms.sign_name, sms.template_code, sms.params, sms.key_id) == (
        "aliyun", "13800138000", SIGN, "SMS_465001", {"code": "123456"}, AK_ID)
    assert result.provider_ref == sms.provider_ref and result.provider_ref.endswith("^0")

    # Characters that differ between encoders (space, *, ~, +, &, =, CJK) survive the round trip.
    tricky = {"order_no": "GC+1 *~&=2", "order_type": "洗车/保养"}
    sender.send(phone="13900139000", template="new_order", params=tricky)
    assert accounts.sent[1].params == tricky and accounts.sent[1].template_code == "SMS_465002"


def test_aliyun_wrong_secret_is_rejected(transport: InProcessTransport, accounts: SimAccounts) -> None:
    with pytest.raises(SmsError) as err:
        aliyun_sender(transport, secret="not-the-secret").send(
            phone="13800138000", template="login_code", params={"code": "864213"})
    assert "SignatureDoesNotMatch" in str(err.value) and "HTTP 400" in str(err.value)
    assert "864213" not in str(err.value)
    assert accounts.sent == []


def test_aliyun_unknown_key_is_rejected(transport: InProcessTransport, accounts: SimAccounts) -> None:
    with pytest.raises(SmsError, match=r"HTTP 404, Code=InvalidAccessKeyId.NotFound"):
        aliyun_sender(transport, key_id="LTAI5tUnknown").send(
            phone="13800138000", template="login_code", params={"code": "123456"})
    assert accounts.sent == []


@pytest.mark.parametrize("change", [
    {"TemplateParam": '{"code":"000000"}'},
    {"PhoneNumbers": "13900000000"},
    {"TemplateCode": "SMS_999"},
])
def test_aliyun_tampered_query_is_rejected(transport: InProcessTransport, accounts: SimAccounts,
                                           change: dict[str, str]) -> None:
    tampering = TamperingTransport(transport, lambda r: _with_query(r, **change))
    with pytest.raises(SmsError, match="SignatureDoesNotMatch"):
        aliyun_sender(tampering).send(phone="13800138000", template="login_code", params={"code": "123456"})
    assert accounts.sent == []


def test_aliyun_tampered_body_or_headers_are_rejected(transport: InProcessTransport, accounts: SimAccounts) -> None:
    sender = aliyun_sender(transport)
    params = {"code": "123456"}

    def with_body(r: httpx.Request) -> httpx.Request:
        headers = {k: v for k, v in r.headers.items() if k != "content-length"}
        return httpx.Request(r.method, r.url, headers=headers, content=b"PhoneNumbers=13900000000")

    resp = _raw_send(TamperingTransport(transport, with_body),
                     sender.build_request(phone="13800138000", template="login_code", params=params))
    assert (resp.status_code, resp.json()["Code"]) == (400, "SignatureDoesNotMatch")

    def drop(name: str) -> Callable[[httpx.Request], httpx.Request]:
        def rewrite(r: httpx.Request) -> httpx.Request:
            return httpx.Request(r.method, r.url, headers={k: v for k, v in r.headers.items() if k != name},
                                 content=r.content)
        return rewrite

    for name in ("x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256", "authorization"):
        resp = _raw_send(TamperingTransport(transport, drop(name)),
                         sender.build_request(phone="13800138000", template="login_code", params=params))
        assert (resp.status_code, resp.json()["Code"]) == (400, "IncompleteSignature"), name

    request = sender.build_request(phone="13800138000", template="login_code", params=params)
    request.headers["x-acs-security-token"] = "unsigned"
    resp = _raw_send(transport, request)
    assert (resp.status_code, resp.json()["Code"]) == (400, "IncompleteSignature")

    request = sender.build_request(phone="13800138000", template="login_code", params=params)
    request.headers["x-acs-action"] = "SendBatchSms"
    assert _raw_send(transport, request).json()["Code"] == "InvalidAction.NotFound"
    assert accounts.sent == []


def _aliyun_code(reply: dict) -> str:
    return reply["Code"]


def _tencent_code(reply: dict) -> str:
    """The request-level error's code, else the (only) number's status code."""
    r = reply["Response"]
    return r["Error"]["Code"] if "Error" in r else r["SendStatusSet"][0]["Code"]


@pytest.mark.parametrize(("make", "expired", "window", "code_of", "ok"), [
    pytest.param(aliyun_sender, "InvalidTimeStamp.Expired", 15, _aliyun_code, "OK", id="aliyun"),
    pytest.param(tencent_sender, "AuthFailure.SignatureExpire", 5, _tencent_code, "Ok", id="tencent"),
])
def test_stale_timestamp_is_rejected(transport: InProcessTransport, accounts: SimAccounts, make, expired, window,
                                     code_of, ok) -> None:
    """Each vendor's clock window (Aliyun 15 min, Tencent 5 min): a request signed just outside it is
    refused with the vendor's code, one just inside is sent."""
    sender = make(transport)
    accounts.clock = lambda: utcnow() + dt.timedelta(minutes=20)
    with pytest.raises(SmsError, match=expired):
        sender.send(phone="13800138000", template="login_code", params={"code": "123456"})
    accounts.clock = utcnow
    stale = sender.build_request(phone="13800138000", template="login_code", params={"code": "1"},
                                 now=utcnow() - dt.timedelta(minutes=window + 1))
    assert code_of(_raw_send(transport, stale).json()) == expired
    fresh = sender.build_request(phone="13800138000", template="login_code", params={"code": "1"},
                                 now=utcnow() - dt.timedelta(minutes=window - 1))
    assert code_of(_raw_send(transport, fresh).json()) == ok
    assert len(accounts.sent) == 1


def test_aliyun_replayed_nonce_is_rejected(transport: InProcessTransport, accounts: SimAccounts) -> None:
    request = aliyun_sender(transport).build_request(phone="13800138000", template="login_code",
                                                     params={"code": "123456"})
    assert _raw_send(transport, request).json()["Code"] == "OK"
    replay = _raw_send(transport, request)
    assert (replay.status_code, replay.json()["Code"]) == (400, "SignatureNonceUsed")
    assert len(accounts.sent) == 1


def test_aliyun_malformed_phone(transport: InProcessTransport, accounts: SimAccounts) -> None:
    sender = aliyun_sender(transport)
    # Signed correctly, but not a mobile number: the vendor's business error (HTTP 200, Code != OK).
    resp = _raw_send(transport, sender.build_request(phone="12345", template="login_code", params={"code": "1"}))
    assert resp.status_code == 200
    assert set(resp.json()) >= {"RequestId", "Code", "Message"} and resp.json()["Code"] == "isv.MOBILE_NUMBER_ILLEGAL"
    # The sender refuses it locally, before any request.
    with pytest.raises(SmsError, match="11-digit"):
        aliyun_sender(httpx.MockTransport(lambda r: pytest.fail("no request expected"))).send(
            phone="12345", template="login_code", params={"code": "1"})
    assert accounts.sent == []


def test_aliyun_error_shapes_and_transport_failures() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(SmsError, match="transport error: ConnectError"):
        aliyun_sender(httpx.MockTransport(refuse)).send(phone="13800138000", template="login_code",
                                                        params={"code": "123456"})
    with pytest.raises(SmsError, match="HTTP 502 with a non-JSON-object body"):
        aliyun_sender(httpx.MockTransport(lambda r: httpx.Response(502, text="bad gateway"))).send(
            phone="13800138000", template="login_code", params={"code": "123456"})
    busy = {"RequestId": "R1", "Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "limit for 123456 reached"}
    with pytest.raises(SmsError) as err:
        aliyun_sender(httpx.MockTransport(lambda r: httpx.Response(200, json=busy))).send(
            phone="13800138000", template="login_code", params={"code": "123456"})
    assert "Code=isv.BUSINESS_LIMIT_CONTROL" in str(err.value) and "123456" not in str(err.value)
    with pytest.raises(SmsError, match="no TemplateCode configured"):
        AliyunSmsSender(access_key_id="a", access_key_secret="b", sign_name="c", templates={}).send(
            phone="13800138000", template="login_code", params={"code": "1"})


def test_simulator_verifies_an_independently_signed_aliyun_request(transport: InProcessTransport,
                                                                   accounts: SimAccounts) -> None:
    """A request signed here by hand, SDK-style (it also signs accept and user-agent), is accepted."""
    date = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    query = "PhoneNumbers=13800138000&SignName=Test&TemplateCode=SMS_7&TemplateParam=%7B%22code%22%3A%2242%22%7D"
    headers = {
        "accept": "application/json", "host": "sim.test", "user-agent": "AlibabaCloud (hand-made)",
        "x-acs-action": "SendSms", "x-acs-content-sha256": EMPTY_SHA256, "x-acs-date": date,
        "x-acs-signature-nonce": "hand-nonce-1", "x-acs-version": "2017-05-25",
    }
    canonical = ("POST\n/\n" + query + "\n" + "".join(f"{k}:{v}\n" for k, v in headers.items()) + "\n"
                 + ";".join(headers) + "\n" + EMPTY_SHA256)
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(AK_SECRET.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = f"ACS3-HMAC-SHA256 Credential={AK_ID},SignedHeaders={';'.join(list(headers))}," \
                               f"Signature={signature}"
    resp = _raw_send(transport, httpx.Request("POST", f"{BASE}/aliyun/?{query}", headers=headers))
    assert resp.status_code == 200 and resp.json()["Code"] == "OK", resp.text
    assert accounts.sent[0].params == {"code": "42"} and accounts.sent[0].template_code == "SMS_7"


# ------------------------------------------------------------------------------------------------
# Tencent sender <-> simulator


def test_tencent_delivers_with_plus86_and_simulator_records(transport: InProcessTransport,
                                                            accounts: SimAccounts) -> None:
    sender = tencent_sender(transport)
    result = sender.send(phone="+86 138-0013-8000", template="new_order",
                         params={"order_type": "洗车", "order_no": "GC20260101"})
    assert len(accounts.sent) == 1
    sms = accounts.sent[0]
    assert (sms.vendor, sms.phone, sms.sign_name, sms.template_code, sms.params, sms.key_id) == (
        "tencent", "+8613800138000", SIGN, "2001002", ("GC20260101", "洗车"), TC_ID)
    assert result.provider_ref == sms.provider_ref


def test_tencent_wrong_secret_is_rejected(transport: InProcessTransport, accounts: SimAccounts) -> None:
    with pytest.raises(SmsError, match="Code=AuthFailure.SignatureFailure") as err:
        tencent_sender(transport, secret_key="wrong").send(phone="13800138000", template="login_code",
                                                           params={"code": "864213"})
    assert "864213" not in str(err.value)
    assert accounts.sent == []


def test_tencent_unknown_secret_id_is_rejected(transport: InProcessTransport, accounts: SimAccounts) -> None:
    with pytest.raises(SmsError, match="Code=AuthFailure.SecretIdNotFound"):
        tencent_sender(transport, secret_id="AKIDunknown").send(phone="13800138000", template="login_code",
                                                                params={"code": "123456"})
    assert accounts.sent == []


def test_tencent_tampered_request_is_rejected(transport: InProcessTransport, accounts: SimAccounts) -> None:
    def change_params(r: httpx.Request) -> httpx.Request:
        payload = json.loads(r.content)
        payload["TemplateParamSet"] = ["000000"]
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {k: v for k, v in r.headers.items() if k != "content-length"}
        return httpx.Request(r.method, r.url, headers=headers, content=body)

    def change_host(r: httpx.Request) -> httpx.Request:
        headers = dict(r.headers)
        headers["host"] = "sms.tencentcloudapi.com"
        return httpx.Request(r.method, r.url, headers=headers, content=r.content)

    for rewrite in (change_params, change_host):
        with pytest.raises(SmsError, match="AuthFailure.SignatureFailure"):
            tencent_sender(TamperingTransport(transport, rewrite)).send(
                phone="13800138000", template="login_code", params={"code": "123456"})
    assert accounts.sent == []




def test_tencent_malformed_phone_and_errors(transport: InProcessTransport, accounts: SimAccounts) -> None:
    sender = tencent_sender(transport)
    resp = _raw_send(transport, sender.build_request(phone="12345", template="login_code", params={"code": "1"}))
    assert resp.status_code == 200
    status = resp.json()["Response"]["SendStatusSet"][0]
    assert (status["Code"], status["PhoneNumber"], status["SerialNo"]) == (
        "InvalidParameterValue.IncorrectPhoneNumber", "+8612345", "")
    with pytest.raises(SmsError, match="Code=UnsupportedRegion"):
        tencent_sender(transport, region="ap-shanghai").send(phone="13800138000", template="login_code",
                                                             params={"code": "1"})
    # A per-number failure reported by the vendor becomes an SmsError too.
    reply = {"Response": {"SendStatusSet": [{"SerialNo": "", "PhoneNumber": "+8613800138000",
                                             "Code": "LimitExceeded.PhoneNumberDailyLimit", "Message": "limit"}],
                          "RequestId": "r"}}
    with pytest.raises(SmsError, match="Code=LimitExceeded.PhoneNumberDailyLimit"):
        tencent_sender(httpx.MockTransport(lambda r: httpx.Response(200, json=reply))).send(
            phone="13800138000", template="login_code", params={"code": "1"})
    assert accounts.sent == []


def test_simulator_verifies_an_independently_signed_tencent_request(transport: InProcessTransport,
                                                                    accounts: SimAccounts) -> None:
    ts = int(utcnow().timestamp())
    date = dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d")
    body = json.dumps({"PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400000001", "SignName": "Test",
                       "TemplateId": "9", "TemplateParamSet": ["42"]}).encode()
    canonical = ("POST\n/\n\ncontent-type:application/json\nhost:sim.test\n\ncontent-type;host\n"
                 + hashlib.sha256(body).hexdigest())
    to_sign = f"TC3-HMAC-SHA256\n{ts}\n{date}/sms/tc3_request\n" + hashlib.sha256(canonical.encode()).hexdigest()
    key = ("TC3" + TC_KEY).encode()
    for part in (date, "sms", "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "Host": "sim.test", "X-TC-Action": "SendSms",
               "X-TC-Version": "2021-01-11", "X-TC-Timestamp": str(ts), "X-TC-Region": "ap-guangzhou",
               "Authorization": f"TC3-HMAC-SHA256 Credential={TC_ID}/{date}/sms/tc3_request, "
                                f"SignedHeaders=content-type;host, Signature={signature}"}
    resp = _raw_send(transport, httpx.Request("POST", f"{BASE}/tencent/", headers=headers, content=body))
    assert resp.json()["Response"]["SendStatusSet"][0]["Code"] == "Ok", resp.text
    assert accounts.sent[0].params == ("42",) and accounts.sent[0].phone == "+8613800138000"


def test_tencent_official_sdk_passes_the_simulator(app: FastAPI, accounts: SimAccounts) -> None:
    """Independent oracle: Tencent's own SDK (only if installed; not a project requirement)."""
    sms_client_async = pytest.importorskip("tencentcloud.sms.v20210111.sms_client_async")
    models = pytest.importorskip("tencentcloud.sms.v20210111.models")
    credential = pytest.importorskip("tencentcloud.common.credential")
    profile_mod = pytest.importorskip("tencentcloud.common.profile.client_profile")
    http_profile_mod = pytest.importorskip("tencentcloud.common.profile.http_profile")

    async def at_vendor_root(scope: dict[str, Any], receive: Any, send: Any) -> None:  # SDK posts to "/"
        if scope["type"] == "http":
            scope = dict(scope, path="/sim/sms/tencent" + scope["path"],
                         raw_path=b"/sim/sms/tencent" + scope.get("raw_path", b"/"))
        await app(scope, receive, send)

    async def run() -> str:
        profile = profile_mod.ClientProfile(httpProfile=http_profile_mod.HttpProfile(
            protocol="http", endpoint="sms.tencentcloudapi.com"))
        client = sms_client_async.SmsClient(credential.Credential(TC_ID, TC_KEY), "ap-guangzhou", profile)
        await client.http_client.aclose()
        client.http_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=at_vendor_root))
        request = models.SendSmsRequest()
        request.from_json_string(json.dumps({
            "PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400000001", "SignName": SIGN,
            "TemplateId": "2001001", "TemplateParamSet": ["123456"]}))
        try:
            response = await client.SendSms(request)
        finally:
            await client.close()
        return response.SendStatusSet[0].Code

    assert asyncio.run(run()) == "Ok"
    assert accounts.sent[0].params == ("123456",) and accounts.sent[0].phone == "+8613800138000"

