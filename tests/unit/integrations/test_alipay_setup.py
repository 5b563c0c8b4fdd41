"""GC_ALIPAY_* settings and the process-wide client they build (integrations/alipay/setup.py)."""

from __future__ import annotations

import pytest

from gc_admin.config import ConfigError, get_settings, load_settings
from gc_admin.integrations.alipay import setup, signing
from gc_admin.integrations.alipay.certs import DevPki, load_or_create_dev_pki
from tests.unit.core.test_config import PROD_OK


def test_dev_and_test_default_to_the_simulator_prod_to_no_transfers():
    assert load_settings({}).alipay.gateway == "local"
    assert load_settings(PROD_OK).alipay.gateway == ""  # payouts are manual until Alipay is configured


@pytest.mark.parametrize("env, needle", [
    ({**PROD_OK, "GC_ALIPAY_GATEWAY": "local"}, "GC_ALIPAY_GATEWAY must be the real"),
    ({**PROD_OK, "GC_ALIPAY_GATEWAY": "https://openapi.alipay.com/gateway.do"}, "GC_ALIPAY_APP_PRIVATE_KEY_PATH"),
    ({**PROD_OK, "GC_ALIPAY_GATEWAY": "https://openapi.alipay.com/gateway.do", "GC_ALIPAY_APP_PRIVATE_KEY_PATH": "k",
      "GC_ALIPAY_APP_CERT_PATH": "a", "GC_ALIPAY_CERT_PATH": "b", "GC_ALIPAY_ROOT_CERT_PATH": "r"}, "GC_ALIPAY_APP_ID"),
    ({"GC_ALIPAY_TIMEOUT_SECONDS": "0"}, "GC_ALIPAY_TIMEOUT_SECONDS"),
    ({"GC_HOST": "0.0.0.0", "GC_WECHAT_BASE_URL": "https://api.weixin.qq.com",
      "GC_WXPAY_BASE_URL": "https://api.mch.weixin.qq.com"}, "GC_ALIPAY_GATEWAY=local"),
])
def test_unsafe_or_incomplete_alipay_settings_are_refused(env, needle):
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert needle in str(err.value)


def test_a_real_gateway_reads_the_four_certificate_mode_files(tmp_path, monkeypatch):
    pki = DevPki.generate(app_id="2021000111111111")
    paths = {}
    for name, text in [("APP_PRIVATE_KEY", pki.app_private_key), ("APP_CERT", pki.app_cert),
                       ("CERT", pki.alipay_cert), ("ROOT_CERT", pki.alipay_root_cert)]:
        (tmp_path / name).write_text(text)
        paths[f"GC_ALIPAY_{name}_PATH"] = str(tmp_path / name)
    for k, v in {**paths, "GC_ALIPAY_GATEWAY": "https://openapi.alipay.com/gateway.do",
                 "GC_ALIPAY_APP_ID": "2021000111111111", "GC_ALIPAY_TIMEOUT_SECONDS": "7"}.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    setup.set_transport(None)
    try:
        client = setup.get_client()
        assert client.gateway == "https://openapi.alipay.com/gateway.do" and client.app_id == "2021000111111111"
        assert client.app_cert_sn == signing.cert_sn(pki.app_cert)
        assert client.alipay_root_cert_sn == signing.root_cert_sn(pki.alipay_root_cert)
        assert client._http.timeout.read == 7.0
    finally:
        setup.set_transport(None)
        monkeypatch.undo()
        get_settings.cache_clear()


def test_no_gateway_means_no_client(monkeypatch):
    monkeypatch.setenv("GC_ALIPAY_GATEWAY", "")
    get_settings.cache_clear()
    setup.set_transport(None)
    try:
        assert not setup.configured()
        with pytest.raises(setup.AlipayNotConfigured):
            setup.get_client()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_dev_certificates_are_made_once_and_shared(tmp_path):
    path = tmp_path / "d" / "alipay_dev_certs.json"
    first = load_or_create_dev_pki(path, app_id="2021000000000000")
    assert load_or_create_dev_pki(path, app_id="2021000000000000") == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary file left
