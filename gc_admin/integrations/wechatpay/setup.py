"""The process-wide WeChat Pay client, built from settings.

``GC_WXPAY_BASE_URL=local`` (dev/test): the client talks to this app's own simulator under
``/sim/wechatpay`` with a throwaway key set shared through ``GC_WXPAY_DEV_KEYS``, so the demo
and the tests pay for real through the same code as production.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from gc_admin.config import get_settings
from gc_admin.integrations.lazy import LazyClient
from gc_admin.integrations.wechatpay.client import WxPayClient
from gc_admin.integrations.wechatpay.simulator import DevKeys, load_or_create_dev_keys

def dev_keys() -> DevKeys:
    return load_or_create_dev_keys(get_settings().wxpay.dev_keys_path)


def _build(transport: httpx.BaseTransport | None) -> WxPayClient:
    s = get_settings()
    w = s.wxpay
    if w.base_url == "local":
        keys = dev_keys()
        priv, serial = keys.merchant_private_key_pem, keys.merchant_serial_no
        apiv3, pub, pub_id = keys.apiv3_key, keys.platform_public_key_pem, keys.platform_public_key_id
        base = f"{s.self_url}/sim/wechatpay"
    else:
        priv, serial = Path(w.merchant_key_path).read_text(), w.merchant_serial_no
        apiv3, pub, pub_id = w.apiv3_key, Path(w.public_key_path).read_text(), w.public_key_id
        base = w.base_url
    return WxPayClient(
        mchid=w.mchid, appid=w.appid, merchant_private_key_pem=priv, merchant_serial_no=serial,
        apiv3_key=apiv3, platform_public_key_pem=pub, platform_public_key_id=pub_id,
        notify_url=w.notify_url, refund_notify_url=w.refund_notify_url, base_url=base, transport=transport,
    )


_holder: LazyClient[WxPayClient] = LazyClient(_build)
set_transport = _holder.set_transport
get_client = _holder.get
