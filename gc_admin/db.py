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

First wins under a unique key (:func:`first_wins`). An idempotency key or a natural key (a ledger
``ref``, an ``openid``, a username) is looked up first and inserted if absent; a concurrent twin can
insert and commit the same key between the look and the insert. The unique index then refuses the
loser's insert — correct data, but an ``IntegrityError`` (HTTP 500) for a caller who should get what
a sequential replay gets. :func:`first_wins` runs the insert in a SAVEPOINT and, when it breaks a
unique key, rolls back to it and answers with the caller's look again (now seeing the twin's row):
the first result, or the caller's Chinese ``DomainError``. Where one conditional statement can make
the decision (``INSERT ... ON CONFLICT DO NOTHING RETURNING``, used by the payment, refund, ledger
and issuance-batch inserts), that is simpler still and needs no helper.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import event, func, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, create_engine, select

from gc_admin.config import get_settings
from gc_admin.core.errors import DomainError

log = logging.getLogger(__name__)
T = TypeVar("T")
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
    """A new engine for ``url`` with the house settings (SQLite pragmas, PG pre-ping). ``hide_parameters``: a
    database error's message names its statement but not its values (codes, phones, account numbers), so an
    error logged or kept on a task run carries none of them."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True)


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


def lock_keys(session: Session, *keys: str) -> None:
    """Serialise the units of work that decide on ``keys`` until this one ends: :func:`lock_for_write`
    plus, on PostgreSQL, a transaction-scoped advisory lock per key (taken in sorted order, so two
    units locking overlapping keys cannot deadlock).

    For a check-then-act rule that rests on rows which may not exist yet, so that there is no row
    to lock ``FOR UPDATE`` — "no SMS code sent to this phone in the last minute", counted and then
    inserted. Keys are any strings naming what is decided (``"sms:phone:13812345678"``).
    """
    lock_for_write(session)
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


def first_wins(session: Session, attempt: Callable[[], T], *, replay: Callable[[], T | None]) -> T:
    """Run ``attempt`` — writes guarded by a unique key — so that losing a race for that key answers
    as a sequential replay would: with ``replay()``, which returns the first result, raises the
    caller's ``DomainError`` (``REF_REUSED``, ``USERNAME_TAKEN``, ...) or returns ``None`` if the key
    is still free.

    The caller has called ``replay()`` first and found nothing. If a twin commits the same key before
    ``attempt`` inserts it, the insert breaks the unique index: what ``attempt`` wrote is rolled back to
    a SAVEPOINT taken before it (the rest of the unit of work stays) and ``replay()`` answers. It sees
    the twin's row: on PostgreSQL the losing insert waits on the index entry until the twin commits
    and each statement (READ COMMITTED) reads what is committed; on SQLite the write lock is only
    granted after the twin committed. If ``replay()`` still finds nothing, the violation was something
    else and the ``IntegrityError`` propagates.

    On SQLite the write lock is taken first (:func:`lock_for_write`): a SAVEPOINT must nest in an
    open transaction — pysqlite opens none before a SAVEPOINT, and releasing an outermost SAVEPOINT
    would COMMIT the unit of work so far.
    """
    lock_for_write(session)
    session.flush()  # pending writes of the caller are not part of the attempt
    try:
        with session.begin_nested():
            return attempt()
    except IntegrityError as exc:
        answer = replay()
        if answer is None:
            raise
        log.info("unique key taken by a concurrent unit of work, answered as a replay: %s", exc.orig)
        return answer


@contextlib.contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error, always close."""
    session = Session(get_engine(url), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def commit_then_raise(work: Callable[[Session], T], kept: type[DomainError]) -> T:
    """Run ``work`` in its own unit of work. ``kept`` is the error ``work`` raises after an outcome that
    must stay on record: the unit is committed first, then the error goes on to the person."""
    error: DomainError | None = None
    with session_scope() as session:
        try:
            return work(session)
        except kept as exc:
            error = exc
    assert error is not None
    raise error


@contextlib.contextmanager
def read_connection(url: str | None = None) -> Iterator[Connection]:
    """A pooled connection in autocommit mode for Core reads with no ORM session (the hottest read-only
    routes): each statement is its own snapshot, and no BEGIN / ROLLBACK round trips are spent around
    them. Writes belong in :func:`session_scope`."""
    with get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        yield connection


@contextlib.contextmanager
def separate_unit(session: Session) -> Iterator[Session]:
    """A unit of work of its own beside ``session``'s, on the same database: committed when the block
    ends, whatever then becomes of ``session``'s.

    For the record of a refusal that must outlive it — a failed sign-in, a wrong SMS-code try: the
    refusal raises, the caller's unit rolls back like any failed action (nothing else it wrote is
    kept), and only this record stays, so the throttle counts it. On SQLite call it before ``session``
    has written: that unit's open transaction would hold the database's one write lock, and this one
    would wait for it (refused at once instead, as a programming error).
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        if raw is not None and raw.in_transaction:
            raise RuntimeError("separate_unit() on SQLite after the unit of work wrote: it would wait on its own lock")
    own = Session(connection.engine, expire_on_commit=False)
    try:
        yield own
        own.commit()
    except BaseException:
        own.rollback()
        raise
    finally:
        own.close()


# --- paging -----------------------------------------------------------------------------------------

MAX_PAGE = 200  # the most rows one page may ask for


@dataclasses.dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the number of rows the whole filtered list has."""

    rows: list[T]
    total: int


def insert_first(session: Session, row: T, *, taken: Callable[[], None]) -> T:
    """Add ``row``, whose unique key ``taken()`` checks (it raises the caller's ``Conflict`` when the key
    is in use): ``taken()`` first, then the insert under :func:`first_wins`, so that a twin which
    commits the same key first is answered by ``taken()`` as well."""
    taken()

    def insert() -> T:
        session.add(row)
        session.flush()
        return row

    return first_wins(session, insert, replay=taken)


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
