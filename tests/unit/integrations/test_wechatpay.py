"""WeChat Pay v3: the client against the simulator in-process, the crypto rules, the bill parser.

The client (sync) reaches the ASGI simulator through :class:`InProcessTransport`. The simulator
delivers its notifies in-process too, into a small "merchant app" whose notify routes use the
client's :meth:`parse_notify`, as the real app will. Client and simulator share ``crypto.py``, so
the messages are also checked against hand-written strings, and, when the ``wechatpayv3`` SDK is
installed (a test-only dependency), against an independent implementation.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import gzip
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import polars as pl
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.integrations.wechatpay import crypto
from gc_admin.integrations.wechatpay.billing import (
    TradeBillError,
    parse_trade_bill,
    parse_trade_bill_summary,
    read_trade_bill,
)
from gc_admin.integrations.wechatpay.client import WxPayClient, WxPayError, WxPayNotifyError
from gc_admin.integrations.wechatpay.simulator import (
    DevKeys,
    SimError,
    WxPaySimState,
    build_trade_bill,
    build_wxpay_simulator,
    finish_refund,
    load_or_create_dev_keys,
    make_notify,
    pay_order,
    sim_state_for,
)
from tests.support import InProcessTransport

MCHID = "1900000109"
APPID = "wxdemo0000000000"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
HOST = "http://sim.test"
BASE = f"{HOST}/sim/wechatpay"
NOTIFY_URL = "http://merchant.test/api/v1/pay/wechat/notify"
REFUND_NOTIFY_URL = "http://merchant.test/api/v1/pay/wechat/refund-notify"

KEYS = DevKeys.generate()
OTHER = DevKeys.generate()  # a second, unrelated set of keys


# --------------------------------------------------------------------------------------------------
# fixtures


class Inbox:
    """The merchant side of notifies: a FastAPI app whose routes verify with ``client``."""

    def __init__(self) -> None:
        self.client: WxPayClient | None = None
        self.accepted: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        app = FastAPI()

        async def receive(request: Request) -> Response:
            body = await request.body()
            assert self.client is not None
            try:
                self.accepted.append(self.client.parse_notify(request.headers, body))
            except WxPayNotifyError as exc:
                self.rejected.append(str(exc))
                return JSONResponse({"code": "FAIL", "message": "failed"}, status_code=400)
            return Response(status_code=204)

        app.add_api_route("/api/v1/pay/wechat/notify", receive, methods=["POST"])
        app.add_api_route("/api/v1/pay/wechat/refund-notify", receive, methods=["POST"])
        self._transport = InProcessTransport(app)

    def deliver(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        with httpx.Client(transport=self._transport) as http:
            return http.post(url, headers=dict(headers), content=body).status_code


def make_client(transport: httpx.BaseTransport | None, *, keys: DevKeys = KEYS, base_url: str = BASE,
                **overrides: Any) -> WxPayClient:
    kwargs: dict[str, Any] = dict(
        mchid=MCHID, appid=APPID, merchant_private_key_pem=keys.merchant_private_key_pem,
        merchant_serial_no=keys.merchant_serial_no, apiv3_key=keys.apiv3_key,
        platform_public_key_pem=keys.platform_public_key_pem, platform_public_key_id=keys.platform_public_key_id,
        notify_url=NOTIFY_URL, refund_notify_url=REFUND_NOTIFY_URL, base_url=base_url, transport=transport,
    )
    kwargs.update(overrides)
    return WxPayClient(**kwargs)


def make_app(state: WxPaySimState, prefix: str = "/sim/wechatpay") -> FastAPI:
    app = FastAPI()
    app.include_router(build_wxpay_simulator(state), prefix=prefix)
    return app


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def state(inbox: Inbox) -> WxPaySimState:
    return sim_state_for(KEYS, mchid=MCHID, appid=APPID, deliver=inbox.deliver)


@pytest.fixture
def transport(state: WxPaySimState) -> InProcessTransport:
    return InProcessTransport(make_app(state))


@pytest.fixture
def client(transport: InProcessTransport, inbox: Inbox) -> Iterator[WxPayClient]:
    c = make_client(transport)
    inbox.client = c
    yield c
    c.close()


class RewritingTransport(httpx.BaseTransport):
    """Changes requests after the client signed them, or answers before the client checks them."""

    def __init__(self, inner: httpx.BaseTransport, *,
                 request: Callable[[httpx.Request], httpx.Request] | None = None,
                 response: Callable[[httpx.Request, httpx.Response], httpx.Response] | None = None) -> None:
        self._inner, self._request, self._response = inner, request, response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._request is not None:
            request = self._request(request)
        response = self._inner.handle_request(request)
        return self._response(request, response) if self._response is not None else response


def prepay(client: WxPayClient, out_trade_no: str = "GC20260101000001", amount_fen: int = 12345, **kw: Any) -> str:
    return client.jsapi_prepay(out_trade_no=out_trade_no, description="电影券 x3", amount_fen=amount_fen,
                               payer_openid=OPENID, **kw)


def paid_order(client: WxPayClient, state: WxPaySimState, out_trade_no: str = "GC20260101000001",
               amount_fen: int = 12345) -> str:
    pay_order(state, prepay(client, out_trade_no, amount_fen), deliver=False)
    return out_trade_no


# --------------------------------------------------------------------------------------------------
# crypto: the messages, written out by hand


def test_request_message_and_authorization_format() -> None:
    msg = crypto.request_message("post", "/v3/pay/transactions/jsapi", 1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242",
                                 '{"a":1}')
    assert msg == 'POST\n/v3/pay/transactions/jsapi\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{"a":1}\n'
    assert crypto.request_message("GET", "/v3/certificates", "1", "n") == "GET\n/v3/certificates\n1\nn\n\n"
    key = crypto.load_private_key(KEYS.merchant_private_key_pem)
    header = crypto.sign_request(key, method="GET", url="/v3/x?y=1", body="", mchid=MCHID, serial_no="ABC",
                                 timestamp=1554208460, nonce_str="N1")
    assert header.startswith('WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="N1",signature="')
    assert header.endswith('",timestamp="1554208460",serial_no="ABC"')
    fields = crypto.parse_authorization(header)
    assert fields is not None and fields["serial_no"] == "ABC" and fields["timestamp"] == "1554208460"
    pub = crypto.load_public_key(KEYS.merchant_public_key_pem)
    assert crypto.rsa_verify(pub, "GET\n/v3/x?y=1\n1554208460\nN1\n\n", fields["signature"])
    assert crypto.parse_authorization("Bearer x") is None
    assert crypto.parse_authorization('WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n"') is None


def test_response_and_pay_sign_messages() -> None:
    assert crypto.response_message("1", "N", "") == "1\nN\n\n"
    assert crypto.response_message(2, "N", b'{"x":"\xe4\xb8\xad"}') == '2\nN\n{"x":"中"}\n'
    assert crypto.pay_sign_message("wx1", "1414561699", "5K8264", "prepay_id=wx2") == \
        "wx1\n1414561699\n5K8264\nprepay_id=wx2\n"


def test_rsa_signature_is_deterministic_pkcs1v15_sha256() -> None:
    key = crypto.load_private_key(KEYS.merchant_private_key_pem)
    a, b = crypto.rsa_sign(key, "hello\n"), crypto.rsa_sign(key, b"hello\n")
    assert a == b
    key.public_key().verify(base64.b64decode(a), b"hello\n", padding.PKCS1v15(), hashes.SHA256())
    assert not crypto.rsa_verify(key.public_key(), "hello!\n", a)
    assert not crypto.rsa_verify(key.public_key(), "hello\n", "not base64!")


def test_aes_gcm_roundtrip_and_failures() -> None:
    res = crypto.encrypt_resource(KEYS.apiv3_key, original_type="transaction", plaintext='{"a":1}', nonce="abcdefghijkl")
    assert res["associated_data"] == "transaction" and res["algorithm"] == "AEAD_AES_256_GCM"
    plain = crypto.aes_gcm_decrypt(KEYS.apiv3_key, nonce=res["nonce"], associated_data="transaction",
                                   ciphertext=res["ciphertext"])
    assert plain == b'{"a":1}'
    with pytest.raises(crypto.WxPayCryptoError):
        crypto.aes_gcm_decrypt(OTHER.apiv3_key, nonce=res["nonce"], associated_data="transaction",
                               ciphertext=res["ciphertext"])
    with pytest.raises(crypto.WxPayCryptoError):
        crypto.aes_gcm_decrypt(KEYS.apiv3_key, nonce=res["nonce"], associated_data="refund",
                               ciphertext=res["ciphertext"])
    with pytest.raises(crypto.WxPayCryptoError):
        crypto.aes_gcm_decrypt("short", nonce="n", associated_data="", ciphertext=res["ciphertext"])


def test_key_loading() -> None:
    with pytest.raises(crypto.WxPayCryptoError):
        crypto.load_private_key("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(crypto.WxPayCryptoError):
        crypto.load_public_key(b"garbage")
    key = crypto.load_private_key(KEYS.merchant_private_key_pem)
    assert crypto.public_key_pem(key) == KEYS.merchant_public_key_pem


# --------------------------------------------------------------------------------------------------
# prepay, paySign, query, close


def test_prepay_pay_query(client: WxPayClient, state: WxPaySimState, inbox: Inbox) -> None:
    expire = utcnow() + dt.timedelta(minutes=30)
    prepay_id = prepay(client, time_expire=expire, attach="order:42")
    assert prepay_id.startswith("wx")
    order = client.query_order("GC20260101000001")
    assert order["trade_state"] == "NOTPAY" and order["amount"]["total"] == 12345
    assert "transaction_id" not in order
    sent = state.orders["GC20260101000001"].request
    assert sent["time_expire"] == expire.astimezone(SHANGHAI).isoformat(timespec="seconds")
    assert sent["time_expire"].endswith("+08:00") and sent["notify_url"] == NOTIFY_URL

    notify = pay_order(state, prepay_id)
    assert notify is not None and notify.status == 204
    assert len(inbox.accepted) == 1
    event = inbox.accepted[0]
    assert event["event_type"] == "TRANSACTION.SUCCESS" and event["id"]
    resource = event["resource"]
    assert resource["out_trade_no"] == "GC20260101000001" and resource["trade_state"] == "SUCCESS"
    assert resource["amount"]["total"] == 12345 and type(resource["amount"]["total"]) is int
    assert resource["attach"] == "order:42" and resource["payer"]["openid"] == OPENID

    order = client.query_order("GC20260101000001")
    assert order["trade_state"] == "SUCCESS" and order["transaction_id"] == resource["transaction_id"]
    with pytest.raises(WxPayError) as err:
        client.query_order("GC_UNKNOWN_0001")
    assert err.value.status == 404 and err.value.code == "ORDER_NOT_EXIST" and err.value.verified


def test_prepay_same_out_trade_no(client: WxPayClient, state: WxPaySimState) -> None:
    first = prepay(client)
    assert prepay(client) == first  # a retry with the same parameters: the same order
    with pytest.raises(WxPayError) as err:
        prepay(client, amount_fen=1)
    assert err.value.status == 400 and err.value.code == "INVALID_REQUEST"
    pay_order(state, first, deliver=False)
    with pytest.raises(WxPayError) as err:
        prepay(client)
    assert err.value.code == "ORDERPAID"


def test_prepay_validates_arguments(client: WxPayClient) -> None:
    with pytest.raises(TypeError):
        prepay(client, amount_fen=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        prepay(client, amount_fen=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        prepay(client, amount_fen=0)
    with pytest.raises(ValueError):
        prepay(client, out_trade_no="short")
    with pytest.raises(ValueError):
        prepay(client, time_expire=dt.datetime(2030, 1, 1))  # naive


def test_simulator_param_errors(client: WxPayClient, transport: InProcessTransport) -> None:
    def post(body: dict[str, Any]) -> httpx.Response:
        return httpx.Client(transport=transport).send(client.build_request("POST", "/v3/pay/transactions/jsapi",
                                                                            body=body))

    good = {"appid": APPID, "mchid": MCHID, "description": "x", "out_trade_no": "GC123456", "notify_url": NOTIFY_URL,
            "amount": {"total": 100, "currency": "CNY"}, "payer": {"openid": OPENID}}
    assert post(good).status_code == 200
    for change, code in [
        ({"amount": {"total": 1.0}}, "PARAM_ERROR"),
        ({"amount": {"total": "100"}}, "PARAM_ERROR"),
        ({"amount": {"total": 0}}, "PARAM_ERROR"),
        ({"payer": {}}, "PARAM_ERROR"),
        ({"notify_url": "http://merchant.test/notify?x=1"}, "PARAM_ERROR"),
        ({"out_trade_no": "bad no!"}, "PARAM_ERROR"),
        ({"appid": "wxother"}, "APPID_MCHID_NOT_MATCH"),
        ({"time_expire": "2001-01-01T00:00:00+08:00"}, "PARAM_ERROR"),
    ]:
        response = post({**good, "out_trade_no": "GC654321", **change})
        assert response.status_code == 400, change
        assert response.json()["code"] == code, change


def test_pay_sign_verifies_with_merchant_public_key(client: WxPayClient) -> None:
    prepay_id = prepay(client)
    params = client.mini_program_pay_params(prepay_id)
    assert params["package"] == f"prepay_id={prepay_id}" and params["signType"] == "RSA"
    assert params["appId"] == APPID and params["timeStamp"].isdigit() and len(params["nonceStr"]) <= 32
    message = f"{APPID}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    pub = crypto.load_public_key(KEYS.merchant_public_key_pem)
    pub.verify(base64.b64decode(params["paySign"]), message.encode(), padding.PKCS1v15(), hashes.SHA256())
    fixed = client.mini_program_pay_params(prepay_id, timestamp="1700000000", nonce_str="N" * 32)
    assert fixed == client.mini_program_pay_params(prepay_id, timestamp="1700000000", nonce_str="N" * 32)


def test_close_order(client: WxPayClient, state: WxPaySimState) -> None:
    prepay_id = prepay(client)
    client.close_order("GC20260101000001")
    assert client.query_order("GC20260101000001")["trade_state"] == "CLOSED"
    with pytest.raises(SimError) as err:
        pay_order(state, prepay_id)
    assert err.value.code == "ORDER_CLOSED"
    with pytest.raises(WxPayError) as werr:
        prepay(client)
    assert werr.value.code == "ORDER_CLOSED"
    paid_order(client, state, "GC20260101000002")
    with pytest.raises(WxPayError) as werr:
        client.close_order("GC20260101000002")
    assert werr.value.code == "ORDERPAID"


def test_time_expire_is_enforced(client: WxPayClient, state: WxPaySimState) -> None:
    prepay_id = prepay(client, time_expire=utcnow() + dt.timedelta(minutes=1))
    state.clock = lambda: utcnow() + dt.timedelta(minutes=2)
    with pytest.raises(SimError) as err:
        pay_order(state, prepay_id)
    assert err.value.code == "ORDER_CLOSED"


def test_http_dev_helpers(client: WxPayClient, transport: InProcessTransport, inbox: Inbox) -> None:
    http = httpx.Client(transport=transport, base_url=BASE)
    prepay_id = prepay(client)
    answer = http.post("/_pay", json={"prepay_id": prepay_id})
    assert answer.status_code == 200, answer.text
    assert answer.json()["trade_state"] == "SUCCESS" and answer.json()["notify_status"] == 204
    assert http.post("/_pay", json={"prepay_id": prepay_id}).json()["code"] == "ORDERPAID"
    assert http.post("/_pay", json={"prepay_id": "wx_nope"}).status_code == 404
    client.refund(out_refund_no="RF1", out_trade_no="GC20260101000001", refund_fen=100, total_fen=12345)
    answer = http.post("/_refund", json={"out_refund_no": "RF1"})
    assert answer.json() == {"out_refund_no": "RF1", "status": "SUCCESS", "notify_status": 204}
    assert [e["event_type"] for e in inbox.accepted] == ["TRANSACTION.SUCCESS", "REFUND.SUCCESS"]


# --------------------------------------------------------------------------------------------------
# notifies


@pytest.fixture
def paid_notify(client: WxPayClient, state: WxPaySimState) -> tuple[dict[str, str], bytes]:
    notify = pay_order(state, prepay(client))
    assert notify is not None
    return notify.headers, notify.body


def test_notify_good_and_replayable(client: WxPayClient, paid_notify: tuple[dict[str, str], bytes]) -> None:
    headers, body = paid_notify
    first = client.parse_notify(headers, body)
    assert first == client.parse_notify({k.lower(): v for k, v in headers.items()}, body)  # a replay parses alike
    assert first["resource"]["amount"]["total"] == 12345 and first["original_type"] == "transaction"


def test_notify_bad_signature(client: WxPayClient, paid_notify: tuple[dict[str, str], bytes]) -> None:
    headers, body = paid_notify
    forged = {**headers, "Wechatpay-Signature": crypto.rsa_sign(
        crypto.load_private_key(OTHER.platform_private_key_pem),
        crypto.response_message(headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], body))}
    with pytest.raises(WxPayNotifyError, match="does not verify"):
        client.parse_notify(forged, body)
    with pytest.raises(WxPayNotifyError, match="does not verify"):
        client.parse_notify({**headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]},
                            body)
    with pytest.raises(WxPayNotifyError, match="missing"):
        client.parse_notify({k: v for k, v in headers.items() if k != "Wechatpay-Signature"}, body)
    with pytest.raises(WxPayNotifyError, match="does not verify"):
        client.parse_notify(headers, body.replace(b'"TRANSACTION.SUCCESS"', b'"REFUND.SUCCESS"'))


def test_notify_stale_timestamp(client: WxPayClient, state: WxPaySimState,
                                paid_notify: tuple[dict[str, str], bytes]) -> None:
    headers, body = paid_notify
    sent = int(headers["Wechatpay-Timestamp"])
    assert client.parse_notify(headers, body, now=sent + 300)
    with pytest.raises(WxPayNotifyError, match="off"):
        client.parse_notify(headers, body, now=sent + 301)
    with pytest.raises(WxPayNotifyError, match="off"):
        client.parse_notify(headers, body, now=sent - 301)
    old_headers, old_body = make_notify(state, "TRANSACTION.SUCCESS", {"mchid": MCHID, "amount": {"total": 1}},
                                        timestamp=int(utcnow().timestamp()) - 6 * 60)
    with pytest.raises(WxPayNotifyError, match="off"):
        client.parse_notify(old_headers, old_body)


def test_notify_wrong_serial(client: WxPayClient, paid_notify: tuple[dict[str, str], bytes]) -> None:
    headers, body = paid_notify
    with pytest.raises(WxPayNotifyError, match="Wechatpay-Serial"):
        client.parse_notify({**headers, "Wechatpay-Serial": OTHER.platform_public_key_id}, body)


def test_notify_tampered_ciphertext(client: WxPayClient, state: WxPaySimState,
                                    paid_notify: tuple[dict[str, str], bytes]) -> None:
    headers, body = paid_notify
    envelope = json.loads(body)
    raw = bytearray(base64.b64decode(envelope["resource"]["ciphertext"]))
    raw[5] ^= 0x01
    envelope["resource"]["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    tampered = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    with pytest.raises(WxPayNotifyError, match="does not verify"):  # the signature covers the ciphertext
        client.parse_notify(headers, tampered)
    # Even re-signed with the platform key, AES-GCM's tag catches the change.
    resigned = {**headers, **_sign_like_wechat(state, tampered)}
    with pytest.raises(WxPayNotifyError, match="decryption failed"):
        client.parse_notify(resigned, tampered)


def _sign_like_wechat(state: WxPaySimState, body: bytes) -> dict[str, str]:
    from gc_admin.integrations.wechatpay.simulator import sign_headers

    return sign_headers(state, body)


def test_notify_wrong_apiv3_key(transport: InProcessTransport, paid_notify: tuple[dict[str, str], bytes]) -> None:
    headers, body = paid_notify
    other = make_client(transport, apiv3_key=OTHER.apiv3_key)
    with pytest.raises(WxPayNotifyError, match="decryption failed"):
        other.parse_notify(headers, body)


def test_notify_for_another_merchant(client: WxPayClient, state: WxPaySimState) -> None:
    headers, body = make_notify(state, "TRANSACTION.SUCCESS", {"mchid": "1999999999", "appid": APPID})
    with pytest.raises(WxPayNotifyError, match="mchid"):
        client.parse_notify(headers, body)


def test_inbox_rejects_a_forged_delivery(client: WxPayClient, state: WxPaySimState, inbox: Inbox) -> None:
    headers, body = make_notify(state, "TRANSACTION.SUCCESS", {"mchid": MCHID, "amount": {"total": 1}})
    assert inbox.deliver(NOTIFY_URL, {**headers, "Wechatpay-Nonce": "x"}, body) == 400
    assert inbox.deliver(NOTIFY_URL, headers, body) == 204
    assert len(inbox.rejected) == 1 and len(inbox.accepted) == 1


# --------------------------------------------------------------------------------------------------
# refunds


def test_refund_idempotent_by_out_refund_no(client: WxPayClient, state: WxPaySimState, inbox: Inbox) -> None:
    paid_order(client, state)
    first = client.refund(out_refund_no="RF20260101000001", out_trade_no="GC20260101000001", refund_fen=2345,
                          total_fen=12345, reason="用户申请退款")
    assert first["status"] == "PROCESSING" and first["amount"]["refund"] == 2345
    again = client.refund(out_refund_no="RF20260101000001", out_trade_no="GC20260101000001", refund_fen=2345,
                          total_fen=12345, reason="用户申请退款")
    assert again["refund_id"] == first["refund_id"]
    assert len(state.refunds) == 1 and state.refunded("GC20260101000001") == 2345
    with pytest.raises(WxPayError) as err:
        client.refund(out_refund_no="RF20260101000001", out_trade_no="GC20260101000001", refund_fen=2346,
                      total_fen=12345)
    assert err.value.status == 400 and err.value.code == "INVALID_REQUEST"
    assert client.query_refund("RF20260101000001")["status"] == "PROCESSING"
    assert client.query_order("GC20260101000001")["trade_state"] == "REFUND"

    notify = finish_refund(state, "RF20260101000001")
    assert notify is not None and notify.url == REFUND_NOTIFY_URL and notify.status == 204
    event = inbox.accepted[-1]
    assert event["event_type"] == "REFUND.SUCCESS" and event["original_type"] == "refund"
    assert event["resource"]["refund_status"] == "SUCCESS" and event["resource"]["amount"]["refund"] == 2345
    refund = client.query_refund("RF20260101000001")
    assert refund["status"] == "SUCCESS" and refund["success_time"]
    # A retry after success still returns the one refund.
    assert client.refund(out_refund_no="RF20260101000001", out_trade_no="GC20260101000001", refund_fen=2345,
                         total_fen=12345)["status"] == "SUCCESS"
    assert len(state.refunds) == 1


def test_dev_simulator_finishes_a_refund_by_itself_once(client: WxPayClient, state: WxPaySimState,
                                                        inbox: Inbox) -> None:
    """Issue 10: in dev (GC_SIM_REFUND_SECONDS) the simulator ends a refund by itself, as WeChat Pay does — SUCCESS and
    one signed REFUND.SUCCESS notify the merchant verifies — so a demo refund completes without a test helper."""
    import time

    state.auto_refund_seconds = 0.2
    paid_order(client, state)
    first = client.refund(out_refund_no="RF20260101000009", out_trade_no="GC20260101000001", refund_fen=345,
                          total_fen=12345)
    assert first["status"] == "PROCESSING"
    client.refund(out_refund_no="RF20260101000009", out_trade_no="GC20260101000001", refund_fen=345,
                  total_fen=12345)  # a retried request starts no second timer
    deadline = time.monotonic() + 10
    while client.query_refund("RF20260101000009")["status"] == "PROCESSING" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.query_refund("RF20260101000009")["status"] == "SUCCESS"
    time.sleep(0.5)  # long enough for a wrongly started second timer to fire
    events = [e for e in inbox.accepted if e["event_type"].startswith("REFUND.")]
    assert [(e["event_type"], e["resource"]["out_refund_no"]) for e in events] == [
        ("REFUND.SUCCESS", "RF20260101000009")]
    assert not inbox.rejected


def test_dev_refund_delay_setting() -> None:
    from gc_admin.config import ConfigError, load_settings

    assert load_settings({"GC_ENV": "dev"}).sim_refund_seconds == 3
    assert load_settings({"GC_ENV": "test"}).sim_refund_seconds is None
    assert load_settings({"GC_ENV": "dev", "GC_SIM_REFUND_SECONDS": "0"}).sim_refund_seconds is None
    assert load_settings({"GC_ENV": "dev", "GC_SIM_REFUND_SECONDS": "1.5"}).sim_refund_seconds == 1.5
    for bad in ("soon", "-1", "99999"):
        with pytest.raises(ConfigError, match="GC_SIM_REFUND_SECONDS"):
            load_settings({"GC_ENV": "dev", "GC_SIM_REFUND_SECONDS": bad})


def test_refund_over_paid_amount_rejected(client: WxPayClient, state: WxPaySimState) -> None:
    paid_order(client, state)
    with pytest.raises(ValueError):
        client.refund(out_refund_no="RF1", out_trade_no="GC20260101000001", refund_fen=12346, total_fen=12345)
    client.refund(out_refund_no="RF1", out_trade_no="GC20260101000001", refund_fen=12000, total_fen=12345)
    with pytest.raises(WxPayError) as err:
        client.refund(out_refund_no="RF2", out_trade_no="GC20260101000001", refund_fen=346, total_fen=12345)
    assert err.value.code == "NOT_ENOUGH"
    client.refund(out_refund_no="RF3", out_trade_no="GC20260101000001", refund_fen=345, total_fen=12345)
    finish_refund(state, "RF3", status="CLOSED")  # a closed refund gives its amount back
    client.refund(out_refund_no="RF4", out_trade_no="GC20260101000001", refund_fen=345, total_fen=12345)
    with pytest.raises(WxPayError) as err:
        client.refund(out_refund_no="RF5", out_trade_no="GC20260101000001", refund_fen=1, total_fen=12345)
    assert err.value.code == "NOT_ENOUGH"
    with pytest.raises(WxPayError) as err:  # total must be the order's amount
        client.refund(out_refund_no="RF6", out_trade_no="GC20260101000001", refund_fen=1, total_fen=12344)
    assert err.value.code == "INVALID_REQUEST"


def test_refund_unpaid_or_unknown_order(client: WxPayClient) -> None:
    prepay(client)
    with pytest.raises(WxPayError) as err:
        client.refund(out_refund_no="RF1", out_trade_no="GC20260101000001", refund_fen=1, total_fen=12345)
    assert err.value.code == "INVALID_REQUEST"
    with pytest.raises(WxPayError) as err:
        client.refund(out_refund_no="RF1", out_trade_no="GC_NO_SUCH_ORDER", refund_fen=1, total_fen=1)
    assert err.value.status == 404
    with pytest.raises(WxPayError) as err:
        client.query_refund("RF_NONE")
    assert err.value.status == 404


# --------------------------------------------------------------------------------------------------
# request and response authenticity


def test_simulator_rejects_body_changed_after_signing(state: WxPaySimState, transport: InProcessTransport) -> None:
    def raise_amount(request: httpx.Request) -> httpx.Request:
        body = request.content.replace(b'"total":100', b'"total":1')
        return httpx.Request(request.method, request.url, headers=request.headers, content=body)

    client = make_client(RewritingTransport(transport, request=raise_amount))
    with pytest.raises(WxPayError) as err:
        prepay(client, amount_fen=100)
    assert err.value.status == 401 and err.value.code == "SIGN_ERROR"
    assert state.orders == {}


def test_simulator_rejects_other_key_serial_mchid_or_stale(state: WxPaySimState,
                                                           transport: InProcessTransport) -> None:
    other_key = make_client(transport, merchant_private_key_pem=OTHER.merchant_private_key_pem)
    wrong_serial = make_client(transport, merchant_serial_no=OTHER.merchant_serial_no)
    stale = make_client(transport, clock=lambda: utcnow() - dt.timedelta(minutes=6))
    for c in (other_key, wrong_serial, stale):
        with pytest.raises(WxPayError) as err:
            prepay(c)
        assert (err.value.status, err.value.code) == (401, "SIGN_ERROR")
    unsigned = httpx.Client(transport=transport).get(f"{BASE}/v3/pay/transactions/out-trade-no/GC1234567?mchid={MCHID}")
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "SIGN_ERROR"
    assert state.orders == {}


def test_simulator_rejects_a_query_changed_after_signing(client: WxPayClient, transport: InProcessTransport) -> None:
    prepay(client)

    def other_mchid(request: httpx.Request) -> httpx.Request:
        return httpx.Request(request.method, request.url.copy_with(query=b"mchid=1900000999"), headers=request.headers)

    tampered = make_client(RewritingTransport(transport, request=other_mchid))
    with pytest.raises(WxPayError) as err:
        tampered.query_order("GC20260101000001")
    assert err.value.code == "SIGN_ERROR"


def test_client_rejects_unsigned_or_forged_answers(transport: InProcessTransport) -> None:
    wrong_platform_key = make_client(transport, platform_public_key_pem=OTHER.platform_public_key_pem)
    with pytest.raises(WxPayError) as err:
        prepay(wrong_platform_key)
    assert err.value.code == "RESPONSE_SIGNATURE_INVALID"

    def swap_prepay_id(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        return httpx.Response(response.status_code, headers=response.headers, content=b'{"prepay_id":"wx_forged"}')

    forged = make_client(RewritingTransport(transport, response=swap_prepay_id))
    with pytest.raises(WxPayError) as err:
        prepay(forged, "GC20260101000009")
    assert err.value.code == "RESPONSE_SIGNATURE_INVALID"

    def strip_signature(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        headers = {k: v for k, v in response.headers.items() if not k.lower().startswith("wechatpay-")}
        return httpx.Response(response.status_code, headers=headers, content=response.content)

    with pytest.raises(WxPayError) as err:
        prepay(make_client(RewritingTransport(transport, response=strip_signature)), "GC20260101000010")
    assert err.value.code == "RESPONSE_SIGNATURE_INVALID"


def test_client_rejects_stale_answers(state: WxPaySimState, transport: InProcessTransport) -> None:
    state.clock = lambda: utcnow() - dt.timedelta(minutes=4)  # within the request window, not the answer's
    client = make_client(transport, max_skew=120)
    with pytest.raises(WxPayError) as err:
        prepay(client)
    assert err.value.code == "RESPONSE_SIGNATURE_INVALID" and "off" in str(err.value)


def test_transport_error_is_typed() -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(WxPayError) as err:
        prepay(make_client(httpx.MockTransport(boom)))
    assert err.value.code == "TRANSPORT_ERROR" and err.value.status is None


@pytest.mark.parametrize("mount", ["include_router", "sub_app"])
def test_signed_url_is_the_path_below_any_mount_point(mount: str, inbox: Inbox) -> None:
    state = sim_state_for(KEYS, mchid=MCHID, appid=APPID, deliver=inbox.deliver)
    if mount == "include_router":
        app = make_app(state, prefix="/deep/er/sim/wechatpay")
        base = f"{HOST}/deep/er/sim/wechatpay"
    else:
        outer = FastAPI()
        outer.mount("/outer", make_app(state, prefix="/pay"))
        app = outer
        base = f"{HOST}/outer/pay"
    client = make_client(InProcessTransport(app), base_url=base)
    inbox.client = client
    pay_order(state, prepay(client, "GC|2026*0101-01"))
    assert client.query_order("GC|2026*0101-01")["trade_state"] == "SUCCESS"
    client.refund(out_refund_no="RF@1", out_trade_no="GC|2026*0101-01", refund_fen=1, total_fen=12345)
    finish_refund(state, "RF@1")
    assert client.query_refund("RF@1")["status"] == "SUCCESS"
    bill = client.trade_bill(utcnow().astimezone(SHANGHAI).date())
    assert parse_trade_bill(bill).height == 2


# --------------------------------------------------------------------------------------------------
# trade bill


@pytest.fixture
def busy_day(client: WxPayClient, state: WxPaySimState) -> dt.date:
    paid_order(client, state, "GC20260101000001", 12345)
    paid_order(client, state, "GC20260101000002", 7)
    prepay(client, "GC20260101000003", 500)  # never paid: not in the bill
    client.refund(out_refund_no="RF20260101000001", out_trade_no="GC20260101000001", refund_fen=2345,
                  total_fen=12345)
    finish_refund(state, "RF20260101000001")
    return utcnow().astimezone(SHANGHAI).date()


def test_trade_bill_download_and_parse(client: WxPayClient, busy_day: dt.date) -> None:
    data = client.trade_bill(busy_day)
    lines = data.decode("utf-8").split("\r\n")
    assert lines[0].startswith("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识")
    assert lines[0].endswith("手续费,费率,订单金额,申请退款金额,费率备注")
    assert all(field.startswith("`") for field in lines[1].split(",")[:5])
    assert lines[4].startswith("总交易单数,应结订单总金额,退款总金额")

    rows = parse_trade_bill(data)
    assert rows.height == 3
    assert rows.schema["total_fen"] == pl.Int64 and rows.schema["refund_fen"] == pl.Int64
    assert rows.schema["trade_time"] == pl.Datetime("us", "Asia/Shanghai")
    paid = rows.filter(pl.col("trade_state") == "SUCCESS").sort("out_trade_no")
    assert paid["out_trade_no"].to_list() == ["GC20260101000001", "GC20260101000002"]
    assert paid["settlement_total_fen"].to_list() == [12345, 7]
    assert paid["fee_fen"].to_list() == [74, 0]  # 0.60 %, half-up
    refund = rows.filter(pl.col("trade_state") == "REFUND").row(0, named=True)
    assert refund["refund_fen"] == 2345 and refund["out_refund_no"] == "RF20260101000001"
    assert refund["settlement_total_fen"] == 0 and refund["total_fen"] == 12345 and refund["fee_fen"] == -14
    assert rows["appid"].unique().to_list() == [APPID] and rows["openid"].unique().to_list() == [OPENID]

    bill = read_trade_bill(data)
    assert dataclasses.asdict(bill.summary) == {
        "count": 3, "settlement_total_fen": 12352, "refund_fen": 2345, "recharge_coupon_refund_fen": 0,
        "fee_fen": 60, "total_fen": 12352, "applied_refund_fen": 2345,
    }
    assert client.trade_bill(busy_day, gzip_file=False) == data
    assert parse_trade_bill(client.trade_bill(busy_day, bill_type="REFUND")).height == 1
    assert parse_trade_bill(client.trade_bill(busy_day.isoformat(), bill_type="SUCCESS")).height == 2


def test_trade_bill_sha1_mismatch(state: WxPaySimState, transport: InProcessTransport, busy_day: dt.date) -> None:
    def corrupt(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if "/v3/billdownload/" not in request.url.path:
            return response
        text = gzip.decompress(response.content).replace(b"`123.45", b"`223.45")
        return httpx.Response(200, headers=response.headers, content=gzip.compress(text))

    client = make_client(RewritingTransport(transport, response=corrupt))
    with pytest.raises(WxPayError) as err:
        client.trade_bill(busy_day)
    assert err.value.code == "BILL_HASH_MISMATCH"

    def truncate(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if "/v3/billdownload/" not in request.url.path:
            return response
        return httpx.Response(200, headers=response.headers, content=response.content[:-10])

    with pytest.raises(WxPayError) as err:
        make_client(RewritingTransport(transport, response=truncate)).trade_bill(busy_day)
    assert err.value.code == "BILL_HASH_MISMATCH"


def test_trade_bill_errors(client: WxPayClient, state: WxPaySimState, transport: InProcessTransport) -> None:
    today = utcnow().astimezone(SHANGHAI).date()
    with pytest.raises(WxPayError) as err:
        client.trade_bill(today)
    assert err.value.code == "NO_STATEMENT_EXIST"
    with pytest.raises(WxPayError) as err:
        client.trade_bill(today + dt.timedelta(days=1))
    assert err.value.code == "INVALID_REQUEST"
    with pytest.raises(ValueError):
        client.trade_bill("2026-1-1")
    with pytest.raises(WxPayError):  # download URLs on other hosts are never fetched with our signature
        client.download_bill("https://evil.test/v3/billdownload/file?token=x")
    # An expired download token.
    paid_order(client, state)
    info = client._json(client._call("GET", f"/v3/bill/tradebill?bill_date={today}&bill_type=ALL"), "bill")
    state.clock = lambda: utcnow() + dt.timedelta(seconds=31)
    with pytest.raises(WxPayError) as err:
        make_client(transport, clock=state.clock).download_bill(info["download_url"])
    assert err.value.code == "INVALID_REQUEST"


def test_bill_text_fields_with_commas_and_quotes_roundtrip(client: WxPayClient, state: WxPaySimState) -> None:
    client.jsapi_prepay(out_trade_no="GC20260101000005", description='券,"特价"', amount_fen=1, payer_openid=OPENID,
                        attach="a,b")
    pay_order(state, state.orders["GC20260101000005"].prepay_id, deliver=False)
    rows = parse_trade_bill(client.trade_bill(utcnow().astimezone(SHANGHAI).date()))
    assert rows.row(0, named=True)["description"] == '券,"特价"'
    assert rows.row(0, named=True)["attach"] == "a,b"


BILL_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
               "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
               "手续费,费率,订单金额,申请退款金额,费率备注")
SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"


def _bill_row(amount: str, *, state: str = "SUCCESS", refund: str = "0.00") -> str:
    values = ["2026-01-01 10:00:00", APPID, MCHID, "0", "", "4200000001", "GC20260101000001", OPENID, "JSAPI", state,
              "OTHERS", "CNY", amount, "0.00", "0", "0", refund, "0.00", "", "", "x", "", "0.00", "0.60%", amount,
              refund, ""]
    return ",".join("`" + v for v in values)


def test_bill_parser_amounts_are_exact() -> None:
    rows = [_bill_row(a) for a in ("0.07", "0.1", "12", "99999999.99", "100000000.00", "-0.05")]
    data = ("\ufeff" + "\n".join([BILL_HEADER, *rows, SUMMARY, "`6,`200000012.11,`0.00,`0.00,`0.00,`0.00,`0.00"])
            + "\n").encode()
    bill = read_trade_bill(data)
    assert bill.rows["settlement_total_fen"].to_list() == [7, 10, 1200, 9999999999, 10000000000, -5]
    assert bill.summary.settlement_total_fen == 20000001211
    assert bill.rows["trade_time"][0] == dt.datetime(2026, 1, 1, 10, tzinfo=SHANGHAI)


@pytest.mark.parametrize("amount", ["1.234", "1e3", "abc", "1.", ".5", "１.00"])
def test_bill_parser_rejects_malformed_amounts(amount: str) -> None:
    data = "\r\n".join([BILL_HEADER, _bill_row(amount)]).encode()
    with pytest.raises(TradeBillError, match="malformed amount"):
        parse_trade_bill(data)


def test_bill_parser_structure_errors() -> None:
    with pytest.raises(TradeBillError, match="lacks columns"):
        parse_trade_bill("交易时间,商户号\r\n`2026-01-01 10:00:00,`1\r\n".encode())
    with pytest.raises(TradeBillError, match="no summary"):
        parse_trade_bill_summary("\r\n".join([BILL_HEADER, _bill_row("1.00")]).encode())
    with pytest.raises(TradeBillError, match="UTF-8"):
        parse_trade_bill(BILL_HEADER.encode("gbk"))
    mismatch = "\r\n".join([BILL_HEADER, _bill_row("1.00"), SUMMARY, "`2,`1.00,`0.00,`0.00,`0.00,`1.00,`0.00"])
    with pytest.raises(TradeBillError, match="总交易单数"):
        read_trade_bill(mismatch.encode())
    assert read_trade_bill(mismatch.encode(), check_summary=False).summary.count == 2


def test_bill_simulator_output_roundtrips(client: WxPayClient, state: WxPaySimState, busy_day: dt.date) -> None:
    data = build_trade_bill(state, busy_day)
    assert data is not None
    rows = parse_trade_bill(data)
    by_no = {o.out_trade_no: o.total for o in state.orders.values() if o.success_time}
    paid = rows.filter(pl.col("trade_state") == "SUCCESS")
    assert dict(zip(paid["out_trade_no"].to_list(), paid["total_fen"].to_list(), strict=True)) == by_no


# --------------------------------------------------------------------------------------------------
# property: amounts survive the whole trip as int


_PROP_INBOX = Inbox()
_PROP_STATE = sim_state_for(KEYS, mchid=MCHID, appid=APPID, deliver=_PROP_INBOX.deliver)
_PROP_CLIENT = make_client(InProcessTransport(make_app(_PROP_STATE)))
_PROP_INBOX.client = _PROP_CLIENT


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(amount=st.integers(min_value=1, max_value=10**10))
def test_amount_survives_prepay_pay_notify_parse(amount: int) -> None:
    out_trade_no = f"P{len(_PROP_STATE.orders):010d}{amount % 1000:03d}"
    notify = pay_order(_PROP_STATE, prepay(_PROP_CLIENT, out_trade_no, amount))
    assert notify is not None and notify.status == 204
    event = _PROP_INBOX.accepted[-1]
    total = event["resource"]["amount"]["total"]
    assert type(total) is int and total == amount
    assert event["resource"]["out_trade_no"] == out_trade_no
    assert _PROP_CLIENT.query_order(out_trade_no)["amount"]["payer_total"] == amount


# --------------------------------------------------------------------------------------------------
# dev keys


def test_dev_keys_are_created_once(tmp_path: Any) -> None:
    path = tmp_path / "sub" / "wxpay_dev_keys.json"
    first = load_or_create_dev_keys(path)
    assert load_or_create_dev_keys(path) == first
    assert first.platform_public_key_id.startswith("PUB_KEY_ID_") and len(first.apiv3_key) == 32
    assert list(path.parent.iterdir()) == [path]
    state = sim_state_for(first, mchid=MCHID, appid=APPID)
    client = make_client(InProcessTransport(make_app(state)), keys=first)
    assert prepay(client).startswith("wx")


# --------------------------------------------------------------------------------------------------
# oracle: the wechatpayv3 SDK (test-only dependency) agrees with our signatures and simulator

try:
    import wechatpayv3
    import wechatpayv3.core
except ImportError:  # the oracle is optional: only these tests need it
    wechatpayv3 = None

oracle = pytest.mark.skipif(wechatpayv3 is None, reason="wechatpayv3 (test-only oracle, requirements.txt) is not installed")


def _oracle() -> Any:
    return wechatpayv3.WeChatPay(
        wechatpay_type=wechatpayv3.WeChatPayType.MINIPROG, mchid=MCHID, private_key=KEYS.merchant_private_key_pem,
        cert_serial_no=KEYS.merchant_serial_no, appid=APPID, apiv3_key=KEYS.apiv3_key, notify_url=NOTIFY_URL,
        public_key=KEYS.platform_public_key_pem, public_key_id=KEYS.platform_public_key_id)


@oracle
def test_oracle_pay_sign_equals_ours(client: WxPayClient) -> None:
    params = client.mini_program_pay_params("wx201410272009395522657a690389285100")
    theirs = _oracle().sign([params["appId"], params["timeStamp"], params["nonceStr"], params["package"]])
    assert theirs == params["paySign"]


@oracle
def test_oracle_accepts_simulator_notifies(client: WxPayClient, state: WxPaySimState) -> None:
    notify = pay_order(state, prepay(client))
    assert notify is not None
    result = _oracle().callback(notify.headers, notify.body)
    assert result is not None and result["event_type"] == "TRANSACTION.SUCCESS"
    assert result["resource"]["amount"]["total"] == 12345
    assert result["resource"] == client.parse_notify(notify.headers, notify.body)["resource"]
    lower = {k.lower(): v for k, v in notify.headers.items()}  # as Starlette hands them over
    assert _oracle().callback(lower, notify.body) is not None
    forged = {**notify.headers, "Wechatpay-Signature": notify.headers["Wechatpay-Signature"][::-1]}
    assert _oracle().callback(forged, notify.body) is None


class _RequestsShim:
    """Stands in for the ``requests`` module inside wechatpayv3.core: its GET/POST go to the
    simulator in-process. The SDK signs ``json.dumps(data)``, which is what is sent here too."""

    def __init__(self, transport: httpx.BaseTransport) -> None:
        self._http = httpx.Client(transport=transport)

    def get(self, url: str, headers: dict[str, str], **_: Any) -> httpx.Response:
        return self._http.get(url, headers=headers)

    def post(self, url: str, json: Any = None, headers: dict[str, str] | None = None, **_: Any) -> httpx.Response:
        import json as _json

        return self._http.post(url, headers=headers, content=_json.dumps(json).encode() if json is not None else b"")


@oracle
def test_oracle_sdk_against_simulator(state: WxPaySimState, transport: InProcessTransport,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wechatpayv3.core, "requests", _RequestsShim(transport))
    wx = _oracle()
    wx._core._gate_way = BASE
    code, text = wx.pay(description="电影券", out_trade_no="GC20260101000077", amount={"total": 999},
                        payer={"openid": OPENID})
    assert code == 200, text
    prepay_id = json.loads(text)["prepay_id"]
    pay_order(state, prepay_id, deliver=False)
    code, text = wx.query(out_trade_no="GC20260101000077")
    assert code == 200 and json.loads(text)["trade_state"] == "SUCCESS"  # the SDK verified our answer
    code, text = wx.refund(out_refund_no="RF77", out_trade_no="GC20260101000077",
                           amount={"refund": 99, "total": 999, "currency": "CNY"})
    assert code == 200 and json.loads(text)["status"] == "PROCESSING"
    finish_refund(state, "RF77", deliver=False)
    today = utcnow().astimezone(SHANGHAI).date().isoformat()
    code, text = wx.trade_bill(bill_date=today)
    assert code == 200, text
    info = json.loads(text)
    code, content = wx.download_bill(url=info["download_url"])
    assert code == 200
    csv_bytes = gzip.decompress(content)
    assert hashlib.sha1(csv_bytes).hexdigest() == info["hash_value"]
    assert parse_trade_bill(csv_bytes)["refund_fen"].sum() == 99
    # The SDK's own signature check rejects an answer signed with another platform key.
    state._platform_key = crypto.load_private_key(OTHER.platform_private_key_pem)
    with pytest.raises(Exception, match="failed to verify"):
        wx.query(out_trade_no="GC20260101000077")
