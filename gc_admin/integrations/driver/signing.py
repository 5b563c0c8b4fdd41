"""The driver platform's request signature, used both ways (our API calls, its answers and callbacks).

Every message carries four headers:

| header | value |
|---|---|
| ``X-Dj-Key`` | the app key the platform issued to us |
| ``X-Dj-Timestamp`` | Unix seconds when it was signed |
| ``X-Dj-Nonce`` | 16–64 characters of ``[0-9A-Za-z]``, never reused |
| ``X-Dj-Signature`` | lowercase hex ``HMAC-SHA256(secret, message)`` |

``message = timestamp + "\\n" + nonce + "\\n" + target + "\\n" + body`` where ``body`` is the raw bytes as
sent and ``target`` is ``"<METHOD> <path below the base URL>[?query]"`` for an API request and empty for
an answer or a callback. A receiver refuses a message whose key is not ours, whose signature does not
verify (compared in constant time) or whose timestamp is more than :data:`MAX_SKEW_SECONDS` away from
its clock; a callback's nonce is also remembered (``driver_callback``) so a replay inside the window is
refused too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping

MAX_SKEW_SECONDS = 300
KEY, TIMESTAMP, NONCE, SIGNATURE = "X-Dj-Key", "X-Dj-Timestamp", "X-Dj-Nonce", "X-Dj-Signature"
_NONCE_RE = re.compile(r"^[0-9A-Za-z]{16,64}$")


class SignatureError(Exception):
    """Why a message was refused (English, for logs): ``code`` is ``BAD_SIGNATURE`` or ``STALE_TIMESTAMP``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def message(timestamp: str, nonce: str, body: bytes, target: str = "") -> bytes:
    return f"{timestamp}\n{nonce}\n{target}\n".encode() + body


def sign(secret: str, timestamp: str, nonce: str, body: bytes, target: str = "") -> str:
    return hmac.new(secret.encode(), message(timestamp, nonce, body, target), hashlib.sha256).hexdigest()


def signed_headers(key: str, secret: str, body: bytes, *, target: str = "", timestamp: int | None = None,
                   nonce: str | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    return {KEY: key, TIMESTAMP: ts, NONCE: nonce, SIGNATURE: sign(secret, ts, nonce, body, target)}


def _header(headers: Mapping[str, str], name: str) -> str:
    return headers.get(name) or headers.get(name.lower()) or ""


def verify(headers: Mapping[str, str], body: bytes, *, key: str, secret: str, target: str = "",
           now: float | None = None, max_skew: int = MAX_SKEW_SECONDS) -> str:
    """Check a signed message; returns its nonce or raises :class:`SignatureError`."""
    ts, nonce, sig = _header(headers, TIMESTAMP), _header(headers, NONCE), _header(headers, SIGNATURE)
    if not hmac.compare_digest(_header(headers, KEY).encode(), key.encode()):
        raise SignatureError("BAD_SIGNATURE", "unknown app key")
    if not (ts.isascii() and ts.isdigit()) or not _NONCE_RE.match(nonce):
        raise SignatureError("BAD_SIGNATURE", "timestamp or nonce missing or malformed")
    expected = sign(secret, ts, nonce, body, target)
    if not hmac.compare_digest(expected.encode(), sig.lower().encode()):
        raise SignatureError("BAD_SIGNATURE", "signature does not verify")
    if abs((time.time() if now is None else now) - int(ts)) > max_skew:
        raise SignatureError("STALE_TIMESTAMP", "timestamp outside the allowed window")
    return nonce
