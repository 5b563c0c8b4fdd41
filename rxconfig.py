"""Reflex configuration. Application settings live in gc_admin/config.py (GC_* variables)."""

import functools
import inspect

import reflex as rx

from gc_admin.config import get_settings

_s = get_settings()


def _respawn_failed_workers() -> None:
    """A web worker that dies (OOM-killed, a crash, ``kill -9``) is started again; the others keep serving.

    Reflex builds Granian's server itself (``reflex/utils/exec.py`` ``run_granian_backend_prod``) with a fixed set
    of options, none of them this one — and Granian's default, on any worker's unexpected exit, is to stop the
    whole server: one dead process would take every worker of the host down with it. This turns on Granian's own
    ``respawn_failed_workers`` (its crash-loop guard still stops a worker that dies again within seconds) before
    Reflex, in this same process, builds the server. ``tests/e2e/test_scaleout.py`` kills a worker and checks."""
    try:
        from granian.server import common
    except ImportError:  # not serving with Granian
        return
    init = common.AbstractServer.__init__
    if getattr(init, "_gc_respawn", False) or "respawn_failed_workers" not in inspect.signature(init).parameters:
        return

    @functools.wraps(init)
    def with_respawn(self, *args, **kwargs):
        kwargs.setdefault("respawn_failed_workers", True)
        init(self, *args, **kwargs)

    with_respawn._gc_respawn = True  # type: ignore[attr-defined]
    common.AbstractServer.__init__ = with_respawn  # type: ignore[method-assign]


_respawn_failed_workers()

config = rx.Config(
    app_name="gc_admin",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    db_url=_s.database_url,
    # GC_REDIS_URL: Reflex keeps the dashboard's sessions in Redis (its state manager), so every worker
    # on every host serves every browser; GC_WORKERS > 1 requires it (config.validate).
    redis_url=_s.redis_url or None,
    cors_allowed_origins=list(_s.cors_origins),
    # Where the server listens (GC_HOST): loopback in dev, so /sim is not on the network.
    backend_host=_s.host,
    api_url=_s.api_url,
    deploy_url=_s.public_url,
    # The security-headers middleware (gc_admin/core/http.py) reads served pages to hash their
    # inline scripts for the CSP; it decodes gzip, so pages are precompressed with gzip only.
    frontend_compression_formats=["gzip"],
    plugins=[
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="blue", gray_color="slate", radius="medium")),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
