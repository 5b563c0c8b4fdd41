"""Payout accounts and card numbers at rest: AES-256-GCM with the key from ``GC_CLAIMS_KEY``.

A stored value is ``v1:<base64(nonce 12 bytes | ciphertext | tag)>``; the claim id is not known
before the insert, so the associated data is the field's name (a card number cannot be moved into
the real-name column and decrypt). The demo key is refused in prod by ``check-config``
(:func:`gc_admin.config.validate`). Decrypting is the payout step's business, or an audited reveal.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gc_admin.config import get_settings

PREFIX = "v1:"


def _aead() -> AESGCM:
    return AESGCM(base64.b64decode(get_settings().claims.key_b64))


def encrypt(value: str, *, field: str) -> str:
    nonce = os.urandom(12)
    sealed = _aead().encrypt(nonce, value.encode(), field.encode())
    return PREFIX + base64.b64encode(nonce + sealed).decode()


def decrypt(stored: str, *, field: str) -> str:
    if not stored.startswith(PREFIX):
        raise ValueError("not an encrypted claim field")
    raw = base64.b64decode(stored[len(PREFIX):])
    return _aead().decrypt(raw[:12], raw[12:], field.encode()).decode()


def mask_account(value: str) -> str:
    """``138****5678`` for a phone-like Alipay account, ``a***@qq.com`` for an e-mail,
    ``6222 **** **** 1234`` style (``6222****1234``) for a card."""
    if "@" in value:
        name, _, domain = value.partition("@")
        return f"{name[:1]}***@{domain}"
    if len(value) <= 4:
        return "*" * len(value)
    keep = 3 if len(value) == 11 else 4
    return f"{value[:keep]}****{value[-4:]}"


def mask_name(value: str) -> str:
    """``张*`` / ``欧阳**``: the family name only."""
    return value[:1] + "*" * max(1, len(value) - 1) if value else ""
