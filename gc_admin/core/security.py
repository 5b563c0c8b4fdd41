"""Password hashing (argon2), opaque session tokens and signed mini-program tokens."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets
import time
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gc_admin.config import get_settings
from gc_admin.core.clock import utcnow

_hasher = PasswordHasher()
# A hash of a random password: verifying against it costs as much as a real check, so a
# sign-in for an unknown username takes as long as one for a known username.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MIN_PASSWORD_LEN = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; constant work whether or not the user exists."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """A Chinese reason why ``password`` is not acceptable, or ``None``."""
    if len(password) < MIN_PASSWORD_LEN:
        return f"密码至少 {MIN_PASSWORD_LEN} 位"
    if len(password) > 128:
        return "密码不能超过 128 位"
    if password.isdigit() or password.isalpha():
        return "密码需同时包含字母和数字"
    return None


def new_token() -> str:
    """A random opaque bearer token (only its hash is stored)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hmac_digest(value: str) -> str:
    """Keyed digest for short secrets (SMS codes) so a database leak does not reveal them."""
    key = get_settings().secret_key.encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def issue_jwt(subject: str, *, kind: str, minutes: int, extra: dict[str, Any] | None = None) -> tuple[str, dt.datetime]:
    now = utcnow()
    exp = now + dt.timedelta(minutes=minutes)
    payload = {"sub": subject, "typ": kind, "iat": int(now.timestamp()), "exp": int(exp.timestamp())}
    payload.update(extra or {})
    return jwt.encode(payload, get_settings().secret_key, algorithm="HS256"), exp


@functools.lru_cache(maxsize=8192)
def _verified(token: str, secret: str) -> dict[str, Any] | None:
    """The payload of ``token`` if its signature under ``secret`` holds and it was unexpired when first
    checked; ``None`` for a bad one. Cached: a token is immutable, so its signature need only be checked
    once per process (HMAC + JSON parsing was a tenth of 我的礼券's server time); the expiry is checked
    again on every use by :func:`read_jwt`. Keyed by the secret too, so a changed key re-checks."""
    try:
        return jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError:
        return None


def read_jwt(token: str, *, kind: str) -> dict[str, Any] | None:
    """The payload of a valid, unexpired token of ``kind``; ``None`` otherwise (a copy: callers may keep it)."""
    payload = _verified(token, get_settings().secret_key)
    if payload is None or not payload["exp"] > time.time():  # PyJWT's own rule: expired once exp <= now
        return None
    return dict(payload) if payload.get("typ") == kind else None
