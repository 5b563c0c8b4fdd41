"""What the benchmarks share: a request-rate loop, a throw-away PostgreSQL schema, the ``--scale`` command line."""

from __future__ import annotations

import argparse
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator


def rate(client, path: str, headers: dict[str, str], seconds: float) -> float:
    """Requests per second of ``GET path`` for ``seconds`` (each must answer 200)."""
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        r = client.get(path, headers=headers)
        assert r.status_code == 200, r.text
        n += 1
    return n / seconds


@contextlib.contextmanager
def pg_schema(base: str) -> Iterator[str]:
    """The URL of a new, empty schema on the PostgreSQL server ``base``; afterwards the engines are
    disposed of and the schema dropped."""
    import sqlalchemy as sa

    from gc_admin.db import dispose_engines
    from tests.support import pg_schema_url

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield pg_schema_url(base, schema)
    finally:
        dispose_engines()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def cli(main: Callable[[float], None]) -> None:
    """``python bench/bench_x.py [--scale 0.1]``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full workload (quick checks)")
    main(parser.parse_args().scale)
