import socket

import pytest

from gc_admin.config import DEMO_SECRET_KEY, ConfigError, load_settings

PROD_OK = {
    "GC_ENV": "prod",
    "GC_SECRET_KEY": "x" * 48,
    "GC_WECHAT_BASE_URL": "https://api.weixin.qq.com",
    "GC_WECHAT_APPID": "wx1234567890abcdef",
    "GC_WECHAT_SECRET": "real-secret",
    "GC_SMS_PROVIDER": "tencent",
    "GC_SMS_TENCENT_SECRET_ID": "AKID",
    "GC_SMS_TENCENT_SECRET_KEY": "key",
    "GC_SMS_TENCENT_SIGN_NAME": "滚财",
    "GC_CORS_ORIGINS": "https://admin.guncai.example",
    "GC_WXPAY_BASE_URL": "https://api.mch.weixin.qq.com",
    "GC_WXPAY_MCHID": "1230000109",
    "GC_WXPAY_MERCHANT_KEY_PATH": "/etc/gc/apiclient_key.pem",
    "GC_WXPAY_MERCHANT_SERIAL_NO": "5157F09EFDC096DE15EBE81A47057A72",
    "GC_WXPAY_APIV3_KEY": "a" * 32,
    "GC_WXPAY_PUBLIC_KEY_PATH": "/etc/gc/pub_key.pem",
    "GC_WXPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0112345678",
    "GC_DRIVER_PLATFORM_URL": "https://open.daijia.example", "GC_DRIVER_PLATFORM_SECRET": "real-driver-secret",
    "GC_CLAIMS_KEY": "cmVhbC1jbGFpbXMta2V5LTMyLWJ5dGVzLWxvbmchISE=",
}


def test_prod_refuses_the_local_driver_platform_and_its_demo_secret():
    for missing in ("GC_DRIVER_PLATFORM_URL", "GC_DRIVER_PLATFORM_SECRET"):
        with pytest.raises(ConfigError) as err:
            load_settings({k: v for k, v in PROD_OK.items() if k != missing})
        assert "GC_DRIVER_PLATFORM_URL" in str(err.value)
    assert load_settings(PROD_OK).driver_platform[:2] == ("https://open.daijia.example", "edaijia")


def test_dev_defaults_are_runnable():
    s = load_settings({})
    assert s.env == "dev" and s.simulators_enabled and s.is_sqlite
    assert s.cors_origins[0] == "http://localhost:8000"
    assert s.sms_provider == "outbox"


def test_dev_binds_to_loopback_by_default():
    s = load_settings({})
    assert s.host == "127.0.0.1" and s.loopback_only
    assert s.self_url == "http://127.0.0.1:8000"
    assert load_settings({"GC_ENV": "test"}).host == "127.0.0.1"


def test_dev_accepts_the_loopback_aliases_and_the_machine_name_as_origins():
    s = load_settings({"GC_PORT": "8123"})
    for origin in ("http://localhost:8123", "http://127.0.0.1:8123", "http://[::1]:8123",
                   f"http://{socket.gethostname().lower()}:8123"):
        assert origin in s.cors_origins
    assert len(set(s.cors_origins)) == len(s.cors_origins)
    # an explicit list is taken as given, and prod adds no aliases
    assert load_settings({"GC_CORS_ORIGINS": "http://a.example"}).cors_origins == ("http://a.example",)
    assert load_settings(PROD_OK).cors_origins == ("https://admin.guncai.example",)


def test_prod_binds_to_every_interface_unless_told():
    assert load_settings(PROD_OK).host == "0.0.0.0"
    assert load_settings({**PROD_OK, "GC_HOST": "127.0.0.1"}).host == "127.0.0.1"


@pytest.mark.parametrize("host, url", [("0.0.0.0", "http://127.0.0.1:8000"), ("::", "http://[::1]:8000"),
                                       ("::1", "http://[::1]:8000"), ("10.1.2.3", "http://10.1.2.3:8000"),
                                       ("localhost", "http://localhost:8000")])
def test_self_url_reaches_the_bound_address(host, url):
    assert load_settings({"GC_HOST": host, "GC_ALLOW_SIMULATORS": "1"}).self_url == url


