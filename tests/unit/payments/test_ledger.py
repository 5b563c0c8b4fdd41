"""The ledger (append-only, filters, Excel export) and points / stored-value balances (idempotent, never
negative, concurrent spends cannot overdraw, one move per ``ref`` however many twins race)."""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter

import polars as pl
import pytest
import sqlalchemy as sa

from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.core.errors import Conflict, InvalidInput
from gc_admin.db import session_scope
from gc_admin.payments import balances, ledger
from tests.support import race, rows, scalar
from tests.unit.orders.support import buyer

N = 8  # threads released at once in a race


@pytest.mark.parametrize("table", ["ledger_entry", "points_entry", "stored_value_entry"])
def test_ledgers_are_append_only(any_db, table) -> None:
    user = buyer()
    with session_scope() as s:
        balances.move_points(s, user_id=user.id, delta=10, reason="赠送", ref="a")
        balances.move_stored_value(s, user_id=user.id, delta_fen=10, reason="充值", ref="b")
    for sql in (f"UPDATE {table} SET created_at = created_at", f"DELETE FROM {table}"):
        with pytest.raises(Exception, match="append-only"):
            with session_scope() as s:
                s.execute(sa.text(sql))
    assert scalar(f"SELECT count(*) FROM {table}") >= 1


def test_balances_are_idempotent_and_never_negative(any_db) -> None:
    user = buyer()
    with session_scope() as s:
        first = balances.move_points(s, user_id=user.id, delta=100, reason="赠送", ref="gift")
        again = balances.move_points(s, user_id=user.id, delta=100, reason="赠送", ref="gift")
        assert again.id == first.id
        balances.move_points(s, user_id=user.id, delta=-60, reason="抵扣", ref="spend1")
    with pytest.raises(Conflict) as err:
        with session_scope() as s:
            balances.move_points(s, user_id=user.id, delta=-41, reason="抵扣", ref="spend2")
    assert err.value.code == "POINTS_INSUFFICIENT"
    with pytest.raises(Conflict) as err:
        with session_scope() as s:
            balances.move_stored_value(s, user_id=user.id, delta_fen=-1, reason="支付", ref="sv1")
    assert err.value.code == "STORED_VALUE_INSUFFICIENT" and "¥0.00" in err.value.message
    for bad in (0, 1.5, True):
        with pytest.raises(InvalidInput) as err:
            with session_scope() as s:
                balances.move_points(s, user_id=user.id, delta=bad, reason="x", ref="bad")  # type: ignore[arg-type]
        assert err.value.code == "INVALID_AMOUNT"
    with pytest.raises(Conflict) as err:
        with session_scope() as s:
            balances.move_points(s, user_id=user.id, delta=5, reason="赠送", ref="gift")  # same ref, other amount
    assert err.value.code == "REF_REUSED"
    with session_scope() as s:
        assert balances.balances(s, user_id=user.id) == (40, 0)
    assert scalar("SELECT sum(delta) FROM points_entry") == 40
    assert rows("SELECT delta, balance_after FROM points_entry ORDER BY id") == [(100, 100), (-60, 40)]
    assert rows("SELECT kind, amount_fen, ref FROM ledger_entry ORDER BY id") == [
        ("points", 100, "points:gift"), ("points", -60, "points:spend1")]


@pytest.mark.parametrize("which", ["points", "stored_value"])
def test_concurrent_spends_cannot_overdraw(any_db, which) -> None:
    user = buyer()
    move = balances.move_points if which == "points" else balances.move_stored_value
    amount_kw = "delta" if which == "points" else "delta_fen"
    with session_scope() as s:
        move(s, user_id=user.id, reason="入账", ref="load", **{amount_kw: 100})

    def spend(i: int) -> int:
        with session_scope() as s:
            return move(s, user_id=user.id, reason="消费", ref=f"spend{i}", **{amount_kw: -30}).id

    results = race(10, spend)
    ok = [r for r in results if isinstance(r, int)]
    assert len(ok) == 3, results
    short = "POINTS_INSUFFICIENT" if which == "points" else "STORED_VALUE_INSUFFICIENT"
    assert all(isinstance(r, Conflict) and r.code == short for r in results if not isinstance(r, int)), results
    entry, delta = ("points_entry", "delta") if which == "points" else ("stored_value_entry", "delta_fen")
    column = "points" if which == "points" else "stored_value_fen"
    assert scalar(f"SELECT {column} FROM user_balance") == 10
    assert scalar(f"SELECT sum({delta}) FROM {entry}") == 10  # the balance is the sum of its entries
    assert scalar("SELECT sum(amount_fen) FROM ledger_entry") == 10


@pytest.mark.parametrize("which", ["points", "stored_value"])
def test_concurrent_moves_with_one_ref_move_once(any_db, which) -> None:
    user = buyer()
    move = balances.move_points if which == "points" else balances.move_stored_value
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
    move = balances.move_points if which == "points" else balances.move_stored_value
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


def test_list_ledger_and_export(day_of_money) -> None:
    _, o1, _ = day_of_money
    with session_scope() as s:
        page = ledger.list_ledger(s)
        assert (page.total, page.net_fen) == (3, 13_500 + 4_500 - 4_500)
        assert [r.kind for r in page.rows] == ["refund", "payment", "payment"]
        mine = ledger.list_ledger(s, filters=ledger.LedgerFilter(order_no=o1.order_no.lower()))
        assert [(r.kind, r.amount_fen) for r in mine.rows] == [("refund", -4_500), ("payment", 13_500)]
        assert ledger.list_ledger(s, filters=ledger.LedgerFilter(kind="refund")).net_fen == -4_500
        today = utcnow().astimezone(SHANGHAI).date()
        assert ledger.list_ledger(s, filters=ledger.LedgerFilter(date_from=today, date_to=today)).total == 3
        assert ledger.list_ledger(s, filters=ledger.LedgerFilter(date_to=today - dt.timedelta(days=1))).total == 0
        with pytest.raises(InvalidInput) as err:
            ledger.list_ledger(s, filters=ledger.LedgerFilter(kind="bonus"))
        assert err.value.code == "INVALID_KIND"
        yesterday = today - dt.timedelta(days=1)
        totals = {f: [(t.kind, t.label, t.count, t.net_fen) for t in ledger.ledger_totals(s, filters=f)]
                  for f in (ledger.LedgerFilter(), ledger.LedgerFilter(order_no=o1.order_no),
                            ledger.LedgerFilter(kind="payment"), ledger.LedgerFilter(date_to=yesterday))}
        assert list(totals.values()) == [[("payment", "支付", 2, 18_000), ("refund", "退款", 1, -4_500)],
                                         [("payment", "支付", 1, 13_500), ("refund", "退款", 1, -4_500)],
                                         [("payment", "支付", 2, 18_000)], []]
        data = ledger.ledger_xlsx(s)
    frame = pl.read_excel(io.BytesIO(data))
    assert frame.height == 3 and frame["金额（分）"].to_list() == [13_500, 4_500, -4_500]
    assert frame["金额"].to_list() == ["¥135.00", "¥45.00", "-¥45.00"]
    assert frame["金额（分）"].dtype == pl.Int64  # no floats in the export either

