"""Test configuration shared by unit and browser tests."""

from __future__ import annotations

import os

os.environ.setdefault("GC_ENV", "test")
os.environ.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
os.environ.setdefault("REFLEX_CHECK_LATEST_VERSION", "false")
