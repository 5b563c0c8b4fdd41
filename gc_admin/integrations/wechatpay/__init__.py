"""WeChat Pay API v3 (direct merchant, JSAPI / mini-program, public-key mode).

- ``crypto.py``: pure signing, verification and AES-GCM functions of the protocol.
- ``client.py``: :class:`WxPayClient` (sync httpx): prepay, ``wx.requestPayment`` parameters,
  query/close, refunds, trade bill download, notify verification and decryption.
- ``simulator.py``: a protocol-true local WeChat Pay (dev/test only, mounted at ``/sim/wechatpay``).
- ``billing.py``: trade bill CSV -> typed polars frame (amounts as int fen).
"""

from gc_admin.integrations.wechatpay.client import WxPayClient, WxPayError, WxPayNotifyError

__all__ = ["WxPayClient", "WxPayError", "WxPayNotifyError"]
