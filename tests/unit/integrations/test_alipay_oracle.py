"""The Alipay simulator and our cert-SN rules against an independent implementation: ``python-alipay-sdk``
(fzlee, ``DCAliPay``, certificate mode), a test-only dependency.

If the simulator shared a mistake with our client (how requests are signed or read, how answers are
signed), the SDK — written by others, from Alipay's documents — would disagree here.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gc_admin.core.clock import SHANGHAI
from gc_admin.integrations import sims
from gc_admin.integrations.alipay import setup, signing
from gc_admin.integrations.alipay.simulator import transfers_for
from tests.unit.integrations.test_alipay_client import served

alipay_sdk = pytest.importorskip("alipay")  # python-alipay-sdk
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # its pyOpenSSL X509.get_issuer

KAT = Path(__file__).parent / "alipay_kat"


class _BeijingClock(dt.datetime):
    """The SDK stamps requests with naive ``datetime.now()``: on a UTC server that is 8 hours off Beijing time
    (a real bug of the SDK, see shared/notes/integrations.md). Give it Beijing wall time."""

    @classmethod
    def now(cls, tz=None):
        return dt.datetime.now(SHANGHAI).replace(tzinfo=None)


def sdk(pki, app_id: str):
    return alipay_sdk.DCAliPay(appid=app_id, app_private_key_string=pki.app_private_key,
                               app_public_key_cert_string=pki.app_cert, alipay_public_key_cert_string=pki.alipay_cert,
                               alipay_root_cert_string=pki.alipay_root_cert)


def test_the_sdk_computes_the_same_cert_sns(api):
    client, pki = setup.get_client(), setup.dev_pki()
    oracle = sdk(pki, client.app_id)
    assert oracle.app_cert_sn == client.app_cert_sn
    assert oracle.alipay_root_cert_sn == client.alipay_root_cert_sn
    assert alipay_sdk.DCAliPay.get_cert_sn((KAT / "kat_cert.pem").read_text()) == \
        signing.cert_sn((KAT / "kat_cert.pem").read_text())


def test_the_sdk_transfers_and_queries_through_the_simulator(api, monkeypatch):
    from gc_admin.api import build_api

    monkeypatch.setattr(alipay_sdk, "datetime", _BeijingClock)
    sim, client = sims.simulators().alipay, setup.get_client()
    oracle = sdk(setup.dev_pki(), client.app_id)
    with served(build_api()) as gateway:
        oracle._gateway = gateway  # the SDK sends everything as a GET query string
        # the SDK verifies the simulator's signature over the exact node text, or raises
        paid = oracle.api_alipay_fund_trans_uni_transfer(out_biz_no="GC-ORACLE-1", identity_type="ALIPAY_LOGON_ID",
                                                         identity="13800000001", name="张三", trans_amount="12.30",
                                                         order_title="加油返现")
        assert (paid["code"], paid["status"], paid["out_biz_no"]) == ("10000", "SUCCESS", "GC-ORACLE-1")
        again = oracle.api_alipay_fund_trans_uni_transfer(out_biz_no="GC-ORACLE-1", identity_type="ALIPAY_LOGON_ID",
                                                          identity="13800000001", name="张三", trans_amount="12.30",
                                                          order_title="加油返现")
        assert again["order_id"] == paid["order_id"]
        found = oracle.server_api("alipay.fund.trans.common.query", {"out_biz_no": "GC-ORACLE-1",
                                                                     "product_code": "TRANS_ACCOUNT_NO_PWD",
                                                                     "biz_scene": "DIRECT_TRANSFER"})
        assert (found["status"], found["trans_amount"], found["order_id"]) == ("SUCCESS", "12.30", paid["order_id"])
        missing = oracle.server_api("alipay.fund.trans.common.query", {"out_biz_no": "GC-ORACLE-NONE"})
        assert (missing["code"], missing["sub_code"]) == ("40004", "ORDER_NOT_EXIST")
    # our client reads the SDK's transfer as the same single order
    assert client.query(out_biz_no="GC-ORACLE-1").order_id == paid["order_id"]
    assert len(transfers_for(sim, "GC-ORACLE-1")) == 1
