"""HTTP plumbing shared by the integrations: one TLS context per process, one client for notifies.

``httpx.Client()`` builds a fresh SSL context each time — it loads the whole CA bundle, about 40 ms of CPU
on this machine — so a client made per call (an SMS send, a simulator's notify) cost more than the call.
:func:`new_client` gives clients that share one verifying context (same trust store and checks as httpx's
default: certificate and host name required); :func:`post` sends a simulator's notify or callback through
one pooled client per process (keep-alive to the app it calls back).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Mapping
from typing import Any

import httpx

_lock = threading.Lock()
_context: ssl.SSLContext | None = None
_poster: httpx.Client | None = None


def tls_context() -> ssl.SSLContext:
    """The process's verifying TLS context (httpx's default: the certifi bundle, hostname checked)."""
    global _context
    with _lock:
        if _context is None:
            _context = httpx.create_ssl_context()
        return _context


def new_client(**kwargs: Any) -> httpx.Client:
    """``httpx.Client(**kwargs)`` on the shared TLS context (unless ``verify`` is given)."""
    kwargs.setdefault("verify", tls_context())
    return httpx.Client(**kwargs)


def post(url: str, headers: Mapping[str, str], body: bytes, *, timeout: float = 10.0) -> int:
    """POST ``body`` to ``url`` through the process's pooled client; returns the HTTP status."""
    global _poster
    client = _poster
    if client is None:
        ctx = tls_context()
        with _lock:
            if _poster is None:
                _poster = httpx.Client(verify=ctx, timeout=timeout)
            client = _poster
    return client.post(url, headers=dict(headers), content=body, timeout=timeout).status_code
