"""Test configuration shared by unit and browser tests."""

from __future__ import annotations

import os

os.environ.setdefault("GC_ENV", "test")
os.environ.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
os.environ.setdefault("REFLEX_CHECK_LATEST_VERSION", "false")

import tempfile as _tempfile

# Throwaway WeChat Pay key set for the test process (the simulator and the client share it).
os.environ.setdefault("GC_WXPAY_DEV_KEYS", os.path.join(_tempfile.mkdtemp(prefix="gc-wxpay-"), "keys.json"))
