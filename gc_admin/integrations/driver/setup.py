"""The process-wide driver-platform client and (dev/test) simulator state, built from settings.

``GC_DRIVER_PLATFORM_URL=local``: the client talks to this app's own simulator under ``/sim/driver``
with the configured key and secret, so the demo and the tests hand orders off through the same code
as production.
"""

from __future__ import annotations

import functools
import threading

import httpx

from gc_admin.config import get_settings
from gc_admin.integrations.driver.client import DriverPlatformClient
from gc_admin.integrations.driver.simulator import DriverSimState

_lock = threading.Lock()
_client: DriverPlatformClient | None = None
_transport: httpx.BaseTransport | None = None


def settings_tuple() -> tuple[str, str, str, str]:
    """``(base URL or "local", platform code, app key, secret)``."""
    return get_settings().driver_platform


def platform_code() -> str:
    return settings_tuple()[1]


def callback_url() -> str:
    """Where the platform posts status callbacks for our orders."""
    s = get_settings()
    return f"{s.public_url}/api/v1/driver/{platform_code()}/callback"


def set_transport(transport: httpx.BaseTransport | None) -> None:
    """Route the client through ``transport`` (tests: the app in-process)."""
    global _client, _transport
    with _lock:
        _transport = transport
        if _client is not None:
            _client.close()
        _client = None


def get_client() -> DriverPlatformClient:
    global _client
    with _lock:
        if _client is None:
            s = get_settings()
            url, _code, key, secret = s.driver_platform
            base = f"{s.self_url}/sim/driver" if url == "local" else url
            _client = DriverPlatformClient(base_url=base, key=key, secret=secret, transport=_transport)
        return _client


@functools.lru_cache(maxsize=1)
def sim_state() -> DriverSimState:
    """The simulator's state (dev/test), accepting this app's configured key and secret."""
    _url, _code, key, secret = get_settings().driver_platform
    return DriverSimState(key=key, secret=secret)
