"""The WeChat mini-program client against the simulator, in-process (no socket, no app database)."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

import httpx
import pytest
from fastapi import FastAPI

from gc_admin.integrations.wechat import client as wxc
from gc_admin.integrations.wechat.client import MiniProgramClient, WeChatError, WxSession
from gc_admin.integrations.wechat.simulator import WeChatSimState, build_wechat_simulator
from tests.support import InProcessTransport

APPID = "wxsim1234567890"
SECRET = "sim-secret-0001"
BASE = "http://wechat.sim"


class Recording(httpx.BaseTransport):
    """Passes requests on and remembers them; ``reject`` answers some paths itself."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []
        self.reject: dict[str, dict] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path in self.reject:
            return httpx.Response(200, json=self.reject[request.url.path])
        return self.inner.handle_request(request)

    def calls(self) -> Counter[str]:
        return Counter(r.url.path for r in self.requests)


@dataclasses.dataclass
class Sim:
    state: WeChatSimState
    transport: Recording
    phone: httpx.Client  # plays the phone: mints codes

    def client(self, appid: str = APPID, secret: str = SECRET) -> MiniProgramClient:
        return MiniProgramClient(appid=appid, secret=secret, base_url=BASE, transport=self.transport)

    def code(self, openid: str = "o-alice") -> str:
        return self.phone.post("/_mint", json={"openid": openid}).json()["code"]

    def phone_code(self, phone: str = "13812345678") -> str:
        return self.phone.post("/_mint", json={"openid": "o-any", "phone": phone}).json()["phone_code"]


def _sim(appid: str = APPID) -> Sim:
    state = WeChatSimState(appid=appid, secret=SECRET)
    app = FastAPI()
    app.include_router(build_wechat_simulator(state))
    inner = InProcessTransport(app)
    return Sim(state, Recording(inner), httpx.Client(base_url=BASE, transport=inner))


@pytest.fixture
def sim() -> Sim:
    return _sim()


def _errcode(fn, *args) -> WeChatError:
    with pytest.raises(WeChatError) as err:
        fn(*args)
    return err.value


# --- code2Session ---------------------------------------------------------------------------------

def test_code2session(sim):
    code = sim.code("o-alice")
    wx = sim.client().code2session(code)
    assert isinstance(wx, WxSession)
    assert wx.openid == "o-alice" and len(wx.session_key) >= 16 and wx.unionid is None
    [req] = sim.transport.requests
    assert req.method == "GET" and req.url.path == "/sns/jscode2session"
    assert dict(req.url.params) == {"appid": APPID, "secret": SECRET, "js_code": code, "grant_type": "authorization_code"}


def test_wrong_appid_is_40013_and_leaves_the_code(sim):
    code = sim.code()
    err = _errcode(sim.client(appid="wxsomeoneelse").code2session, code)
    assert err.errcode == 40013 and "appid" in err.errmsg
    assert sim.client().code2session(code).openid == "o-alice"  # refused before the code was looked at


def test_wrong_secret_is_40125(sim):
    code = sim.code()
    assert _errcode(sim.client(secret="wrong").code2session, code).errcode == 40125
    assert sim.client().code2session(code).openid == "o-alice"


@pytest.mark.parametrize(("call", "mint"), [("code2session", "code"), ("get_phone_number", "phone_code")],
                         ids=["login code", "phone code"])
def test_codes_are_single_use_and_unknown_ones_are_40029(sim, call, mint):
    """A login code (wx.login) and a phone code (getPhoneNumber) each work once; reused or never minted: 40029."""
    c = sim.client()
    code = getattr(sim, mint)()
    getattr(c, call)(code)
    assert _errcode(getattr(c, call), code).errcode == 40029
    assert _errcode(getattr(c, call), "never-minted").errcode == 40029


def test_expired_code_is_40029(sim):
    code = sim.code()
    openid, expires = sim.state.codes[code]
    assert expires > time.time()
    sim.state.codes[code] = (openid, time.time() - 1)  # five minutes have passed
    err = _errcode(sim.client().code2session, code)
    assert err.errcode == 40029 and err.errmsg == "code expired"


# --- phone number and the access token ------------------------------------------------------------

def test_phone_number(sim):
    c = sim.client()
    assert c.get_phone_number(sim.phone_code("13812345678")) == "13812345678"
    calls = sim.transport.calls()
    assert calls == Counter({"/cgi-bin/stable_token": 1, "/wxa/business/getuserphonenumber": 1})
    token_req, phone_req = sim.transport.requests
    assert token_req.method == "POST" and phone_req.method == "POST"
    assert phone_req.url.params["access_token"] == next(iter(sim.state.tokens))


