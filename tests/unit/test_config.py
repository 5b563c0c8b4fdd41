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
}


def test_dev_defaults_are_runnable():
    s = load_settings({})
    assert s.env == "dev" and s.simulators_enabled and s.is_sqlite
    assert s.cors_origins == ("http://localhost:8000",)
    assert s.sms_provider == "outbox"


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
