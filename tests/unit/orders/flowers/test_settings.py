"""GC_FLOWER_* settings: whole hours, opening before closing, sane lead time / capacity / window."""

from __future__ import annotations

import pytest

from gc_admin.config import ConfigError, load_settings


def test_defaults_and_overrides():
    f = load_settings({"GC_ENV": "test"}).flowers
    assert (f.open_hour, f.close_hour, f.lead_minutes, f.slot_capacity, f.days_ahead) == (9, 21, 120, 5, 14)
    f = load_settings({"GC_ENV": "test", "GC_FLOWER_OPEN": "08:00", "GC_FLOWER_CLOSE": "22", "GC_FLOWER_LEAD_MINUTES": "90",
                       "GC_FLOWER_SLOT_CAPACITY": "3", "GC_FLOWER_DAYS_AHEAD": "7"}).flowers
    assert (f.open_hour, f.close_hour, f.lead_minutes, f.slot_capacity, f.days_ahead) == (8, 22, 90, 3, 7)


@pytest.mark.parametrize("env", [{"GC_FLOWER_OPEN": "9:30"}, {"GC_FLOWER_OPEN": "nine"}, {"GC_FLOWER_CLOSE": "25:00"},
                                 {"GC_FLOWER_OPEN": "21:00", "GC_FLOWER_CLOSE": "09:00"},
                                 {"GC_FLOWER_SLOT_CAPACITY": "0"}, {"GC_FLOWER_LEAD_MINUTES": "-1"},
                                 {"GC_FLOWER_DAYS_AHEAD": "0"}])
def test_nonsense_is_refused_at_start(env):
    with pytest.raises(ConfigError, match="GC_FLOWER"):
        load_settings({"GC_ENV": "test", **env})
