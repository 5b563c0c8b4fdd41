"""The process-wide driver-platform client and (dev/test) simulator state, built from settings.

``GC_DRIVER_PLATFORM_URL=local``: the client talks to this app's own simulator under ``/sim/driver``
with the configured key and secret, so the demo and the tests hand orders off through the same code
as production.
"""

from __future__ import annotations

import functools

import httpx

from gc_admin.config import get_settings
from gc_admin.integrations.driver.client import DriverPlatformClient
from gc_admin.integrations.driver.simulator import DriverSimState
from gc_admin.integrations.lazy import LazyClient

def settings_tuple() -> tuple[str, str, str, str]:
    """``(base URL or "local", platform code, app key, secret)``."""
    return get_settings().driver_platform


def platform_code() -> str:
    return settings_tuple()[1]


def callback_url() -> str:
    """Where the platform posts status callbacks for our orders."""
    s = get_settings()
    return f"{s.public_url}/api/v1/driver/{platform_code()}/callback"


def _build(transport: httpx.BaseTransport | None) -> DriverPlatformClient:
    s = get_settings()
    url, _code, key, secret = s.driver_platform
    base = f"{s.self_url}/sim/driver" if url == "local" else url
    return DriverPlatformClient(base_url=base, key=key, secret=secret, transport=transport)


_holder: LazyClient[DriverPlatformClient] = LazyClient(_build)
set_transport = _holder.set_transport
get_client = _holder.get


@functools.lru_cache(maxsize=1)
def sim_state() -> DriverSimState:
    """The simulator's state (dev/test), accepting this app's configured key and secret."""
    _url, _code, key, secret = get_settings().driver_platform
    return DriverSimState(key=key, secret=secret)
