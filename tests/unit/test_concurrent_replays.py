"""Issue 7: where a unique key decides "first wins", a concurrent twin gets what a sequential replay
gets — the first result, or the documented Chinese DomainError — never a raw IntegrityError (500).

Each race releases N threads at once (``tests.support.race``), each in its own unit of work, on
SQLite and PostgreSQL; then it checks there was exactly one effect."""

from __future__ import annotations

from collections import Counter

import pytest

from gc_admin.core.clock import utcnow
from gc_admin.core.errors import Conflict
from gc_admin.db import session_scope
from gc_admin.payments import service as payments
from tests.support import race
from tests.unit.test_orders_support import buyer, rows, scalar

N = 8


# --- points / stored value: ``ref`` -----------------------------------------------------------------

@pytest.mark.parametrize("which", ["points", "stored_value"])
def test_concurrent_moves_with_one_ref_move_once(any_db, which) -> None:
    user = buyer()
    move = payments.move_points if which == "points" else payments.move_stored_value
    amount_kw = "delta" if which == "points" else "delta_fen"

    def work(_: int) -> int:
        with session_scope() as s:
            return move(s, user_id=user.id, reason="赠送", ref="gift:1", **{amount_kw: 100}).id

    results = race(N, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(set(results)) == 1  # every caller got the one entry
    entry, delta = ("points_entry", "delta") if which == "points" else ("stored_value_entry", "delta_fen")
    assert rows(f"SELECT {delta}, balance_after{'_fen' if which != 'points' else ''} FROM {entry}") == [(100, 100)]
    column = "points" if which == "points" else "stored_value_fen"
    assert scalar(f"SELECT {column} FROM user_balance") == 100
    assert scalar("SELECT count(*) FROM ledger_entry") == 1


@pytest.mark.parametrize("which", ["points", "stored_value"])
def test_concurrent_moves_reusing_a_ref_for_other_amounts_are_refused(any_db, which) -> None:
    user = buyer()
    move = payments.move_points if which == "points" else payments.move_stored_value
    amount_kw = "delta" if which == "points" else "delta_fen"

    def work(i: int) -> int:
        with session_scope() as s:
            return move(s, user_id=user.id, reason="赠送", ref="gift:2", **{amount_kw: 100 + i}).id

    results = race(N, work)
    assert len([r for r in results if isinstance(r, int)]) == 1, results
    assert Counter(r.code for r in results if isinstance(r, Exception) and isinstance(r, Conflict)) == {
        "REF_REUSED": N - 1}, results
    column = "points" if which == "points" else "stored_value_fen"
    entry, delta = ("points_entry", "delta") if which == "points" else ("stored_value_entry", "delta_fen")
    assert scalar(f"SELECT {column} FROM user_balance") == scalar(f"SELECT sum({delta}) FROM {entry}")
    assert scalar("SELECT count(*) FROM ledger_entry") == 1


# --- the mechanism: gc_admin.db.first_wins ------------------------------------------------------------

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
