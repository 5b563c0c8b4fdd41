"""A private staging area on disk for the coupon pages' pending work (DESIGN.md §2.8).

A page's state holds a token, not a list of 100,000 phones or a 50 MB upload: the upload of a
codes file streams into a staging file (券库存), a previewed phone list waits in one until it is
issued (发券). Files live under ``GC_UPLOAD_DIR/staging`` (never a public path), are named by a
random token that :func:`staged_path` checks before touching the disk, and leftovers older than a
day are swept whenever a new one is made.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from gc_admin.config import get_settings
from gc_admin.core.errors import NotFound

_TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
STAGING_MAX_AGE_S = 24 * 3600  # a preview nobody confirmed, an upload that never finished


def _staging_dir() -> Path:
    path = get_settings().upload_dir / "staging"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sweep_staging(max_age_s: float = STAGING_MAX_AGE_S) -> int:
    """Delete staging files older than ``max_age_s``; returns how many."""
    import time

    cutoff, n = time.time() - max_age_s, 0
    for path in _staging_dir().iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                n += 1
        except OSError:  # another worker got there first
            continue
    return n


def staging_file(kind: str, suffix: str = "") -> tuple[str, Path]:
    """A new private file for a page's pending work: ``(token, path)``; old leftovers are swept first."""
    sweep_staging()
    token = secrets.token_hex(16)
    return token, _staging_dir() / f"{kind}-{token}{suffix}"


def staged_path(kind: str, token: str, suffix: str = "") -> Path:
    if not _TOKEN_RE.match(token or ""):
        raise NotFound("待处理文件已失效，请重新上传", code="STAGING_NOT_FOUND")
    return _staging_dir() / f"{kind}-{token}{suffix}"


def discard_staged(kind: str, token: str, suffix: str = "") -> None:
    try:
        staged_path(kind, token, suffix).unlink(missing_ok=True)
    except NotFound:
        pass
