"""The unit of work's write lock (:func:`gc_admin.db.lock_for_write`): on SQLite it takes the database's
write lock at once (``BEGIN IMMEDIATE``), so rows read after it cannot change under the unit of work;
it is idempotent, and a lock it cannot get is a clear, retryable error. (On PostgreSQL it takes nothing;
the race tests run there too.)"""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from gc_admin.core.clock import utcnow
from gc_admin.db import DatabaseBusy, lock_for_write, separate_unit, session_scope
from tests.support import rows, scalar
from tests.unit.orders.support import buyer


def _other_writer_is_refused(url: str) -> bool:
    """Can a second connection start writing right now (no waiting)?"""
    other = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return True
    else:
        other.execute("ROLLBACK")
        return False
    finally:
        other.close()


def test_sqlite_write_lock_is_taken_before_any_write_and_held_to_commit(sqlite_db) -> None:
    with session_scope() as s:
        s.execute(sa.text("SELECT count(*) FROM mp_user")).scalar_one()
        assert not _other_writer_is_refused(sqlite_db)  # pysqlite: reads alone take no lock
        lock_for_write(s)
        assert _other_writer_is_refused(sqlite_db)
        s.execute(sa.text("SELECT count(*) FROM mp_user")).scalar_one()
        lock_for_write(s)  # idempotent
        assert _other_writer_is_refused(sqlite_db)
    assert not _other_writer_is_refused(sqlite_db)  # released by the commit


def test_sqlite_lock_after_a_write_is_a_no_op_and_a_rollback_releases_it(sqlite_db) -> None:
    with pytest.raises(RuntimeError), session_scope() as s:
        s.execute(sa.text("DELETE FROM mp_user WHERE id < 0"))  # pysqlite's own BEGIN: the write lock is held
        assert _other_writer_is_refused(sqlite_db)
        lock_for_write(s)
        assert _other_writer_is_refused(sqlite_db)
        raise RuntimeError("boom")
    assert not _other_writer_is_refused(sqlite_db)


def test_sqlite_lock_held_elsewhere_is_a_clear_busy_error(sqlite_db) -> None:
    holder = sqlite3.connect(sqlite_db.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseBusy) as err, session_scope() as s:
            s.execute(sa.text("PRAGMA busy_timeout = 0"))  # do not wait the house 10 s for it
            lock_for_write(s)
        assert (err.value.status, err.value.code) == (503, "DB_BUSY") and "稍后重试" in err.value.message
    finally:
        holder.execute("ROLLBACK")
        holder.close()



# --- separate_unit: a record that outlives the caller's unit of work --------------------------------------

def _count(table: str) -> int:
    with session_scope() as s:
        return s.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_a_separate_unit_commits_while_the_callers_rolls_back(any_db) -> None:
    with pytest.raises(RuntimeError), session_scope() as s:
        s.execute(sa.text("SELECT count(*) FROM login_attempt")).scalar_one()  # the caller has only read
        with separate_unit(s) as own:
            own.execute(sa.text("INSERT INTO login_attempt (username, success, at) VALUES ('kept', false, CURRENT_TIMESTAMP)"))
        s.execute(sa.text("INSERT INTO login_attempt (username, success, at) VALUES ('lost', false, CURRENT_TIMESTAMP)"))
        raise RuntimeError("the caller fails")
    with session_scope() as s:
        assert s.execute(sa.text("SELECT username FROM login_attempt")).scalars().all() == ["kept"]


def test_a_separate_unit_that_fails_keeps_nothing(any_db) -> None:
    with session_scope() as s, pytest.raises(RuntimeError):
        with separate_unit(s) as own:
            own.execute(sa.text("INSERT INTO login_attempt (username, success, at) VALUES ('x', false, CURRENT_TIMESTAMP)"))
            raise RuntimeError("boom")
    assert _count("login_attempt") == 0


def test_sqlite_separate_unit_after_the_caller_wrote_is_refused_at_once(sqlite_db) -> None:
    """It would wait busy_timeout for the write lock its own caller holds: a programming error, said at once."""
    with pytest.raises(RuntimeError, match="after the unit of work wrote"), session_scope() as s:
        s.execute(sa.text("DELETE FROM login_attempt WHERE id < 0"))
        with separate_unit(s):
            pass


# --- first_wins: a unique key taken meanwhile is answered by the replay -------------------------------

def _user_ids() -> list[int]:
    return [r[0] for r in rows("SELECT id FROM mp_user ORDER BY id")]


def test_first_wins_keeps_the_unit_of_work_atomic(any_db) -> None:
    """The attempt's SAVEPOINT nests in the unit of work: a later failure still rolls everything back
    (on SQLite a SAVEPOINT opened outside a transaction would commit when released)."""
    from gc_admin.db import first_wins
    from gc_admin.users.models import MpUser

    with pytest.raises(RuntimeError), session_scope() as s:
        def attempt() -> MpUser:
            user = MpUser(openid="o-atomic", created_at=utcnow())
            s.add(user)
            s.flush()
            return user

        first_wins(s, attempt, replay=lambda: None)
        raise RuntimeError("a later step fails")
    assert _user_ids() == []


def test_first_wins_answers_a_taken_key_by_replay_and_keeps_earlier_writes(any_db) -> None:
    from gc_admin.db import first_wins
    from gc_admin.users.models import MpUser

    taken = buyer()
    with session_scope() as s:
        s.add(MpUser(openid="o-earlier", created_at=utcnow()))  # written before the attempt: kept

        def attempt() -> int:
            s.add(MpUser(openid=taken.openid, created_at=utcnow()))
            s.flush()
            return -1

        assert first_wins(s, attempt, replay=lambda: taken.id) == taken.id
    assert len(_user_ids()) == 2 and scalar("SELECT count(*) FROM mp_user WHERE openid = 'o-earlier'") == 1


def test_first_wins_lets_other_violations_through(any_db) -> None:
    import sqlalchemy as sa

    from gc_admin.db import first_wins
    from gc_admin.users.models import MpUser

    taken = buyer()
    with pytest.raises(sa.exc.IntegrityError), session_scope() as s:
        def attempt() -> None:
            s.add(MpUser(openid=taken.openid, created_at=utcnow()))
            s.flush()

        first_wins(s, attempt, replay=lambda: None)
