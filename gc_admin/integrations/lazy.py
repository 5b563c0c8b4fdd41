"""A process-wide client built on first use from settings, rebuilt when tests reroute it.

Each integration (WeChat, WeChat Pay, Alipay, the driver platform) keeps one HTTP client per
process: built lazily from the settings under a lock, and dropped (closed) when
:meth:`LazyClient.set_transport` routes later clients through another transport (tests: the app
in-process, or a transport that is down).
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, Protocol, TypeVar

import httpx


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class LazyClient(Generic[C]):
    """Holds the client ``build(transport)`` makes; :meth:`get` builds it once, under a lock."""

    def __init__(self, build: Callable[[httpx.BaseTransport | None], C], *, close_on_reset: bool = True) -> None:
        self._build = build
        self._close_on_reset = close_on_reset
        self._lock = threading.Lock()
        self._client: C | None = None
        self.transport: httpx.BaseTransport | None = None

    def set_transport(self, transport: httpx.BaseTransport | None) -> None:
        """Route the client through ``transport`` (tests: the app in-process)."""
        with self._lock:
            self.transport = transport
            if self._client is not None and self._close_on_reset:
                self._client.close()
            self._client = None

    def get(self) -> C:
        with self._lock:
            if self._client is None:
                self._client = self._build(self.transport)
            return self._client
