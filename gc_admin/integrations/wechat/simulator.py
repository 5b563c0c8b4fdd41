"""A local stand-in for the WeChat mini-program server API (dev/test only, under /sim/wechat).

It speaks the real endpoints and error codes, and keeps what WeChat would keep: one-use
login codes that expire after 5 minutes, one-use phone codes, access tokens. ``POST /_mint``
plays the phone's part: it makes the ``code`` that ``wx.login`` would give for an openid, and
the ``phone_code`` that ``getPhoneNumber`` would give for a phone number.

Its state lives in a :mod:`~gc_admin.integrations.simstore` store: Redis shared by every worker when the app
has ``GC_REDIS_URL`` (a code minted through one worker is redeemed through another), else this process.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import MutableMapping
from typing import Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gc_admin.integrations.simstore import MemoryStore, RedisStore

CODE_TTL = 300.0
TOKEN_TTL = 7200


@dataclasses.dataclass
class WeChatSimState:
    appid: str
    secret: str
    store: MemoryStore | RedisStore = dataclasses.field(default_factory=MemoryStore, repr=False)
    codes: MutableMapping[str, tuple[str, float]] = dataclasses.field(init=False)  # code -> (openid, expires)
    phone_codes: MutableMapping[str, tuple[str, float]] = dataclasses.field(init=False)
    tokens: MutableMapping[str, float] = dataclasses.field(init=False)
    lock: Any = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.codes = self.store.table("wechat.codes", tuple)
        self.phone_codes = self.store.table("wechat.phone_codes", tuple)
        self.tokens = self.store.table("wechat.tokens")
        self.lock = self.store.lock


class MintBody(BaseModel):
    openid: str = Field(min_length=1, max_length=64)
    phone: str | None = Field(default=None, pattern=r"^1[3-9]\d{9}$")


def _err(errcode: int, errmsg: str) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": errmsg})


def build_wechat_simulator(state: WeChatSimState) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def _creds_ok(appid: str, secret: str) -> JSONResponse | None:
        if appid != state.appid:
            return _err(40013, "invalid appid")
        if secret != state.secret:
            return _err(40125, "invalid appsecret")
        return None

    @router.get("/sns/jscode2session")
    def jscode2session(appid: str = "", secret: str = "", js_code: str = "", grant_type: str = ""):
        if bad := _creds_ok(appid, secret):
            return bad
        if grant_type != "authorization_code":
            return _err(40002, "invalid grant_type")
        with state.lock:
            entry = state.codes.pop(js_code, None)
        if entry is None:
            return _err(40029, "invalid code")
        openid, expires = entry
        if time.time() > expires:
            return _err(40029, "code expired")
        return {"openid": openid, "session_key": secrets.token_urlsafe(16)}

    @router.post("/cgi-bin/stable_token")
    def stable_token(body: dict = Body(...)):
        if bad := _creds_ok(str(body.get("appid", "")), str(body.get("secret", ""))):
            return bad
        if body.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        now = time.time()
        with state.lock:
            tokens = list(state.tokens.items())
            live = [(t, exp) for t, exp in tokens if exp - now > 300]
            if live and not body.get("force_refresh"):
                token, expires = live[0]
            else:
                token, expires = secrets.token_urlsafe(32), now + TOKEN_TTL
                state.tokens[token] = expires
            for old, exp in tokens:  # WeChat forgets expired tokens
                if exp < now:
                    state.tokens.pop(old, None)
        return {"access_token": token, "expires_in": int(expires - now)}

    @router.post("/wxa/business/getuserphonenumber")
    def getuserphonenumber(access_token: str = Query(""), body: dict = Body(...)):
        with state.lock:
            exp = state.tokens.get(access_token)
            if exp is None or exp < time.time():
                return _err(40001, "invalid credential, access_token is invalid or not latest")
            entry = state.phone_codes.pop(str(body.get("code", "")), None)
        if entry is None:
            return _err(40029, "invalid code")
        phone, expires = entry
        if time.time() > expires:
            return _err(40029, "code expired")
        return {
            "errcode": 0,
            "errmsg": "ok",
            "phone_info": {
                "phoneNumber": phone,
                "purePhoneNumber": phone,
                "countryCode": "86",
                "watermark": {"timestamp": int(time.time()), "appid": state.appid},
            },
        }

    @router.post("/_mint")
    def mint(body: MintBody):
        """Test helper: the codes a phone would obtain from wx.login / getPhoneNumber."""
        expires = time.time() + CODE_TTL
        out: dict[str, str] = {}
        with state.lock:
            code = secrets.token_urlsafe(12)
            state.codes[code] = (body.openid, expires)
            out["code"] = code
            if body.phone:
                pcode = secrets.token_urlsafe(12)
                state.phone_codes[pcode] = (body.phone, expires)
                out["phone_code"] = pcode
        return out

    return router
