"""Money is an ``int`` number of fen everywhere; formatting happens only at the edge."""

from __future__ import annotations

import re

_YUAN_RE = re.compile(r"^\s*(-)?(\d{1,12})(?:\.(\d{1,2}))?\s*$")


def format_fen(fen: int, *, symbol: bool = True) -> str:
    """``123450`` -> ``¥1,234.50``; negative amounts keep their sign before the symbol."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"money must be int fen, got {type(fen).__name__}")
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{'¥' if symbol else ''}{yuan:,}.{cents:02d}"


def parse_yuan(text: str) -> int:
    """Parse a yuan amount typed by a person (``"12"``, ``"12.5"``, ``"12.34"``) into fen.

    Exact decimal parsing, no floats: raises ``ValueError`` for anything else.
    """
    m = _YUAN_RE.match(text.replace(",", "").replace("¥", "").replace("￥", ""))
    if not m:
        raise ValueError(f"not a yuan amount: {text!r}")
    neg, whole, frac = m.groups()
    fen = int(whole) * 100 + int((frac or "0").ljust(2, "0"))
    return -fen if neg else fen
