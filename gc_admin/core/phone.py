"""Mainland China mobile numbers: 11 digits, ``1[3-9]\\d{9}``."""

from __future__ import annotations

import re

PHONE_RE = re.compile(r"^1[3-9][0-9]{9}$")  # ASCII digits only: \d also matches "８"
_STRIP_RE = re.compile(r"[\s\-()]")


def normalize_phone(raw: str) -> str | None:
    """Return the 11-digit number or ``None``. Accepts spaces, dashes and a +86/0086 prefix."""
    if not isinstance(raw, str):
        return None
    s = _STRIP_RE.sub("", raw.strip())
    for prefix in ("+86", "0086"):
        if s.startswith(prefix):
            s = s[len(prefix):]
            break
    else:
        if s.startswith("86") and len(s) == 13:
            s = s[2:]
    return s if PHONE_RE.match(s) else None


def is_phone(raw: str) -> bool:
    return normalize_phone(raw) is not None


def mask_phone(phone: str | None) -> str:
    """``13812345678`` -> ``138****5678``; anything else is masked whole but for its ends."""
    if not phone:
        return ""
    if len(phone) >= 7:
        return phone[:3] + "****" + phone[-4:]
    return "*" * len(phone)


def mask_secret(value: str | None, keep: int = 4) -> str:
    """``ABCDEFGHWXYZ`` -> ``ABCD****WXYZ``: for codes, card numbers and accounts in lists."""
    if not value:
        return ""
    if len(value) <= keep * 2:
        return value[:1] + "*" * (len(value) - 1) if len(value) > 1 else "*"
    return value[:keep] + "****" + value[-keep:]
