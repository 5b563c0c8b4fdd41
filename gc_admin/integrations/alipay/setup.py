"""The process-wide Alipay client, built from settings (``GC_ALIPAY_*``).

``GC_ALIPAY_GATEWAY=local`` (the dev/test default): the client talks to this app's own simulator
under ``/sim/alipay`` with throwaway certificates shared through ``GC_ALIPAY_DEV_CERTS``, so the
demo and the tests transfer through the same code as production. Empty (the prod default): no
Alipay transfers (:class:`AlipayNotConfigured`; payouts are then manual).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from gc_admin.config import get_settings
from gc_admin.integrations.alipay.certs import DevPki, load_or_create_dev_pki
from gc_admin.integrations.alipay.client import AlipayClient
from gc_admin.integrations.alipay.simulator import AlipaySimState
from gc_admin.integrations.lazy import LazyClient

class AlipayNotConfigured(RuntimeError):
    """``GC_ALIPAY_GATEWAY`` is empty: this deployment makes no Alipay transfers."""


def dev_pki() -> DevPki:
    s = get_settings().alipay
    return load_or_create_dev_pki(s.dev_certs_path, app_id=s.app_id)


def sim_state() -> AlipaySimState:
    """A simulator that accepts the local client (same app id, the dev certificates)."""
    pki, app_id = dev_pki(), get_settings().alipay.app_id
    return AlipaySimState(app_id=app_id, app_cert_pem=pki.app_cert, alipay_private_key_pem=pki.alipay_private_key,
                          alipay_cert_pem=pki.alipay_cert, alipay_root_cert_pem=pki.alipay_root_cert)


def configured() -> bool:
    return bool(get_settings().alipay.gateway)


def _build(transport: httpx.BaseTransport | None) -> AlipayClient:
    s = get_settings()
    a = s.alipay
    if not a.gateway:
        raise AlipayNotConfigured("GC_ALIPAY_GATEWAY is not set: Alipay transfers are off")
    if a.gateway == "local":
        pki = dev_pki()
        key, app_cert, alipay_cert, root = pki.app_private_key, pki.app_cert, pki.alipay_cert, pki.alipay_root_cert
        gateway = f"{s.self_url}/sim/alipay/gateway.do"
    else:
        key, app_cert, alipay_cert, root = (Path(f).read_text() for f in (
            a.app_private_key_path, a.app_cert_path, a.alipay_cert_path, a.alipay_root_cert_path))
        gateway = a.gateway
    return AlipayClient(app_id=a.app_id, app_private_key_pem=key, app_cert_pem=app_cert,
                        alipay_cert_pem=alipay_cert, alipay_root_cert_pem=root, gateway=gateway,
                        timeout=float(a.timeout_seconds), transport=transport)


_holder: LazyClient[AlipayClient] = LazyClient(_build)
set_transport = _holder.set_transport


def get_client() -> AlipayClient:
    """The client for the configured gateway (raises :class:`AlipayNotConfigured` when there is none)."""
    return _holder.get()
