"""The app's simulators (dev/test only), shared by the mounted routes and tests. Their state is in one
:mod:`~gc_admin.integrations.simstore` store: Redis when ``GC_REDIS_URL`` is set (every worker and host sees
the same codes, orders and refunds), else this process."""

from __future__ import annotations

import dataclasses
import functools

from fastapi import APIRouter

from gc_admin.config import get_settings
from gc_admin.integrations.simstore import store_for
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
    store = store_for(redis_url=s.redis_url, database_url=s.database_url)
    wechat = WeChatSimState(appid=s.wechat_appid, secret=s.wechat_secret, store=store)
    sms = SimAccounts(
        aliyun={s.sms_aliyun.key_id: s.sms_aliyun.key_secret} if s.sms_aliyun.key_id else {},
        tencent={s.sms_tencent.key_id: s.sms_tencent.key_secret} if s.sms_tencent.key_id else {},
        store=store,
    )
    from gc_admin.integrations.wechatpay.setup import dev_keys

    wxpay = sim_state_for(dev_keys(), mchid=s.wxpay.mchid, appid=s.wxpay.appid, store=store)
    wxpay.auto_refund_seconds = s.sim_refund_seconds
    alipay = alipay_sim_state()
    return Simulators(wechat=wechat, wechat_router=build_wechat_simulator(wechat), sms=sms,
                      sms_router=build_sms_simulator(sms), wxpay=wxpay, wxpay_router=build_wxpay_simulator(wxpay),
                      alipay=alipay, alipay_router=build_alipay_simulator(alipay))
