"""WeChat mini-program server API client (code2Session, stable access token, phone number).

Plain HTTPS + JSON, no request signing: secrets go in the query/body. The base URL and the
httpx transport are injectable so the same code runs against the real ``api.weixin.qq.com``,
the local simulator over loopback, or the simulator in-process in tests.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import httpx

from gc_admin.integrations.lazy import LazyClient
from gc_admin.integrations.http import new_client


class WeChatError(Exception):
    """WeChat answered with ``errcode != 0`` or could not be reached (English, for logs)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"wechat errcode={errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


@dataclasses.dataclass(frozen=True)
class WxSession:
    openid: str
    session_key: str
    unionid: str | None = None


class MiniProgramClient:
    def __init__(self, *, appid: str, secret: str, base_url: str, transport: httpx.BaseTransport | None = None,
                 timeout: float = 8.0) -> None:
        self.appid = appid
        self._secret = secret
        self._http = new_client(base_url=base_url, transport=transport, timeout=timeout)
        self._token: str | None = None
        self._token_expires = 0.0
        self._lock = threading.Lock()

    def _json(self, resp: httpx.Response) -> dict[str, Any]:
        try:
            data = resp.json()
        except ValueError as exc:
            raise WeChatError(-2, f"non-JSON response, HTTP {resp.status_code}") from exc
        if not isinstance(data, dict):
            raise WeChatError(-2, "unexpected response shape")
        errcode = int(data.get("errcode") or 0)  # absent on success for code2Session
        if errcode != 0:
            raise WeChatError(errcode, str(data.get("errmsg", "")))
        return data

    def _call(self, method: str, url: str, **kw: Any) -> dict[str, Any]:
        try:
            resp = self._http.request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise WeChatError(-1, f"transport error: {type(exc).__name__}") from exc
        return self._json(resp)

    def code2session(self, code: str) -> WxSession:
        """Exchange a ``wx.login`` code for the user's openid."""
        data = self._call("GET", "/sns/jscode2session", params={
            "appid": self.appid, "secret": self._secret, "js_code": code, "grant_type": "authorization_code",
        })
        if not data.get("openid") or not data.get("session_key"):
            raise WeChatError(-2, "code2session response lacks openid/session_key")
        return WxSession(openid=data["openid"], session_key=data["session_key"], unionid=data.get("unionid"))

    def access_token(self) -> str:
        """The stable access token, cached and refreshed 5 minutes before it expires."""
        with self._lock:
            if self._token and time.monotonic() < self._token_expires:
                return self._token
            data = self._call("POST", "/cgi-bin/stable_token", json={
                "grant_type": "client_credential", "appid": self.appid, "secret": self._secret, "force_refresh": False,
            })
            self._token = str(data["access_token"])
            self._token_expires = time.monotonic() + max(int(data.get("expires_in", 7200)) - 300, 60)
            return self._token

    def get_phone_number(self, phone_code: str) -> str:
        """The user's phone number from a ``getPhoneNumber`` code (pure 11-digit number)."""
        for attempt in (0, 1):
            try:
                data = self._call("POST", "/wxa/business/getuserphonenumber",
                                  params={"access_token": self.access_token()}, json={"code": phone_code})
                break
            except WeChatError as exc:
                if exc.errcode in (40001, 42001) and attempt == 0:  # token invalid/expired: refresh once
                    with self._lock:
                        self._token = None
                    continue
                raise
        info = data.get("phone_info") or {}
        watermark = info.get("watermark") or {}
        if watermark.get("appid") != self.appid:
            raise WeChatError(-3, "phone_info watermark appid mismatch")
        phone = info.get("purePhoneNumber")
        if not phone:
            raise WeChatError(-2, "phone_info lacks purePhoneNumber")
        return str(phone)

    def close(self) -> None:
        self._http.close()


def _build(transport: httpx.BaseTransport | None) -> MiniProgramClient:
    from gc_admin.config import get_settings

    s = get_settings()
    base = s.wechat_base_url
    if base == "local":
        base = f"{s.self_url}/sim/wechat"
    return MiniProgramClient(appid=s.wechat_appid, secret=s.wechat_secret, base_url=base, transport=transport)


# The process-wide client for the configured base URL (``local`` = this app's simulator); a new
# transport drops the old client without closing it (callers may still hold it).
_holder: LazyClient[MiniProgramClient] = LazyClient(_build, close_on_reset=False)
set_transport = _holder.set_transport
get_client = _holder.get
