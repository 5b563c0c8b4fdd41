"""Reflex configuration. Application settings live in gc_admin/config.py (GC_* variables)."""

import os

import reflex as rx

from gc_admin.config import get_settings

_s = get_settings()

config = rx.Config(
    app_name="gc_admin",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    db_url=_s.database_url,
    cors_allowed_origins=list(_s.cors_origins),
    # Where the server listens (GC_HOST): loopback in dev, so /sim is not on the network.
    backend_host=_s.host,
    api_url=os.environ.get("REFLEX_API_URL", _s.public_url),
    deploy_url=_s.public_url,
    plugins=[
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="blue", gray_color="slate", radius="medium")),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
