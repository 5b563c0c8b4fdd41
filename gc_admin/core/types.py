"""Column types shared by every table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field

from gc_admin.core.clock import UTC


class UTCDateTime(TypeDecorator):
    """A timestamp that is always UTC: ``timestamptz`` on PostgreSQL, naive-UTC text on SQLite.

    Values go in as aware datetimes (naive ones are refused: their zone is unknowable) and
    always come back aware in UTC, whatever the backend.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utc_field(*, nullable: bool = False, index: bool = False, **kw: Any) -> Any:
    """A SQLModel field stored as :class:`UTCDateTime`."""
    return Field(sa_type=UTCDateTime, nullable=nullable, index=index, **kw)


def one_of(column: str, values: Iterable[str]) -> str:
    """A CHECK constraint's condition: ``column`` holds one of ``values`` (an enum's keys).

    An OR chain, not IN (...): SQLite rebuilds an IN list's ephemeral table on every execution of a
    prepared INSERT, which made bulk inserts ~2x slower."""
    return " OR ".join(f"{column} = '{v}'" for v in values)
