"""Reflex configuration. Application settings live in gc_admin/config.py (GC_* variables)."""

import reflex as rx

from gc_admin.config import get_settings

_s = get_settings()

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
