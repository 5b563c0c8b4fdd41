import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gc_admin.core.clock import UTC, fmt_local
from gc_admin.core.money import format_fen, parse_yuan
from gc_admin.core.phone import mask_phone, mask_secret, normalize_phone
from gc_admin.core.roles import ALL_ROLES, SECTIONS, may, sections_for


def test_format_fen():
    assert format_fen(0) == "¥0.00"
    assert format_fen(123450) == "¥1,234.50"
    assert format_fen(-5) == "-¥0.05"
    with pytest.raises(TypeError):
        format_fen(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_fen(True)  # type: ignore[arg-type]


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_parse_yuan_inverts_format(fen):
    assert parse_yuan(format_fen(fen)) == fen


@pytest.mark.parametrize("bad", ["", "1.234", "abc", "1e3", "0x10", "12.", "--1"])
def test_parse_yuan_rejects(bad):
    with pytest.raises(ValueError):
        parse_yuan(bad)


@pytest.mark.parametrize(
    "raw, expected",
    [("13812345678", "13812345678"), (" 138-1234-5678 ", "13812345678"), ("+8613812345678", "13812345678"),
     ("008613812345678", "13812345678"), ("8613812345678", "13812345678"), ("12812345678", None),
     ("1381234567", None), ("138123456789", None), ("1381234567a", None), ("", None)],
)
def test_normalize_phone(raw, expected):
    assert normalize_phone(raw) == expected


def test_masks():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_secret("ABCDEFGHIJKLWXYZ") == "ABCD****WXYZ"
    assert "EFGH" not in mask_secret("ABCDEFGHIJKLWXYZ")
    assert mask_secret("SHORT") != "SHORT"


def test_fmt_local_is_shanghai():
    assert fmt_local(dt.datetime(2026, 11, 21, 6, 5, tzinfo=UTC)) == "2026-11-21 14:05"
    assert fmt_local(dt.datetime(2026, 11, 21, 6, 5)) == "2026-11-21 14:05"  # naive = UTC


EXPECTED_SECTIONS = {
    "admin": {"home", "stock", "issuance", "orders", "flowers", "goods", "drivers", "claims", "settlement", "ledger", "users", "staff", "partners", "audit",
              "sms"},
    "manager": {"home", "stock", "issuance", "orders", "flowers", "goods", "drivers", "claims", "settlement", "ledger", "users", "audit", "sms"},
    "clerk": {"home", "stock", "issuance", "orders", "flowers", "goods", "claims", "users"},
    "service": {"home", "orders", "users"},
    "insurer": {"home", "issuance", "settlement"},
    "supplier": {"home", "orders", "goods"},
    "dispatcher": {"home", "orders", "drivers"},
}


def test_sections_per_role():
    assert set(EXPECTED_SECTIONS) == ALL_ROLES
    for role, keys in EXPECTED_SECTIONS.items():
        assert {s.key for s in sections_for(role)} == keys
        for s in SECTIONS:
            assert may(role, s.key) == (s.key in keys)
    assert not may(None, "home") and not may("admin", "nope") and sections_for("") == []


def test_audit_day_filter_uses_shanghai_midnight():
    from gc_admin.audit.state import local_day_start

    assert local_day_start("2026-11-21") == dt.datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
    assert local_day_start("2026-11-21", next_day=True) == dt.datetime(2026, 11, 21, 16, 0, tzinfo=UTC)
    assert local_day_start("") is None and local_day_start("garbage") is None


def test_bulk_helpers_move_a_frame_through_a_staging_table(any_db):
    """core.bulk (every feature's set-based writes, not a coupons module): a frame with times goes into a
    staging table in one pass and comes back through the driver unchanged, on SQLite and PostgreSQL."""
    import polars as pl

    from gc_admin.core import bulk
    from gc_admin.db import session_scope

    when = dt.datetime(2026, 11, 21, 6, 5, 4, 321000, tzinfo=UTC)
    frame = pl.DataFrame({"n": [1, 2, 3], "label": ["甲", None, "丙"],
                          "at": pl.Series([when, when, when + dt.timedelta(days=1)], dtype=pl.Datetime("us", "UTC"))})
    with session_scope() as s:
        pg = bulk.dialect(s) == "postgresql"
        bulk.temp_table(s, "_gc_bulk", "n bigint, label text, at " + ("timestamptz" if pg else "text"))
        bulk.load_frame(s, "_gc_bulk", frame)
        rows = bulk.raw_rows(s, "SELECT n, label, at FROM _gc_bulk WHERE at >= :since ORDER BY n",
                             {"since": bulk.db_time(s, when)})
        bulk.drop_temp(s, "_gc_bulk")
    assert [r[:2] for r in rows] == [(1, "甲"), (2, None), (3, "丙")]
    assert rows[2][2] == (when + dt.timedelta(days=1) if pg else bulk.sqlite_time(when + dt.timedelta(days=1)))
