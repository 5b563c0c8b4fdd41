"""Reconciliation: a day's WeChat Pay trade bill against the ledger — a clean day, every kind of difference,
a day with nothing. On SQLite and (with GC_TEST_PG_URL) PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.core.errors import InvalidInput
from gc_admin.db import session_scope
from gc_admin.integrations.wechatpay.simulator import build_trade_bill
from gc_admin.payments import ledger, reconcile
from tests.support import wired
from tests.unit.orders.support import CLERK, buy, buyer, pay


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
    with pytest.raises(InvalidInput) as err:
        with session_scope() as s:
            reconcile.reconcile_trade_bill(s, data=b"not,a,bill\n1,2,3\n", actor=CLERK)
    assert err.value.code == "BAD_BILL"
    with pytest.raises(InvalidInput) as err:
        with session_scope() as s:
            reconcile.reconcile_trade_bill(s, data=bill, actor=CLERK, bill_date=today - dt.timedelta(days=1))
    assert err.value.code == "BILL_DATE_MISMATCH"


def test_reconcile_an_empty_day(any_db) -> None:
    with wired():
        with session_scope() as s:
            result = reconcile.fetch_and_reconcile(s, bill_date=utcnow().astimezone(SHANGHAI).date(), actor=CLERK)
    assert result.ok and result.bill_rows == result.ledger_rows == 0
