"""Stock import of 1,000,000 generated codes from CSV, through :func:`gc_admin.coupons.service.import_codes`
(parse + validate + de-duplicate + insert + report, committed), against a bare bulk insert of the same
rows into a table with only the same unique constraint on the same database (``executemany`` of
ready-made tuples on SQLite, ``COPY`` of ready-made CSV on PostgreSQL), committed.

Prints ``import_1m_sqlite: ratio`` (and ``import_1m_pg: ratio`` when ``GC_TEST_PG_URL`` is set);
ratio = our time / baseline time. Target: <= 2.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FULL = 1_000_000
BARE_DDL = """CREATE TABLE bare_code (
    id {pk}, code VARCHAR(128) NOT NULL UNIQUE, product_id INTEGER NOT NULL, import_id INTEGER,
    expires_at {ts} NOT NULL, face_fen INTEGER NOT NULL, cost_fen INTEGER NOT NULL, batch_ref VARCHAR(64),
    state VARCHAR(12) NOT NULL, discarded_at {ts}, coupon_id INTEGER)"""


def make_csv(n: int, seed: int = 7) -> tuple[bytes, "object"]:
    """``code,expires_at`` CSV bytes of n distinct random-looking codes, and the same rows as a frame."""
    import polars as pl

    today = dt.date.today()
    frame = pl.DataFrame({"i": pl.int_range(0, n, eager=True)}).select(
        (pl.lit("TPP") + pl.col("i").hash(seed).cast(pl.String).str.slice(0, 16) + pl.col("i").cast(pl.String))
        .alias("code"),
        (pl.lit(today) + pl.duration(days=60 + pl.col("i") % 60)).cast(pl.Date).alias("expires_at"),
    )
    buf = io.BytesIO()
    frame.write_csv(buf)
    return buf.getvalue(), frame


def _bare_rows(frame):
    """The rows the importer stores, ready for the driver (times as end-of-day UTC)."""
    import polars as pl

    return frame.select(
        pl.col("code"),
        pl.col("expires_at").cast(pl.Datetime("us")).dt.offset_by("15h59m59s").dt.replace_time_zone("UTC")
        .alias("expires_at"),
        pl.lit(5000).alias("face_fen"), pl.lit(4500).alias("cost_fen"),
    )


def _setup(url: str) -> None:
    from gc_admin.audit.service import SYSTEM
    from gc_admin.cli import migrate
    from gc_admin.coupons.service import create_product
    from gc_admin.db import session_scope

    migrate(url)
    with session_scope(url) as s:
        create_product(s, actor=SYSTEM, code="tpp50", name="淘票票通兑券50", kind="redemption_code", face_fen=5000,
                       cost_fen=4500)


def _ours(url: str, data: bytes, n: int) -> float:
    from gc_admin.audit.service import SYSTEM
    from gc_admin.coupons.service import import_codes
    from gc_admin.db import session_scope

    start = time.perf_counter()
    with session_scope(url) as s:
        report = import_codes(s, actor=SYSTEM, product_code="tpp50", data=data, filename="bench.csv")
    took = time.perf_counter() - start
    assert report.imported == n and report.invalid_count == 0, report
    return took


def _bare_sqlite(url: str, frame) -> float:
    import polars as pl

    from gc_admin.db import get_engine

    with get_engine(url).begin() as conn:
        conn.exec_driver_sql(BARE_DDL.format(pk="INTEGER PRIMARY KEY", ts="DATETIME"))
    rows = _bare_rows(frame).with_columns(pl.col("expires_at").dt.strftime("%Y-%m-%d %H:%M:%S%.6f")).rows()
    raw = get_engine(url).raw_connection()
    try:
        start = time.perf_counter()
        cur = raw.cursor()
        cur.executemany("INSERT INTO bare_code (code, product_id, import_id, expires_at, face_fen, cost_fen, state) "
                        "VALUES (?, 1, 1, ?, ?, ?, 'in_stock')", rows)
        raw.commit()
        took = time.perf_counter() - start
    finally:
        raw.close()
    return took


def _bare_pg(url: str, frame) -> float:
    from gc_admin.db import get_engine

    with get_engine(url).begin() as conn:
        conn.exec_driver_sql(BARE_DDL.format(pk="SERIAL PRIMARY KEY", ts="TIMESTAMPTZ"))
    import polars as pl

    buf = io.BytesIO()
    _bare_rows(frame).with_columns(pl.lit(1).alias("product_id"), pl.lit(1).alias("import_id"),
                                   pl.lit("in_stock").alias("state")).write_csv(
        buf, include_header=False, datetime_format="%Y-%m-%d %H:%M:%S%.6f+00")
    data = buf.getvalue()
    raw = get_engine(url).raw_connection()
    try:
        start = time.perf_counter()
        with raw.driver_connection.cursor() as cur, cur.copy(
                "COPY bare_code (code, expires_at, face_fen, cost_fen, product_id, import_id, state) "
                "FROM STDIN (FORMAT csv)") as cp:
            cp.write(data)
        raw.commit()
        took = time.perf_counter() - start
    finally:
        raw.close()
    return took


def main(scale: float = 1.0) -> None:
    from bench.common import pg_schema
    from gc_admin.db import dispose_engines

    n = max(1000, int(FULL * scale))
    label = "1m" if n == FULL else f"{n}"
    data, frame = make_csv(n)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench_import.db'}"
        _setup(url)
        bare = _bare_sqlite(url, frame)
        ours = _ours(url, data, n)
        dispose_engines()
        print(f"import_{label}_sqlite: {ours / bare:.2f}  (ours {ours:.2f}s, bare executemany {bare:.2f}s, {n:,} codes)",
              flush=True)
    base = os.environ.get("GC_TEST_PG_URL")
    if base:
        with pg_schema(base) as url:
            _setup(url)
            bare = _bare_pg(url, frame)
            ours = _ours(url, data, n)
            print(f"import_{label}_pg: {ours / bare:.2f}  (ours {ours:.2f}s, bare COPY {bare:.2f}s, {n:,} codes)",
                  flush=True)


if __name__ == "__main__":
    from bench.common import cli

    cli(main)
