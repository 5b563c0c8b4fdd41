"""What the simulators share with the world outside the process: the notify POST and the dev credentials file."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gc_admin.integrations.http import post

Deliver = Callable[[str, Mapping[str, str], bytes], int]


def http_deliver(url: str, headers: Mapping[str, str], body: bytes) -> int:
    """POST a notify / callback (a simulator's default ``state.deliver``) through the process's pooled client:
    one kept-alive connection to the app, no TLS context built per call; returns the HTTP status."""
    return post(url, headers, body, timeout=10.0)


def load_or_create_json(path: Path | str, make: Callable[[], Any]) -> Any:
    """The JSON stored at ``path`` (mode 0600), written once from ``make()``: every worker of the dev server
    then reads the same. Creation is atomic (``os.link`` of a complete temporary file), so concurrent first
    starts agree on one value."""
    target = Path(path)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(make(), fh)
        try:
            os.link(tmp, target)
        except FileExistsError:
            pass  # another process won the race: use its value
        finally:
            tmp.unlink(missing_ok=True)
    return json.loads(target.read_text(encoding="utf-8"))