def test_simulators_beyond_loopback_need_explicit_consent():
    """Bound beyond loopback, /sim would let anyone who reaches the port mint WeChat identities
    and fake payments: the dev app refuses to start that way unless GC_ALLOW_SIMULATORS=1."""
    with pytest.raises(ConfigError) as err:
        load_settings({"GC_HOST": "0.0.0.0"})
    assert "GC_ALLOW_SIMULATORS" in str(err.value) and "GC_HOST" in str(err.value)
    s = load_settings({"GC_HOST": "0.0.0.0", "GC_ALLOW_SIMULATORS": "1"})
    assert not s.loopback_only and s.simulators_enabled
    # with real endpoints configured nothing needs the simulators: they stay unmounted
    s = load_settings({"GC_HOST": "0.0.0.0", "GC_WECHAT_BASE_URL": "https://api.weixin.qq.com",
                       "GC_WXPAY_BASE_URL": "https://api.mch.weixin.qq.com", "GC_ALIPAY_GATEWAY": ""})
    assert not s.simulators_enabled
    for host in ("127.0.0.1", "127.0.0.5", "::1", "localhost"):
        assert load_settings({"GC_HOST": host}).simulators_enabled, host
    # prod never mounts them, consent or not
    assert not load_settings({**PROD_OK, "GC_ALLOW_SIMULATORS": "1"}).simulators_enabled
    with pytest.raises(ConfigError):
        load_settings({"GC_ALLOW_SIMULATORS": "maybe"})


def test_reflex_backend_host_cannot_contradict_gc_host():
    """Reflex reads REFLEX_BACKEND_HOST itself; the settings must agree with what is really bound."""
    assert load_settings({"REFLEX_BACKEND_HOST": "0.0.0.0", "GC_ALLOW_SIMULATORS": "1"}).host == "0.0.0.0"
    with pytest.raises(ConfigError) as err:
        load_settings({"REFLEX_BACKEND_HOST": "0.0.0.0", "GC_HOST": "127.0.0.1"})
    assert "REFLEX_BACKEND_HOST" in str(err.value)


def test_rxconfig_binds_where_the_settings_say():
    import rxconfig

    from gc_admin.config import get_settings

    assert rxconfig.config.backend_host == get_settings().host == "127.0.0.1"
    assert list(rxconfig.config.cors_allowed_origins) == list(get_settings().cors_origins)


def test_prod_accepts_real_settings():
    s = load_settings(PROD_OK)
    assert not s.simulators_enabled
    assert s.cors_origins == ("https://admin.guncai.example",)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ({"GC_SECRET_KEY": DEMO_SECRET_KEY}, "GC_SECRET_KEY"),
        ({"GC_SECRET_KEY": "short"}, "GC_SECRET_KEY"),
        ({"GC_WECHAT_BASE_URL": "local"}, "GC_WECHAT_BASE_URL"),
        ({"GC_WECHAT_SECRET": "demo-wechat-secret"}, "GC_WECHAT_APPID"),
        ({"GC_SMS_PROVIDER": "outbox"}, "GC_SMS_PROVIDER"),
        ({"GC_SMS_TENCENT_SECRET_KEY": ""}, "GC_SMS_TENCENT"),
        ({"GC_WXPAY_BASE_URL": "local"}, "GC_WXPAY_BASE_URL"),
        ({"GC_WXPAY_MCHID": "1900000001"}, "GC_WXPAY_MCHID"),
        ({"GC_WXPAY_APIV3_KEY": "short"}, "GC_WXPAY_APIV3_KEY"),
        ({"GC_CLAIMS_KEY": "ZGVtby1jbGFpbXMta2V5LW5vdC1mb3ItcHJvZCEhISE="}, "GC_CLAIMS_KEY"),
        ({"GC_CLAIMS_KEY": "c2hvcnQ="}, "GC_CLAIMS_KEY"),
    ],
)
def test_prod_refuses_demo_secrets(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_settings({**PROD_OK, **override})
    assert fragment in str(err.value)


def test_prod_with_nothing_set_lists_every_problem():
    with pytest.raises(ConfigError) as err:
        load_settings({"GC_ENV": "prod"})
    text = str(err.value)
    for name in ("GC_SECRET_KEY", "GC_WECHAT_BASE_URL", "GC_WECHAT_APPID", "GC_SMS_PROVIDER"):
        assert name in text


def test_wildcard_cors_is_refused_everywhere():
    with pytest.raises(ConfigError):
        load_settings({"GC_CORS_ORIGINS": "*"})


def test_bad_values_are_refused():
    with pytest.raises(ConfigError):
        load_settings({"GC_ENV": "staging"})
    with pytest.raises(ConfigError):
        load_settings({"GC_PORT": "eighty"})
