"""Pure cryptographic rules of the Alipay open API in public-key-certificate mode (公钥证书模式).

No clock, no I/O. Used by the client and the simulator alike; the tests check each rule against
values computed independently (the ``openssl`` command line), so a mistake shared by client and
simulator is still caught.

- **Request signature** (RSA2 = SHA256withRSA, PKCS#1 v1.5, base64): over every request parameter
  except ``sign`` whose value is not empty, sorted by key (ASCII), joined as ``k=v`` with ``&``,
  raw (not URL-encoded) values; ``sign_type`` is included. :func:`sign_content`, :func:`sign_params`.
- **Response signature**: over the exact JSON text of the ``<method>_response`` (or
  ``error_response``) member as it appears in the body — not a re-serialisation — with the Alipay
  certificate's key; the body also carries ``sign`` and ``alipay_cert_sn``. :func:`signed_node`
  finds the member's exact span by walking the top-level object with the JSON decoder (a
  duplicated member is refused); :func:`signed_body` builds such a body.
- **Certificate SN**: ``md5_hex(issuer DN as RFC 2253/4514 string + decimal serial)``, e.g.
  ``md5("CN=Ant Financial Certification Authority Class 2 R1,OU=Certification Authority,O=Ant
  Financial,C=CN" + "4096...")`` (:func:`cert_sn`). ``alipay_root_cert_sn`` is the SNs of the
  certificates in ``alipayRootCert.crt`` whose signature algorithm is RSA (OID 1.2.840.113549.1.1.*),
  joined with ``_``; the SM2 ones are skipped (:func:`root_cert_sn`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from gc_admin.integrations.wechatpay.crypto import (  # the same SHA256withRSA primitives as WeChat Pay
    WxPayCryptoError,
    load_private_key as _load_private_key,
    rsa_sign,
    rsa_verify,
)

RSA_SIGNATURE_OID_PREFIX = "1.2.840.113549.1.1."

__all__ = [
    "AlipayCryptoError", "ResponseNode", "cert_public_key", "cert_sn", "load_certificates", "load_private_key", "root_cert_sn",
    "rsa_sign", "rsa_verify", "sign_content", "sign_params", "signed_body", "signed_node", "top_level_members",
    "verify_params",
]


class AlipayCryptoError(ValueError):
    """A key or certificate cannot be loaded, or a response cannot be taken apart for verification."""


def _pem(data: str | bytes) -> bytes:
    return data.encode("ascii") if isinstance(data, str) else data


def load_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    """The application private key (PKCS#8 or PKCS#1 PEM, unencrypted, RSA)."""
    try:
        return _load_private_key(pem)
    except WxPayCryptoError as exc:
        raise AlipayCryptoError(str(exc)) from None


def load_certificates(pem: str | bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM file (``alipayRootCert.crt`` holds several)."""
    try:
        certs = x509.load_pem_x509_certificates(_pem(pem))
    except ValueError as exc:
        raise AlipayCryptoError("cannot load the X.509 certificate(s) (PEM)") from exc
    if not certs:
        raise AlipayCryptoError("no certificate in the PEM data")
    return certs


def cert_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    """The RSA public key of the first certificate in ``pem`` (e.g. ``alipayCertPublicKey_RSA2.crt``)."""
    key = load_certificates(pem)[0].public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise AlipayCryptoError("the certificate's key is not an RSA key")
    return key


def cert_sn(cert: x509.Certificate | str | bytes) -> str:
    """Alipay's SN of one certificate (``app_cert_sn``, ``alipay_cert_sn``)."""
    if not isinstance(cert, x509.Certificate):
        cert = load_certificates(cert)[0]
    return hashlib.md5((cert.issuer.rfc4514_string() + str(cert.serial_number)).encode("utf-8")).hexdigest()


def root_cert_sn(pem: str | bytes) -> str:
    """``alipay_root_cert_sn``: the SNs of the RSA-signed certificates of the root file, joined by ``_``."""
    sns = [cert_sn(c) for c in load_certificates(pem)
           if c.signature_algorithm_oid.dotted_string.startswith(RSA_SIGNATURE_OID_PREFIX)]
    if not sns:
        raise AlipayCryptoError("the Alipay root certificate file holds no RSA certificate")
    return "_".join(sns)


def sign_content(params: Mapping[str, Any], *, exclude: Iterable[str] = ("sign",)) -> str:
    """The string a request (or notify, with ``exclude=("sign", "sign_type")``) is signed over."""
    skip = set(exclude)
    items = sorted((k, str(v)) for k, v in params.items() if k not in skip and v is not None and str(v) != "")
    return "&".join(f"{k}={v}" for k, v in items)


def sign_params(private_key: rsa.RSAPrivateKey, params: Mapping[str, Any]) -> str:
    """The ``sign`` of request parameters."""
    return rsa_sign(private_key, sign_content(params))


def verify_params(public_key: rsa.RSAPublicKey, params: Mapping[str, Any], *,
                  exclude: Iterable[str] = ("sign",)) -> bool:
    """Whether ``params["sign"]`` signs the other parameters."""
    sign = params.get("sign")
    return isinstance(sign, str) and bool(sign) and rsa_verify(public_key, sign_content(params, exclude=exclude), sign)


# --------------------------------------------------------------------------------------------------
# responses

_DECODER = json.JSONDecoder()
_WS = " \t\n\r"


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos


def top_level_members(text: str) -> dict[str, tuple[Any, int, int]]:
    """``{key: (value, start, end)}`` of a JSON object's members, ``text[start:end]`` being the exact
    text of each value. Raises :class:`AlipayCryptoError` if ``text`` is not one JSON object or a
    key appears twice (which member was signed would be ambiguous)."""
    members: dict[str, tuple[Any, int, int]] = {}
    pos = _skip_ws(text, 0)
    if not text.startswith("{", pos):
        raise AlipayCryptoError("the response is not a JSON object")
    pos = _skip_ws(text, pos + 1)
    if text.startswith("}", pos):
        pos += 1
    else:
        while True:
            if not text.startswith('"', pos):
                raise AlipayCryptoError("malformed JSON response (member name expected)")
            try:
                key, pos = json.decoder.scanstring(text, pos + 1)
                pos = _skip_ws(text, pos)
                if not text.startswith(":", pos):
                    raise AlipayCryptoError("malformed JSON response (':' expected)")
                start = _skip_ws(text, pos + 1)
                value, end = _DECODER.raw_decode(text, start)
            except ValueError as exc:
                raise AlipayCryptoError(f"malformed JSON response: {exc}") from None
            if key in members:
                raise AlipayCryptoError(f"the response repeats the member {key!r}")
            members[key] = (value, start, end)
            pos = _skip_ws(text, end)
            if text.startswith(",", pos):
                pos = _skip_ws(text, pos + 1)
                continue
            if text.startswith("}", pos):
                pos += 1
                break
            raise AlipayCryptoError("malformed JSON response (',' or '}' expected)")
    if _skip_ws(text, pos) != len(text):
        raise AlipayCryptoError("trailing data after the JSON response")
    return members


@dataclasses.dataclass(frozen=True)
class ResponseNode:
    """The response member of an Alipay answer: its key, parsed value and exact text, with the
    body's ``sign`` and ``alipay_cert_sn`` (``None`` when absent or not strings)."""

    key: str
    value: dict[str, Any]
    text: str
    sign: str | None
    alipay_cert_sn: str | None


def signed_node(body: str, keys: Iterable[str]) -> ResponseNode:
    """The first of ``keys`` (``<method>_response``, then ``error_response``) present in ``body``."""
    members = top_level_members(body)
    extra = {name: members[name][0] if name in members and isinstance(members[name][0], str) else None
             for name in ("sign", "alipay_cert_sn")}
    for key in keys:
        if key in members:
            value, start, end = members[key]
            if not isinstance(value, dict):
                raise AlipayCryptoError(f"{key} is not a JSON object")
            return ResponseNode(key=key, value=value, text=body[start:end], sign=extra["sign"],
                                alipay_cert_sn=extra["alipay_cert_sn"])
    raise AlipayCryptoError("the response has no response node")


def signed_body(private_key: rsa.RSAPrivateKey, key: str, node: Mapping[str, Any], *, alipay_cert_sn: str) -> str:
    """A response body as Alipay sends it: ``{"<key>":{...},"alipay_cert_sn":"...","sign":"..."}``,
    the signature over the node's text exactly as placed in the body."""
    text = json.dumps(dict(node), ensure_ascii=False, separators=(",", ":"))
    sign = rsa_sign(private_key, text)
    return "{" + json.dumps(key) + ":" + text + ',"alipay_cert_sn":' + json.dumps(alipay_cert_sn) + ',"sign":' + \
        json.dumps(sign) + "}"
