from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def claims_env(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Receipts stored in this test's own folder; cashback products of the five categories."""
    from gc_admin.config import get_settings
    from tests.unit.claims.support import make_products

    root = tmp_path / "claims-store"
    monkeypatch.setenv("GC_CLAIMS_STORAGE", str(root))
    monkeypatch.setenv("GC_CLAIMS_OCR_AFTER_RESPONSE", "0")  # the OCR tests run the job themselves
    get_settings.cache_clear()
    make_products()
    yield root
    get_settings.cache_clear()


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
