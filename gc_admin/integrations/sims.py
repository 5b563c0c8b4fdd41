"""The process-wide simulator state (dev/test only), shared by the mounted routes and tests."""

from __future__ import annotations

import dataclasses
import functools

from fastapi import APIRouter

from gc_admin.config import get_settings
from gc_admin.integrations.alipay.setup import sim_state as alipay_sim_state
from gc_admin.integrations.alipay.simulator import AlipaySimState, build_alipay_simulator
from gc_admin.integrations.sms.simulator import SimAccounts, build_sms_simulator
from gc_admin.integrations.wechat.simulator import WeChatSimState, build_wechat_simulator
from gc_admin.integrations.wechatpay.simulator import WxPaySimState, build_wxpay_simulator, sim_state_for


@dataclasses.dataclass
class Simulators:
    wechat: WeChatSimState
    wechat_router: APIRouter
    sms: SimAccounts
    sms_router: APIRouter
    wxpay: WxPaySimState
    wxpay_router: APIRouter
    alipay: AlipaySimState
    alipay_router: APIRouter


@functools.lru_cache(maxsize=1)
def simulators() -> Simulators:
    """Simulators that accept this app's configured credentials (the demo ones by default)."""
    s = get_settings()
    wechat = WeChatSimState(appid=s.wechat_appid, secret=s.wechat_secret)
    sms = SimAccounts(
        aliyun={s.sms_aliyun.key_id: s.sms_aliyun.key_secret} if s.sms_aliyun.key_id else {},
        tencent={s.sms_tencent.key_id: s.sms_tencent.key_secret} if s.sms_tencent.key_id else {},
    )
    from gc_admin.integrations.wechatpay.setup import dev_keys

    wxpay = sim_state_for(dev_keys(), mchid=s.wxpay.mchid, appid=s.wxpay.appid)
    alipay = alipay_sim_state()
    return Simulators(wechat=wechat, wechat_router=build_wechat_simulator(wechat), sms=sms,
                      sms_router=build_sms_simulator(sms), wxpay=wxpay, wxpay_router=build_wxpay_simulator(wxpay),
                      alipay=alipay, alipay_router=build_alipay_simulator(alipay))
