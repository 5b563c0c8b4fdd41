"""The pure Alipay rules (integrations/alipay/signing.py, protocol.py) against independent values.

Known answers come from the ``openssl`` command line (see alipay_kat/README.md), so a rule that the
client and the simulator both got wrong still fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gc_admin.integrations.alipay import protocol, signing
from gc_admin.integrations.alipay.certs import DevPki

KAT = Path(__file__).parent / "alipay_kat"
KAT_MESSAGE = ('app_id=2021000000000000&biz_content={"out_biz_no":"GC-KAT-1","trans_amount":"12.30"}&charset=utf-8'
               '&method=alipay.fund.trans.uni.transfer&sign_type=RSA2&timestamp=2026-12-01 20:00:00&version=1.0')
# openssl dgst -sha256 -sign kat_private_key.pem msg.txt | base64 -w0
KAT_SIGNATURE = ("Ka53iPgQ7hbOZMYFKWGzBmSwQedY1BI8KAtEV6OxYrYSFhisXA8o9KcmyQnAlb9hnZ5BIyIaw3OqbHwc84WX5mBTidD0JpMuWKkeMAy"
                 "MreCUxMdcG+QwwhSiFMSGjALbOzDwViu7JXZhAr6GNQsfJo4YZtXm+dNLRq0rf5Okyk2eGx5i5DlErF9F1ZztbIysi/T+z7q3FrTXkQ"
                 "SyEXeWX5H2bCIRU0X5jifZq0oDUvbIjGaZJRkE9k/kGUoBU9mvZWPAjqx7UaicA8veDB8Jn9mtcf8TkIRlqxxY+FSQWSyEBm3SX7E"
                 "CAs5Du4OnvvP3Ji9PPok8PDdbU9/WXlrxaA==")
# md5("CN=Ant Financial Certification Authority Class 2 R1,OU=Certification Authority,O=Ant Financial,C=CN"
#     + "4096778899112233445566")
KAT_CERT_SN = "05b0b86360c831ed0c92ff7f94493a37"
KAT_RSA384_SN = "7e8963e880f82f692b2b6727420bc297"  # the third cert of the chain
KAT_EC_SN = "6212f4cb7bff4339e2e1b442b15da613"  # the second (ECDSA) one, which the root rule skips


def kat(name: str) -> str:
    return (KAT / name).read_text(encoding="ascii")


# --- request signatures -------------------------------------------------------------------------------

def test_sign_content_sorts_drops_sign_and_empties_and_keeps_raw_values():
    params = {"version": "1.0", "sign": "ignored", "method": "alipay.fund.trans.uni.transfer", "notify_url": "",
              "timestamp": "2026-12-01 20:00:00", "app_id": "2021000000000000", "sign_type": "RSA2",
              "charset": "utf-8", "biz_content": '{"out_biz_no":"GC-KAT-1","trans_amount":"12.30"}', "x": None}
    assert signing.sign_content(params) == KAT_MESSAGE  # raw values: the space and the JSON stay unencoded
    assert signing.sign_content(params, exclude=("sign", "sign_type")) == KAT_MESSAGE.replace("&sign_type=RSA2", "")


def test_rsa2_signature_matches_openssl_known_answer():
    key = signing.load_private_key(kat("kat_private_key.pem"))  # a PKCS#1 "BEGIN RSA PRIVATE KEY" file
    params = dict(part.split("=", 1) for part in KAT_MESSAGE.split("&"))
    assert signing.sign_params(key, params) == KAT_SIGNATURE
    assert signing.rsa_verify(signing.cert_public_key(kat("kat_cert.pem")), KAT_MESSAGE, KAT_SIGNATURE)


def test_signature_round_trip_and_any_change_breaks_it():
    pki = DevPki.generate()
    key, pub = signing.load_private_key(pki.app_private_key), signing.cert_public_key(pki.app_cert)
    params = {"app_id": "2021000000000000", "biz_content": '{"name":"张三"}', "method": "m", "sign_type": "RSA2"}
    params["sign"] = signing.sign_params(key, params)
    assert signing.verify_params(pub, params)
    assert not signing.verify_params(pub, {**params, "biz_content": '{"name":"李四"}'})
    assert not signing.verify_params(pub, {**params, "sign_type": "RSA"})  # sign_type is signed
    assert not signing.verify_params(signing.cert_public_key(pki.alipay_cert), params)  # another key
    assert not signing.verify_params(pub, {k: v for k, v in params.items() if k != "sign"})
    assert not signing.verify_params(pub, {**params, "sign": "not base64!"})


# --- certificate SNs ----------------------------------------------------------------------------------

def test_cert_sn_matches_openssl_known_answer():
    assert signing.cert_sn(kat("kat_cert.pem")) == KAT_CERT_SN


def test_root_cert_sn_joins_the_rsa_certificates_and_skips_the_others():
    chain = kat("kat_root_chain.pem")
    assert [signing.cert_sn(c) for c in signing.load_certificates(chain)] == [KAT_CERT_SN, KAT_EC_SN, KAT_RSA384_SN]
    assert signing.root_cert_sn(chain) == f"{KAT_CERT_SN}_{KAT_RSA384_SN}"


def test_dev_pki_has_alipays_shape():
    pki = DevPki.generate()
    roots = signing.load_certificates(pki.alipay_root_cert)
    assert len(roots) == 3 and len(signing.root_cert_sn(pki.alipay_root_cert).split("_")) == 2
    app = signing.load_certificates(pki.app_cert)[0]
    assert app.issuer.rfc4514_string().startswith("CN=GC Demo Alipay Certification Authority Class 2 R1,")
    assert signing.cert_sn(pki.app_cert) != signing.cert_sn(pki.alipay_cert)
    with pytest.raises(signing.AlipayCryptoError):
        signing.root_cert_sn(kat("kat_root_chain.pem").split("-----END CERTIFICATE-----")[1] + "-----END CERTIFICATE-----\n")


# --- response nodes -----------------------------------------------------------------------------------

KEY = "alipay_fund_trans_uni_transfer_response"


def test_the_signed_node_is_the_exact_text_not_a_reserialisation():
    node_text = '{ "code" : "10000", "msg":"Success","sub_msg":"\\u6210\\u529f \\"x\\"","status":"SUCCESS" }'
    body = f'{{"{KEY}":{node_text} , "alipay_cert_sn":"abc","sign":"c2ln"}}'
    node = signing.signed_node(body, (KEY, protocol.ERROR_RESPONSE_KEY))
    assert node.text == node_text
    assert node.value["status"] == "SUCCESS" and node.sign == "c2ln" and node.alipay_cert_sn == "abc"


def test_a_node_name_inside_a_string_is_not_the_node():
    body = json.dumps({"error_response": {"code": "40004", "sub_msg": f'"{KEY}":{{"status":"SUCCESS"}}'}, "sign": "x"})
    node = signing.signed_node(body, (KEY, protocol.ERROR_RESPONSE_KEY))
    assert node.key == "error_response" and node.value["code"] == "40004"


@pytest.mark.parametrize("body", [
    f'{{"{KEY}":{{"code":"10000"}},"{KEY}":{{"code":"40004"}},"sign":"x"}}',  # which one was signed?
    f'{{"{KEY}":{{"code":"10000"}},"sign":"x"}} trailing',
    f'{{"{KEY}":"10000","sign":"x"}}',
    '["not", "an", "object"]',
    '{"other_response":{}}',
    '{"a" 1}',
])
def test_ambiguous_or_malformed_bodies_are_refused(body):
    with pytest.raises(signing.AlipayCryptoError):
        signing.signed_node(body, (KEY, protocol.ERROR_RESPONSE_KEY))


def test_signed_body_verifies_and_tampering_does_not():
    pki = DevPki.generate()
    body = signing.signed_body(signing.load_private_key(pki.alipay_private_key), KEY,
                               {"code": "10000", "status": "SUCCESS", "sub_msg": "成功"}, alipay_cert_sn="sn")
    pub = signing.cert_public_key(pki.alipay_cert)
    node = signing.signed_node(body, (KEY,))
    assert "成功" in node.text and signing.rsa_verify(pub, node.text, node.sign)
    tampered = signing.signed_node(body.replace("SUCCESS", "SUCCES5"), (KEY,))
    assert not signing.rsa_verify(pub, tampered.text, tampered.sign)


# --- money --------------------------------------------------------------------------------------------

@given(st.integers(min_value=0, max_value=10**15))
def test_fen_yuan_round_trip(fen):
    yuan = protocol.fen_to_yuan(fen)
    assert protocol.yuan_to_fen(yuan) == fen
    whole, dot, cents = yuan.partition(".")
    assert dot and len(cents) == 2 and int(whole) * 100 + int(cents) == fen


@pytest.mark.parametrize("fen, yuan", [(0, "0.00"), (1, "0.01"), (10, "0.10"), (1230, "12.30"), (5_000_000, "50000.00")])
def test_fen_to_yuan_examples(fen, yuan):
    assert protocol.fen_to_yuan(fen) == yuan


@pytest.mark.parametrize("yuan, fen", [("12.3", 1230), ("12", 1200), ("0.1", 10), ("0.05", 5)])
def test_yuan_strings_alipay_may_send(yuan, fen):
    assert protocol.yuan_to_fen(yuan) == fen


@pytest.mark.parametrize("bad", ["12.345", "-1.00", "+1", "1e3", " 1.00", "1.00 ", "01.00", ".5", "1.", "", "NaN", 12.3])
def test_non_yuan_strings_are_refused(bad):
    with pytest.raises(ValueError):
        protocol.yuan_to_fen(bad)


@pytest.mark.parametrize("bad, error", [(12.3, TypeError), (True, TypeError), ("1230", TypeError), (-1, ValueError)])
def test_fen_must_be_a_non_negative_int(bad, error):
    with pytest.raises(error):
        protocol.fen_to_yuan(bad)
