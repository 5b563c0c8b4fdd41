"""Server-side sorting for lists: a whitelist of sort keys per list, ORDER BY in SQL.

A list's service declares ``SORT_KEYS = {"created_at": col(X.created_at), ...}`` and calls
:func:`order_by` with the ``sort`` it was given: ``"key"`` (ascending), ``"-key"`` (descending) or
empty (the list's own default order). Only the whitelisted expressions ever reach the SQL, so the
sort parameter cannot inject anything; an unknown key is refused with a Chinese message. Ties are
broken by the row id in the same direction, so paging through a sorted list never repeats or skips
a row. Empty values (NULL) sort last in both directions, on SQLite and PostgreSQL alike (their
defaults differ).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gc_admin.core.errors import InvalidInput

MAX_SORT_LEN = 40


def parse_sort(sort: str | None, keys: Mapping[str, Any]) -> tuple[str, bool] | None:
    """``(key, descending)`` for a whitelisted sort, ``None`` for the default; unknown keys raise."""
    if not sort:
        return None
    desc = sort.startswith("-")
    key = sort[1:] if desc else sort
    if len(sort) > MAX_SORT_LEN or key not in keys:
        raise InvalidInput("无法按该列排序，请刷新页面后重试", code="INVALID_SORT")
    return key, desc


def order_by(sort: str | None, keys: Mapping[str, Any], *, tie: Any, default: Sequence[Any]) -> list[Any]:
    """ORDER BY clauses for ``sort`` (see the module doc); ``default`` when it is empty."""
    parsed = parse_sort(sort, keys)
    if parsed is None:
        return list(default)
    key, desc = parsed
    expr = keys[key]
    if desc:
        return [expr.desc().nulls_last(), tie.desc()]
    return [expr.asc().nulls_last(), tie.asc()]