def test_phone_watermark_must_name_our_appid(sim):
    c = sim.client()
    c.get_phone_number(sim.phone_code())  # token obtained while the simulator is "our" app
    sim.state.appid = "wxanotherapp00000"  # phone_info now comes stamped for another mini-program
    err = _errcode(c.get_phone_number, sim.phone_code())
    assert err.errcode == -3 and "watermark" in err.errmsg


def test_simulator_of_another_app_refuses_the_token():
    other = _sim(appid="wxanotherapp00000")
    err = _errcode(other.client().get_phone_number, other.phone_code())
    assert err.errcode == 40013
    assert other.transport.calls() == Counter({"/cgi-bin/stable_token": 1})


def test_access_token_is_cached(sim):
    c = sim.client()
    assert c.get_phone_number(sim.phone_code("13812345678")) == "13812345678"
    assert c.get_phone_number(sim.phone_code("13987654321")) == "13987654321"
    calls = sim.transport.calls()
    assert calls["/cgi-bin/stable_token"] == 1 and calls["/wxa/business/getuserphonenumber"] == 2
    tokens = {r.url.params["access_token"] for r in sim.transport.requests if r.url.path.endswith("phonenumber")}
    assert len(tokens) == 1


def test_dropped_token_is_refreshed_once(sim):
    c = sim.client()
    c.get_phone_number(sim.phone_code())
    old = c.access_token()
    sim.state.tokens.clear()  # WeChat invalidated it (someone else fetched a new one, or it was revoked)
    assert c.get_phone_number(sim.phone_code("13987654321")) == "13987654321"
    calls = sim.transport.calls()
    # stable_token, phone | phone (40001), stable_token, phone
    assert calls == Counter({"/cgi-bin/stable_token": 2, "/wxa/business/getuserphonenumber": 3})
    assert c.access_token() != old and c.access_token() in sim.state.tokens


def test_token_refresh_is_not_retried_forever(sim):
    c = sim.client()
    sim.transport.reject["/wxa/business/getuserphonenumber"] = {"errcode": 40001, "errmsg": "invalid credential"}
    err = _errcode(c.get_phone_number, sim.phone_code())
    assert err.errcode == 40001
    calls = sim.transport.calls()
    assert calls == Counter({"/cgi-bin/stable_token": 2, "/wxa/business/getuserphonenumber": 2})


def test_other_phone_errors_are_not_retried(sim):
    c = sim.client()
    sim.transport.reject["/wxa/business/getuserphonenumber"] = {"errcode": 45011, "errmsg": "api minute-quota reach limit"}
    assert _errcode(c.get_phone_number, sim.phone_code()).errcode == 45011
    assert sim.transport.calls() == Counter({"/cgi-bin/stable_token": 1, "/wxa/business/getuserphonenumber": 1})


def test_expiring_token_is_fetched_again(sim, monkeypatch):
    c = sim.client()
    c.get_phone_number(sim.phone_code())
    real = time.monotonic
    monkeypatch.setattr(wxc.time, "monotonic", lambda: real() + 7200 - 299)  # within 5 minutes of expiry
    c.get_phone_number(sim.phone_code("13987654321"))
    assert sim.transport.calls()["/cgi-bin/stable_token"] == 2


# --- transport failures -----------------------------------------------------------------------------

def _client_with(handler) -> MiniProgramClient:
    return MiniProgramClient(appid=APPID, secret=SECRET, base_url=BASE, transport=httpx.MockTransport(handler))


def test_transport_and_shape_failures_are_wechat_errors():
    def down(_req):
        raise httpx.ConnectError("refused")

    assert _errcode(_client_with(down).code2session, "c").errcode == -1
    assert _errcode(_client_with(lambda r: httpx.Response(502, text="<html>bad gateway</html>")).code2session, "c").errcode == -2
    assert _errcode(_client_with(lambda r: httpx.Response(200, json=[1, 2])).code2session, "c").errcode == -2
    assert _errcode(_client_with(lambda r: httpx.Response(200, json={"openid": "o"})).code2session, "c").errcode == -2
    no_phone = {"errcode": 0, "phone_info": {"watermark": {"appid": APPID}}}

    def phone_without_number(req):
        if req.url.path == "/cgi-bin/stable_token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 7200})
        return httpx.Response(200, json=no_phone)

    assert _errcode(_client_with(phone_without_number).get_phone_number, "p").errcode == -2
