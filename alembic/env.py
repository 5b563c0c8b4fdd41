"""Alembic environment: URL from GC_DATABASE_URL (or ``-x url=...``), metadata from gc_admin.models."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from gc_admin.config import get_settings
from gc_admin.db import make_engine
from gc_admin.models import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or config.attributes.get("url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def include_name(name, type_, parent_names) -> bool:
    """Autogenerate leaves procrastinate's own tables alone (the task queue's schema, applied by a migration)."""
    return not (type_ == "table" and (name or "").startswith("procrastinate_"))


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True,
                      include_name=include_name)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
