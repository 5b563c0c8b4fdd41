"""Times are stored in UTC and shown in Asia/Shanghai."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """Treat naive datetimes (as SQLite returns them) as UTC; convert aware ones."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def fmt_local(value: dt.datetime | None, *, seconds: bool = False) -> str:
    """``2026-11-21 14:05`` in Asia/Shanghai, for people."""
    if value is None:
        return ""
    local = as_utc(value).astimezone(SHANGHAI)
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def iso(value: dt.datetime | None) -> str | None:
    """ISO-8601 with offset, for the API."""
    if value is None:
        return None
    if value.tzinfo is UTC:  # what UTCDateTime columns return: no conversion needed
        return value.isoformat()
    return as_utc(value).isoformat()
