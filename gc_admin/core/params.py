"""Bounded integers for everything a client sends: path ids, paging, amounts and counts in bodies.

An integer without an upper bound is a 500 waiting to happen: SQLite refuses a Python int past
``2**63 - 1`` (``OverflowError``) and PostgreSQL refuses one past the column's type, both long after
validation said yes. So every integer the API accepts is declared with one of these types (the
bounds show in the OpenAPI document, and ``tests/unit/test_api_bounds.py`` fails on any integer
parameter or request-body field without both ``minimum`` and ``maximum``), and the dashboard's
event handlers turn the ids they receive from the browser into ints with :func:`parse_id`.

The bounds follow the columns and the business:

* ids: every primary key is an ``INTEGER`` column (``int4`` on PostgreSQL), so ``1 .. 2**31 - 1``;
* paging: an offset up to 10,000,000 rows (further than anyone pages; it still fits every
  backend), page sizes up to :data:`LIMIT_MAX`;
* money: fen up to :data:`FEN_MAX` (¥10,000,000 — far above any order, refund or price here, and
  inside ``int4``); counts (points, quantities) likewise.

Dates are the same overflow one type over: midnight Asia/Shanghai of 0001-01-01 is before
``datetime.min`` in UTC and 9999-12-31 has no next day, so every date a client or a clerk gives is
kept to :data:`DAY_MIN` .. :data:`DAY_MAX` (:data:`Day`, :data:`Instant` for the API,
:func:`parse_day` for the dashboard's typed-in dates).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, Field

from gc_admin.core.errors import InvalidInput

ID_MAX = 2**31 - 1
OFFSET_MAX = 10_000_000
LIMIT_MAX = 200
MP_LIMIT_MAX = 100
FEN_MAX = 10**9
COUNT_MAX = 10**9
DAY_MIN = dt.date(2000, 1, 1)
DAY_MAX = dt.date(2099, 12, 31)
DAY_RANGE = f"日期需在 {DAY_MIN.isoformat()} 至 {DAY_MAX.isoformat()} 之间"

# --- route parameters (FastAPI) ------------------------------------------------------------------

Id = Annotated[int, Path(ge=1, le=ID_MAX, description="a record id")]
"""A path id: ``def get(order_id: Id)``."""

Offset = Annotated[int, Query(ge=0, le=OFFSET_MAX, description="rows to skip")]
"""``offset: Offset = 0``."""

Limit = Annotated[int, Query(ge=1, le=LIMIT_MAX, description="rows per page")]
"""A staff list's page size: ``limit: Limit = 50``."""

MpLimit = Annotated[int, Query(ge=1, le=MP_LIMIT_MAX, description="rows per page")]
"""A mini-program list's page size (smaller: each row is a whole order)."""

# --- request-body fields (pydantic; strict: a float or a numeric string is a 422) ----------------

IdField = Annotated[int, Field(strict=True, ge=1, le=ID_MAX)]
Fen = Annotated[int, Field(strict=True, ge=0, le=FEN_MAX)]
PositiveFen = Annotated[int, Field(strict=True, ge=1, le=FEN_MAX)]
Count = Annotated[int, Field(strict=True, ge=0, le=COUNT_MAX)]

# --- dates (API and dashboard) --------------------------------------------------------------------

def check_day(day: dt.date) -> dt.date:
    """``day`` if it is in ``DAY_MIN .. DAY_MAX``; ``ValueError`` (Chinese) otherwise."""
    if not DAY_MIN <= day <= DAY_MAX:
        raise ValueError(DAY_RANGE)
    return day


def _check_instant(value: dt.datetime) -> dt.datetime:
    check_day(value.date())  # its own (local) date: converting it to UTC cannot overflow then
    return value


Day = Annotated[dt.date, AfterValidator(check_day)]
"""A date in a query, form or body (``YYYY-MM-DD``), in ``DAY_MIN .. DAY_MAX``."""

Instant = Annotated[dt.datetime, AfterValidator(_check_instant)]
"""A date-time in a query or body, its date in ``DAY_MIN .. DAY_MAX``."""


def parse_day(text: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` a clerk typed, or ``None`` if it is not one or is outside the range."""
    try:
        return check_day(dt.date.fromisoformat(text))
    except (TypeError, ValueError):
        return None


# --- ids from the dashboard -----------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]{1,10}")


def parse_id(value: object, *, what: str = "记录") -> int:
    """An id an event handler received from the browser, as an int in ``1 .. ID_MAX``.

    Raises :class:`InvalidInput` (a ``DomainError``, so handlers show its Chinese message) for
    anything else: not ASCII digits (``int()`` would take ``"１２"``, ``"1_0"`` or ``" 12 "``), zero,
    or past the column's range (``int()`` would take any length and the database would fail).
    """
    if isinstance(value, bool):
        raise InvalidInput(f"{what}编号不正确", code="INVALID_ID")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
    else:
        raise InvalidInput(f"{what}编号不正确", code="INVALID_ID")
    if not 1 <= number <= ID_MAX:
        raise InvalidInput(f"{what}编号不正确", code="INVALID_ID")
    return number
