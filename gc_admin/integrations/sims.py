"""The process-wide simulator state (dev/test only), shared by the mounted routes and tests."""

from __future__ import annotations

import dataclasses
import functools

from fastapi import APIRouter

from gc_admin.config import get_settings
from gc_admin.integrations.sms.simulator import SimAccounts, build_sms_simulator
from gc_admin.integrations.wechat.simulator import WeChatSimState, build_wechat_simulator


@dataclasses.dataclass
class Simulators:
    wechat: WeChatSimState
    wechat_router: APIRouter
    sms: SimAccounts
    sms_router: APIRouter


@functools.lru_cache(maxsize=1)
def simulators() -> Simulators:
    """Simulators that accept this app's configured credentials (the demo ones by default)."""
    s = get_settings()
    wechat = WeChatSimState(appid=s.wechat_appid, secret=s.wechat_secret)
    sms = SimAccounts(
        aliyun={s.sms_aliyun.key_id: s.sms_aliyun.key_secret} if s.sms_aliyun.key_id else {},
        tencent={s.sms_tencent.key_id: s.sms_tencent.key_secret} if s.sms_tencent.key_id else {},
    )
    return Simulators(wechat=wechat, wechat_router=build_wechat_simulator(wechat), sms=sms,
                      sms_router=build_sms_simulator(sms))
