"""Pure cryptographic functions of the WeChat Pay API v3 (no clock, no I/O, no randomness
except in :func:`generate_rsa_keypair` and where a nonce is explicitly asked for).

Used by both the client (``client.py``) and the simulator (``simulator.py``). Each rule is
written once here; the tests cross-check it against hand-built messages and, when installed,
against the ``wechatpayv3`` SDK, so a mistake shared by client and simulator is still caught.

- Request signature (merchant private key)::

      METHOD\\nURL_PATH_WITH_QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n

  ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"``
- Response / notify signature (WeChat Pay platform key)::

      TIMESTAMP\\nNONCE\\nBODY\\n

- Mini-program ``wx.requestPayment`` ``paySign`` (merchant private key)::

      appId\\ntimeStamp\\nnonceStr\\npackage\\n

- Signatures are ``base64(RSA-PKCS1v15-SHA256(key, utf8(message)))``; PKCS#1 v1.5 is
  deterministic, so one key and one message always give the same signature.
- Notify ``resource`` / encrypted fields: AEAD_AES_256_GCM, key = the 32-byte APIv3 key,
  nonce = the 12-character ``nonce`` string, AAD = ``associated_data`` (may be empty),
  ``ciphertext`` = base64(ciphertext || 16-byte tag).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509 import load_pem_x509_certificate

AUTH_SCHEMA = "WECHATPAY2-SHA256-RSA2048"
SIGNATURE_TYPE = AUTH_SCHEMA  # value of the Wechatpay-Signature-Type header
AEAD_ALGORITHM = "AEAD_AES_256_GCM"
APIV3_KEY_LENGTH = 32

_NONCE_ALPHABET = string.ascii_letters + string.digits
_AUTH_PARAM_RE = re.compile(r'\s*([A-Za-z_]+)="([^"]*)"\s*(?:,|$)')
_AUTH_FIELDS = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")


class WxPayCryptoError(ValueError):
    """A key, certificate, signature or ciphertext could not be loaded, verified or decrypted."""


# --------------------------------------------------------------------------------------------------
# keys


def _pem_bytes(pem: str | bytes) -> bytes:
    return pem.encode("ascii") if isinstance(pem, str) else pem


def load_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM (PKCS#8 ``BEGIN PRIVATE KEY`` as in ``apiclient_key.pem``,
    or PKCS#1 ``BEGIN RSA PRIVATE KEY``), unencrypted."""
    try:
        key = serialization.load_pem_private_key(_pem_bytes(pem), password=None)
    except (ValueError, TypeError) as exc:
        raise WxPayCryptoError("cannot load the RSA private key (PEM, unencrypted)") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise WxPayCryptoError("the private key is not an RSA key")
    return key


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    """An RSA public key from PEM: a ``BEGIN PUBLIC KEY`` (e.g. the WeChat Pay public key
    ``pub_key.pem``) or a ``BEGIN CERTIFICATE`` (its subject key is used)."""
    data = _pem_bytes(pem)
    try:
        if b"BEGIN CERTIFICATE" in data:
            key = load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise WxPayCryptoError("cannot load the RSA public key / certificate (PEM)") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise WxPayCryptoError("the public key is not an RSA key")
    return key


def certificate_serial_no(pem: str | bytes) -> str:
    """The upper-case hex serial number of an X.509 certificate (``apiclient_cert.pem``), as
    WeChat Pay shows it and as the ``serial_no`` of the Authorization header."""
    try:
        cert = load_pem_x509_certificate(_pem_bytes(pem))
    except ValueError as exc:
        raise WxPayCryptoError("cannot load the X.509 certificate (PEM)") from exc
    return format(cert.serial_number, "X")


