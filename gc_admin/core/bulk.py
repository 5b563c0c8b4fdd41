"""Bulk-SQL plumbing shared by every feature that moves many rows at once (DESIGN.md §2.2).

A polars frame goes into a table in one pass — ``executemany`` on SQLite, ``COPY ... FROM STDIN``
on PostgreSQL (:func:`load_frame`, :func:`copy_frame`) — often into a per-connection staging table
(:func:`temp_table` / :func:`drop_temp`) that one ``INSERT ... SELECT`` then reads; statements
returning ~10^5 rows run on the driver (:func:`raw_rows`). Times are passed as the driver's own
values (:func:`db_time`): naive UTC text on SQLite (how :class:`~gc_admin.core.types.UTCDateTime`
stores them), aware datetimes on PostgreSQL. :func:`dialect` names the database a session talks to.

Feature-free: it knows sessions, frames and SQL text, nothing about any table.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import polars as pl
from sqlalchemy import text
from sqlmodel import Session

from gc_admin.core.clock import UTC


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def dbapi(session: Session) -> Any:
    """The driver connection inside the session's transaction (for executemany / COPY)."""
    return session.connection().connection.driver_connection


def sqlite_time(value: dt.datetime) -> str:
    """How :class:`~gc_admin.core.types.UTCDateTime` stores a time on SQLite (naive UTC text)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def db_time(session: Session, value: dt.datetime) -> Any:
    """A time as a raw driver parameter for this database."""
    return sqlite_time(value) if dialect(session) == "sqlite" else value.astimezone(UTC)


def frame_times_for_sqlite(frame: pl.DataFrame) -> pl.DataFrame:
    """Datetime columns as SQLite's stored text (same format as :func:`sqlite_time`)."""
    return frame.with_columns([
        pl.col(c).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
        for c, t in frame.schema.items() if isinstance(t, pl.Datetime)
    ])


def copy_frame(session: Session, table: str, frame: pl.DataFrame) -> None:
    """PostgreSQL: stream a frame into ``table`` (same column names) with ``COPY ... FROM STDIN``."""
    frame = frame.with_columns([
        pl.col(c).dt.convert_time_zone("UTC") for c, t in frame.schema.items() if isinstance(t, pl.Datetime)
    ])
    buf = io.BytesIO()
    frame.write_csv(buf, include_header=False, datetime_format="%Y-%m-%d %H:%M:%S%.6f+00", null_value="")
    cols = ", ".join(frame.columns)
    with dbapi(session).cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv)") as cp:
        view = buf.getbuffer()
        for start in range(0, len(view), 1 << 20):
            cp.write(view[start:start + (1 << 20)])


def temp_table(session: Session, name: str, columns: str) -> None:
    """A fresh staging table private to this connection (dropped at commit on PostgreSQL)."""
    if dialect(session) == "postgresql":
        session.execute(text(f"DROP TABLE IF EXISTS pg_temp.{name}"))
        session.execute(text(f"CREATE TEMP TABLE {name} ({columns}) ON COMMIT DROP"))
    else:
        session.execute(text(f"DROP TABLE IF EXISTS temp.{name}"))
        session.execute(text(f"CREATE TEMP TABLE {name} ({columns})"))


def drop_temp(session: Session, name: str) -> None:
    if dialect(session) == "sqlite":
        session.execute(text(f"DROP TABLE IF EXISTS temp.{name}"))


_NAMED = re.compile(r"(?<![:\w]):(\w+)")


def raw_rows(session: Session, sql: str, params: dict[str, Any]) -> list[tuple]:
    """Run ``sql`` (``:name`` parameters, raw driver values) on the driver and return plain tuples.

    For statements returning ~10^5 rows, where building SQLAlchemy rows would cost more than the SQL.
    """
    if dialect(session) == "postgresql":
        sql = _NAMED.sub(r"%(\1)s", sql)
    cur = dbapi(session).cursor()
    try:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else []
    finally:
        cur.close()


def load_frame(session: Session, table: str, frame: pl.DataFrame) -> None:
    """Write a frame into ``table`` in one pass: executemany on SQLite, COPY on PostgreSQL."""
    if frame.height == 0:
        return
    if dialect(session) == "postgresql":
        copy_frame(session, table, frame)
        return
    frame = frame_times_for_sqlite(frame)
    marks = ", ".join("?" * frame.width)
    cur = dbapi(session).cursor()
    try:
        cur.executemany(f"INSERT INTO {table} ({', '.join(frame.columns)}) VALUES ({marks})", frame.iter_rows())
    finally:
        cur.close()
