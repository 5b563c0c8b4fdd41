"""Test-only break inside the real batch issuance (imported by a worker started with
``GC_TASKS_EXTRA_MODULES=tests.unit.tasks.breaks``): while the file ``break`` exists in ``GC_TEST_BREAK_DIR``, the
worker's ``coupons.issue_batch`` writes the batch's coupons and rows, then raises (as a bug would) — its unit of
work must roll all of it back. Remove the file and the next run issues normally."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from gc_admin.coupons.issuance import service

FLAG = Path(os.environ.get("GC_TEST_BREAK_DIR", ".")) / "break"


def _breaks(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        if FLAG.exists():
            raise RuntimeError("test break after the coupons were written")
        return out
    return wrapper


service._issue_rows = _breaks(service._issue_rows)
