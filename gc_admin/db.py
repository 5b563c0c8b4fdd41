"""Database engine and the unit of work.

Services never commit: the caller (an API route, a Reflex event, a CLI command) opens one
:func:`session_scope` per user action; it commits when the block ends normally and rolls
back on any exception, so a failed action never leaves a partial write.

Check-then-act under concurrency (:func:`lock_for_write`). Most races are settled by one
conditional statement (``UPDATE ... WHERE state = ... RETURNING``, ``ON CONFLICT DO NOTHING``) and
hold on both databases as they are. A rule that rests on rows *read* before writing — "at most 5
per user" counted, then inserted — needs those rows locked: PostgreSQL locks them with ``SELECT
... FOR UPDATE``; SQLite has no row locks. On SQLite the driver (pysqlite, in its default "legacy"
transaction control) runs every statement before the first INSERT/UPDATE/DELETE outside any
transaction and only then issues a deferred ``BEGIN``; the write lock is taken by that first
write. So two units of work can both count 0 and both insert. :func:`lock_for_write` is the one
mechanism for such rules: on SQLite it opens the unit of work with ``BEGIN IMMEDIATE`` (the
database's single write lock, waiting ``busy_timeout`` for other writers), so everything the unit
reads afterwards is current and stays so until it commits; on PostgreSQL it does nothing — the
caller's ``FOR UPDATE`` row locks do the work, and other users' writes are not held up. The
legacy transaction control is kept on purpose: a plain deferred ``BEGIN`` for every unit of work
(SQLAlchemy's pysqlite recipe) would make a unit that reads, then writes after someone else
committed, fail with ``SQLITE_BUSY`` instead of waiting; ``BEGIN IMMEDIATE`` for every unit would
queue pure reads behind writers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import event, func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine, select

from gc_admin.config import get_settings
from gc_admin.core.errors import DomainError

log = logging.getLogger(__name__)
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """A new engine for ``url`` with the house settings (SQLite pragmas, PG pre-ping)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for the configured (or given) URL, created lazily."""
    url = url or get_settings().database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, forks)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


class DatabaseBusy(DomainError):
    """SQLite's write lock was not free within ``busy_timeout`` (another long write holds it)."""

    status = 503
    code = "DB_BUSY"


def lock_for_write(session: Session) -> None:
    """From here on, this unit of work is the database's only writer on SQLite (``BEGIN IMMEDIATE``);
    nothing on PostgreSQL, where the caller locks the rows its rule rests on (``FOR UPDATE``).

    Call it before reading what the decision rests on (see the module docstring). Idempotent: if the
    unit of work has already written, pysqlite's transaction is open and already holds the write lock
    (a transaction is only opened by a write), so there is nothing to take.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    raw = connection.connection.dbapi_connection
    assert raw is not None and raw.isolation_level is not None, "lock_for_write needs pysqlite's transaction control"
    if raw.in_transaction:
        return
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except OperationalError as exc:
        if "locked" not in str(exc.orig):
            raise
        log.warning("SQLite write lock not obtained within busy_timeout: %s", exc.orig)
        raise DatabaseBusy("系统繁忙（其他操作正在写入数据），请稍后重试", code="DB_BUSY") from exc


@contextlib.contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error, always close."""
    session = Session(get_engine(url), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except DomainError as exc:
        if exc.keep_changes:
            session.commit()
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# --- paging -----------------------------------------------------------------------------------------

T = TypeVar("T")

MAX_PAGE = 200  # the most rows one page may ask for


@dataclasses.dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the number of rows the whole filtered list has."""

    rows: list[T]
    total: int


def paginate(session: Session, query: Any, *, order: Sequence[Any], offset: int = 0, limit: int = 50,
             row: Callable[[Any], T] | None = None) -> Page[T]:
    """Count ``query``'s rows and fetch one page of it in ``order`` (a stable order: end it with a
    unique column); ``row`` maps each result row to what the page holds (default: the row itself).

    ``offset`` below 0 counts as 0, ``limit`` is kept within 1..:data:`MAX_PAGE`: the caller's
    bounds (API types, page size) come first, this is the last line.
    """
    total = session.exec(select(func.count()).select_from(query.order_by(None).subquery())).one()
    result = session.exec(query.order_by(*order).offset(max(offset, 0)).limit(min(max(limit, 1), MAX_PAGE))).all()
    rows = list(result) if row is None else [row(r) for r in result]
    return Page(rows, int(total))
