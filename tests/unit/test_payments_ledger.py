"""The ledger (append-only, filters, Excel export), points / stored-value balances (idempotent, never
negative, concurrent spends cannot overdraw) and reconciliation against the WeChat Pay trade bill."""

from __future__ import annotations

import datetime as dt
import io
import threading

import polars as pl
import pytest
import sqlalchemy as sa

from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.core.errors import Conflict, InvalidInput
from gc_admin.db import session_scope
from gc_admin.integrations.wechatpay.simulator import build_trade_bill, finish_refund
from gc_admin.orders import flows
from gc_admin.payments import balances, ledger, reconcile
from tests.unit.test_orders_support import CLERK, buy, buyer, pay, rows, scalar, shop, wired


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
        with pytest.raises(InvalidInput):
            with session_scope() as s:
                balances.move_points(s, user_id=user.id, delta=bad, reason="x", ref="bad")  # type: ignore[arg-type]
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
    n = 10
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            with session_scope() as s:
                results[i] = move(s, user_id=user.id, reason="消费", ref=f"spend{i}", **{amount_kw: -30}).id
        except Exception as exc:  # noqa: BLE001
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ok = [r for r in results if isinstance(r, int)]
    assert len(ok) == 3, results
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, int)), results
    entry, delta = ("points_entry", "delta") if which == "points" else ("stored_value_entry", "delta_fen")
    column = "points" if which == "points" else "stored_value_fen"
    assert scalar(f"SELECT {column} FROM user_balance") == 10
    assert scalar(f"SELECT sum({delta}) FROM {entry}") == 10  # the balance is the sum of its entries
    assert scalar("SELECT sum(amount_fen) FROM ledger_entry") == 10


@pytest.fixture
def day_of_money(any_db):
    """Two paid orders and one refunded coupon, all through the simulator, today."""
    shop()
    a, b = buyer(), buyer("13900000002", openid="oB2")
    with wired() as w:
        o1, o2 = buy(a, 3), buy(b, 1)
        pay(w, o1)
        pay(w, o2)
        with session_scope() as s:
            r = flows.refund_order(s, order_id=o1.id, amount_fen=4_500, reason="退一张", actor=CLERK)
        with session_scope() as s:
            flows.send_refund(s, refund_id=r.id)
        finish_refund(w.state, r.out_refund_no)
        yield w, o1, o2


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
        with pytest.raises(InvalidInput):
            ledger.list_ledger(s, filters=ledger.LedgerFilter(kind="bonus"))
        data = ledger.ledger_xlsx(s)
    frame = pl.read_excel(io.BytesIO(data))
    assert frame.height == 3 and frame["金额（分）"].to_list() == [13_500, 4_500, -4_500]
    assert frame["金额"].to_list() == ["¥135.00", "¥45.00", "-¥45.00"]
    assert frame["金额（分）"].dtype == pl.Int64  # no floats in the export either


def test_reconcile_a_clean_day(day_of_money) -> None:
    w, _, _ = day_of_money
    today = utcnow().astimezone(SHANGHAI).date()
    with session_scope() as s:
        result = reconcile.fetch_and_reconcile(s, bill_date=today, actor=CLERK)
    assert result.ok and (result.bill_rows, result.ledger_rows, result.matched) == (3, 3, 3)
    assert result.bill_net_fen == result.ledger_net_fen == 13_500
    with session_scope() as s:
        stored = reconcile.list_reconciliations(s)
    assert [r.run_id for r in stored] == [result.run_id] and stored[0].ok


def test_reconcile_finds_every_kind_of_difference(day_of_money) -> None:
    w, o1, o2 = day_of_money
    today = utcnow().astimezone(SHANGHAI).date()
    lost = buy(buyer("13900000003", openid="oB3"), 1)
    pay(w, lost, deliver=False)  # WeChat has it; our notify never arrived
    with session_scope() as s:  # money we recorded that WeChat does not show
        ledger.add_ledger(s, kind="payment", amount_fen=777, ref="pay:GC20990101000001", provider="wechatpay",
                            provider_ref="4200FAKE", occurred_at=utcnow())
    bill = build_trade_bill(w.state, today)
    assert bill is not None
    text = bill.decode()
    # the bill says the first order was for a different amount (订单金额 only; the checked totals stay)
    line = next(ln for ln in text.split("\r\n") if o1.order_no in ln and ",`SUCCESS," in ln)
    cells = line.split(",")
    cells[24] = "`135.01"
    text = text.replace(line, ",".join(cells))
    with session_scope() as s:
        result = reconcile.reconcile_trade_bill(s, data=text.encode(), actor=CLERK, filename="bill.csv")
    assert not result.ok and result.matched == 2
    found = {(m.kind, m.entry, m.key): (m.bill_fen, m.ledger_fen) for m in result.mismatches}
    assert found == {
        ("amount_differs", "payment", o1.order_no): (13_501, 13_500),
        ("missing_in_ledger", "payment", lost.order_no): (4_500, None),
        ("missing_in_bill", "payment", "GC20990101000001"): (None, 777),
    }
    with session_scope() as s:
        again = reconcile.get_reconciliation(s, run_id=result.run_id)
    assert again.to_dict()["missing_in_ledger"] == 1 and again.count("amount_differs") == 1
    with pytest.raises(InvalidInput):
        with session_scope() as s:
            reconcile.reconcile_trade_bill(s, data=b"not,a,bill\n1,2,3\n", actor=CLERK)
    with pytest.raises(InvalidInput) as err:
        with session_scope() as s:
            reconcile.reconcile_trade_bill(s, data=bill, actor=CLERK, bill_date=today - dt.timedelta(days=1))
    assert err.value.code == "BILL_DATE_MISMATCH"


def test_reconcile_an_empty_day(any_db) -> None:
    with wired():
        with session_scope() as s:
            result = reconcile.fetch_and_reconcile(s, bill_date=utcnow().astimezone(SHANGHAI).date(), actor=CLERK)
    assert result.ok and result.bill_rows == result.ledger_rows == 0