def public_key_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    """The SubjectPublicKeyInfo PEM of a key (``BEGIN PUBLIC KEY``)."""
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    """The unencrypted PKCS#8 PEM of a private key (``BEGIN PRIVATE KEY``)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def generate_rsa_keypair(bits: int = 2048) -> tuple[str, str]:
    """A throwaway RSA key pair for dev/test: ``(private PKCS#8 PEM, public PEM)``. Never use for
    a real merchant (real keys come from the WeChat Pay merchant platform)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return private_key_pem(key), public_key_pem(key)


# --------------------------------------------------------------------------------------------------
# RSA signatures


def rsa_sign(private_key: rsa.RSAPrivateKey, message: str | bytes) -> str:
    """``base64(RSA-PKCS1v15-SHA256(private_key, message))`` (``str`` is encoded as UTF-8)."""
    data = message.encode("utf-8") if isinstance(message, str) else message
    return base64.b64encode(private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode("ascii")


def rsa_verify(public_key: rsa.RSAPublicKey, message: str | bytes, signature_b64: str) -> bool:
    """Whether ``signature_b64`` is a valid RSA-PKCS1v15-SHA256 signature of ``message``."""
    data = message.encode("utf-8") if isinstance(message, str) else message
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def make_nonce(length: int = 32) -> str:
    """A random alphanumeric nonce (``nonce_str`` ≤ 32; AES-GCM ``nonce`` = 12 characters)."""
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


def _text(body: str | bytes) -> str:
    return body.decode("utf-8") if isinstance(body, bytes) else body


def request_message(method: str, url: str, timestamp: str | int, nonce: str, body: str | bytes = "") -> str:
    """The request signature message. ``url`` is the absolute path with its query, no scheme and
    host (``/v3/bill/tradebill?bill_date=2026-01-01``); ``body`` is exactly what is sent ("" for GET)."""
    return f"{method.upper()}\n{url}\n{timestamp}\n{nonce}\n{_text(body)}\n"


def response_message(timestamp: str | int, nonce: str, body: str | bytes) -> str:
    """The response / notify signature message; ``body`` is the raw body ("" for a 204)."""
    return f"{timestamp}\n{nonce}\n{_text(body)}\n"


def pay_sign_message(app_id: str, timestamp: str, nonce_str: str, package: str) -> str:
    """The ``wx.requestPayment`` ``paySign`` message (``signType`` is not part of it)."""
    return f"{app_id}\n{timestamp}\n{nonce_str}\n{package}\n"


def build_authorization(*, mchid: str, serial_no: str, nonce_str: str, timestamp: str | int, signature: str) -> str:
    """The ``Authorization`` header value for a signed request."""
    return (f'{AUTH_SCHEMA} mchid="{mchid}",nonce_str="{nonce_str}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{serial_no}"')


def sign_request(private_key: rsa.RSAPrivateKey, *, method: str, url: str, body: str | bytes, mchid: str,
                 serial_no: str, timestamp: str | int, nonce_str: str) -> str:
    """Sign one request and return its ``Authorization`` header value."""
    signature = rsa_sign(private_key, request_message(method, url, timestamp, nonce_str, body))
    return build_authorization(mchid=mchid, serial_no=serial_no, nonce_str=nonce_str, timestamp=timestamp,
                               signature=signature)


def parse_authorization(value: str) -> dict[str, str] | None:
    """The fields of a ``WECHATPAY2-SHA256-RSA2048`` Authorization header (mchid, nonce_str,
    signature, timestamp, serial_no), or ``None`` if it is missing, of another scheme or incomplete."""
    if not value:
        return None
    schema, _, rest = value.strip().partition(" ")
    if schema != AUTH_SCHEMA or not rest:
        return None
    fields: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _AUTH_PARAM_RE.match(rest, pos)
        if m is None or m.group(1) in fields:
            return None
        fields[m.group(1)] = m.group(2)
        pos = m.end()
    if not all(fields.get(name) for name in _AUTH_FIELDS):
        return None
    return fields


# --------------------------------------------------------------------------------------------------
# AES-256-GCM (notify resources)


def _aes(apiv3_key: str | bytes) -> AESGCM:
    key = apiv3_key.encode("utf-8") if isinstance(apiv3_key, str) else apiv3_key
    if len(key) != APIV3_KEY_LENGTH:
        raise WxPayCryptoError(f"the APIv3 key must be {APIV3_KEY_LENGTH} bytes")
    return AESGCM(key)


def aes_gcm_encrypt(apiv3_key: str | bytes, *, nonce: str, associated_data: str, plaintext: str | bytes) -> str:
    """``base64(ciphertext || tag)`` of ``plaintext`` (what WeChat Pay puts in ``resource.ciphertext``)."""
    data = plaintext.encode("utf-8") if isinstance(plaintext, str) else plaintext
    raw = _aes(apiv3_key).encrypt(nonce.encode("utf-8"), data, associated_data.encode("utf-8"))
    return base64.b64encode(raw).decode("ascii")


def aes_gcm_decrypt(apiv3_key: str | bytes, *, nonce: str, associated_data: str | None, ciphertext: str) -> bytes:
    """Decrypt a ``resource`` (raises :class:`WxPayCryptoError` on a wrong key or tampered data)."""
    try:
        raw = base64.b64decode(ciphertext, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WxPayCryptoError("resource ciphertext is not valid base64") from exc
    try:
        return _aes(apiv3_key).decrypt(nonce.encode("utf-8"), raw, (associated_data or "").encode("utf-8"))
    except InvalidTag as exc:
        raise WxPayCryptoError("resource decryption failed (wrong APIv3 key or tampered data)") from exc
    except ValueError as exc:  # e.g. an empty nonce
        raise WxPayCryptoError(f"resource decryption failed: {exc}") from exc


def encrypt_resource(apiv3_key: str | bytes, *, original_type: str, plaintext: str | bytes,
                     nonce: str | None = None) -> dict[str, Any]:
    """A notify ``resource`` object: ``associated_data`` = ``original_type`` (as WeChat Pay sends)."""
    nonce = nonce or make_nonce(12)
    return {
        "original_type": original_type,
        "algorithm": AEAD_ALGORITHM,
        "ciphertext": aes_gcm_encrypt(apiv3_key, nonce=nonce, associated_data=original_type, plaintext=plaintext),
        "associated_data": original_type,
        "nonce": nonce,
    }
