import datetime as dt

import sqlalchemy as sa

from gc_admin import jobs
from gc_admin.cli import main
from gc_admin.core.clock import utcnow
from gc_admin.db import session_scope


def test_cli_runs_every_job_once_and_each_does_its_work_once(db, capsys, monkeypatch):
    """``python -m gc_admin jobs`` runs each job once, and each does the work waiting for it: stock under its
    minimum validity is discarded and a coupon past its date expires, an unpaid order past its deadline is
    cancelled, a paid order's notice goes to the clerk on duty, a refund WeChat Pay never got is sent. A second
    run finds nothing left to do: nothing happens twice."""
    from gc_admin.config import get_settings
    from gc_admin.coupons import service as coupons
    from gc_admin.orders import flows, refunds
    from gc_admin.payments import balances
    from tests.support import SETUP, rows, scalar, wired
    from tests.unit.orders.support import CLERK, age, buy, buyer, get, pay, shop

    monkeypatch.setenv("GC_ONDUTY_PHONES", "13700000001")
    get_settings.cache_clear()
    shop()
    user = buyer()
    now = coupons.end_of_day(dt.date.today())
    with session_scope() as s:
        coupons.create_product(s, actor=SETUP, code="tpp5x", name="代金券5元", kind="redemption_code", face_fen=500,
                               cost_fen=430, programme_code="picc_gx", min_validity_days=60)
        coupons.import_codes(s, actor=SETUP, product_code="tpp5x", now=now - dt.timedelta(days=40),
                             data=f"code,expires_at\nAAAA0001BBBB,{dt.date.today() + dt.timedelta(days=45)}\n".encode())
        coupons.issue_batch(s, actor=SETUP, source="staff", batch_id="OLD", product_code="fuel50",
                            phones=["13800000009"], now=utcnow() - dt.timedelta(days=400))
        balances.move_points(s, user_id=user.id, delta=5_000, reason="赠送", ref="gift:jobs")
    with wired() as w:
        unpaid = buy(user, 1)
        age(unpaid.id, 5)
        bought = buy(user, 2)
        pay(w, bought)  # its notice is queued by the notify route (the orders.notices task; no worker here)
        with session_scope() as s:  # paid with points at once: no WeChat notify, its notice waits for the job
            topup = flows.create_order(s, user=user, body={"type": "topup", "points": 5_000,
                                                           "details": {"mobile": "13812345678", "face_fen": 5_000}})
            refund = refunds.refund_order(s, order_id=bought.id, amount_fen=4_500, reason="退一张", actor=CLERK)
            s.execute(sa.text("UPDATE refund SET updated_at = :t"), {"t": utcnow() - dt.timedelta(minutes=5)})
        notices_before = scalar("SELECT count(*) FROM sms_message WHERE template = 'new_order'")

        def effects() -> tuple:
            """Everything the jobs change: stock, coupons, orders, notices and their SMS, refunds, the audit log."""
            return (rows("SELECT id, state FROM stock_code ORDER BY id"),
                    rows("SELECT id, status FROM coupon ORDER BY id"),
                    rows("SELECT id, status FROM service_order ORDER BY id"),
                    rows("SELECT order_id, status, sent FROM order_notice ORDER BY order_id"),
                    rows("SELECT id, status FROM sms_message ORDER BY id"),
                    rows("SELECT id, status FROM refund ORDER BY id"),
                    sorted(w.state.refunds), scalar("SELECT count(*) FROM audit_log"))

        capsys.readouterr()

        assert main(["jobs"]) == 0
        first = capsys.readouterr().out.splitlines()
        assert [line.split(": ", 1)[0] for line in first] == [job.name for job in jobs.JOBS]
        assert first == [
            "coupons.expiry: {'discarded': 1, 'expired_coupons': 1, 'loss_cost_fen': 430}",
            "coupons.unfinished: {'imports': 0, 'batches': 0}",
            "orders.unfinished: {'imports': 0, 'shipments': 0}",
            "exports.sweep: {'deferred': 0, 'files_dropped': 0}",
            f"orders.expire_unpaid: ExpiryResult(cancelled=[{unpaid.id}], paid_late=[], close_errors=0)",
            "orders.notices: {'sent': 2}",
            "payments.refunds: 1",
            "orders.goods_auto_confirm: 0",
            "claims.ocr: {'done': 0, 'failed': 0}",
            "claims.payouts: {}",
            "tasks.prune: {'task_runs': 0, 'jobs': 0, 'order_changes': 0}",
        ]
        after_first = effects()
        assert get(unpaid.id).status == "cancelled" and w.state.orders[unpaid.order_no].trade_state == "CLOSED"
        assert rows("SELECT state FROM stock_code WHERE code = 'AAAA0001BBBB'") == [("discarded",)]
        assert rows("SELECT status FROM coupon WHERE phone = '13800000009'") == [("expired",)]
        assert scalar("SELECT count(*) FROM sms_message WHERE template = 'new_order'") == notices_before + 2
        assert rows("SELECT status, recipients, sent FROM order_notice WHERE order_id = :o", o=topup.id) == [
            ("sent", 1, 1)]
        assert rows("SELECT status FROM refund") == [("processing",)] and list(w.state.refunds) == [refund.out_refund_no]

        assert main(["jobs"]) == 0  # again: every job finds its work done
        assert capsys.readouterr().out.splitlines() == [
            "coupons.expiry: {'discarded': 0, 'expired_coupons': 0, 'loss_cost_fen': 0}",
            "coupons.unfinished: {'imports': 0, 'batches': 0}",
            "orders.unfinished: {'imports': 0, 'shipments': 0}",
            "exports.sweep: {'deferred': 0, 'files_dropped': 0}",
            "orders.expire_unpaid: ExpiryResult(cancelled=[], paid_late=[], close_errors=0)",
            "orders.notices: {'sent': 0}",
            "payments.refunds: 0",
            "orders.goods_auto_confirm: 0",
            "claims.ocr: {'done': 0, 'failed': 0}",
            "claims.payouts: {}",
            "tasks.prune: {'task_runs': 0, 'jobs': 0, 'order_changes': 0}",
        ]
        assert effects() == after_first
    get_settings.cache_clear()


