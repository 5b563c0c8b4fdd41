import asyncio
import datetime as dt

from gc_admin import jobs
from gc_admin.cli import main


def test_cli_runs_every_job_once(db, capsys):
    assert main(["jobs"]) == 0
    out = capsys.readouterr().out
    for job in jobs.JOBS:
        assert job.name in out


def test_run_forever_runs_jobs_and_survives_a_failing_one(db):
    calls: list[str] = []

    def good(session):
        calls.append("good")

    def bad(session):
        calls.append("bad")
        raise RuntimeError("boom")

    async def scenario():
        task = asyncio.create_task(jobs.run_forever([jobs.Job("bad", 0.01, bad), jobs.Job("good", 0.01, good)], tick=0.01))
        await asyncio.sleep(0.3)
        task.cancel()

    asyncio.run(scenario())
    assert calls.count("good") >= 2 and calls.count("bad") >= 2


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