def test_the_daily_prune_forgets_the_kanban_change_feed_older_than_a_day(db):
    """The 订单看板's ``order_change`` feed grows with every change to any order: the daily ``tasks.prune``
    drops the rows older than a day (no open board needs them) and keeps the recent ones a board still reads."""
    from gc_admin.orders.models import OrderChange
    from tests.support import rows

    (prune,) = [j for j in jobs.JOBS if j.name == "tasks.prune"]
    now = utcnow()
    with session_scope() as s:
        for order_id, age in ((1, dt.timedelta(days=3)), (2, dt.timedelta(hours=25)), (3, dt.timedelta(hours=2)),
                              (4, dt.timedelta(0))):
            s.add(OrderChange(order_id=order_id, what="moved", at=now - age))
    assert jobs.run_once(prune) == {"task_runs": 0, "jobs": 0, "order_changes": 2}
    assert rows("SELECT order_id FROM order_change ORDER BY order_id") == [(3,), (4,)]
    assert jobs.run_once(prune) == {"task_runs": 0, "jobs": 0, "order_changes": 0}  # again: nothing more to drop


def test_expiry_job_discards_stock_that_fell_under_min_validity(db):
    from gc_admin.coupons import service
    from gc_admin.coupons.service import stock_summary
    from gc_admin.db import session_scope
    from tests.support import SETUP

    soon = (dt.date.today() + dt.timedelta(days=45)).isoformat()
    with session_scope() as s:
        service.create_programme(s, actor=SETUP, code="picc_gx", name="广西人保车主权益")
        service.create_product(s, actor=SETUP, code="tpp5", name="代金券5元", kind="redemption_code", face_fen=500,
                               cost_fen=430, programme_code="picc_gx", min_validity_days=60)
        service.import_codes(s, actor=SETUP, product_code="tpp5", data=f"code,expires_at\nAAAA0001BBBB,{soon}\n".encode(),
                             now=service.end_of_day(dt.date.today()) - dt.timedelta(days=40))
    jobs.run_once(jobs.JOBS[0])
    with session_scope() as s:
        states = {r.state: r.count for r in stock_summary(s)}
    assert states.get("discarded") == 1 and not states.get("in_stock")
