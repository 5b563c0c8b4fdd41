"""The guarantees of issue 11, on SQLite and PostgreSQL: whatever happens — two clerks at once, double
clicks, a retry after a timeout, a worker dying between "recorded" and "sent", a confirmed failure —
exactly one transfer at the Alipay simulator, one ledger entry, the coupon used once."""

from __future__ import annotations

import datetime as dt

import pytest

from gc_admin.claims import payout
from gc_admin.claims.payout import out_biz_no
from gc_admin.core.principal import Principal
from gc_admin.db import session_scope
from gc_admin.integrations import sims
from gc_admin.integrations.alipay.simulator import inject_fault
from tests.support import race, rows, scalar, staff_headers
from tests.unit.claims.support import all_sim_transfers, filed_claim, sim_transfers

pytestmark = pytest.mark.usefixtures("any_db")
A = "/api/v1/admin/claims"
N = 4


@pytest.fixture
def clerks(make_staff, claims_env, api):
    names = [f"clerk{i}" for i in range(N)]
    for n in names:
        make_staff(n, "clerk", name=f"内勤{n[-1]}")
    return [staff_headers(api, n) for n in names]


def _once(claim: dict, no: str) -> None:
    assert sim_transfers(no) == 1 and all_sim_transfers() == 1
    assert rows("SELECT kind, amount_fen, ref FROM ledger_entry") == [("cashback_payout", -5000, f"cashback:{no}")]
    assert rows("SELECT status, used_at IS NOT NULL FROM coupon WHERE id = :i", i=claim["coupon_id"]) in (
        [("used", True)], [("used", 1)])
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'coupon.consumed'") == 1
    assert rows("SELECT status FROM claim WHERE id = :i", i=claim["id"]) == [("paid",)]
    assert scalar("SELECT count(*) FROM claim_payout WHERE status = 'succeeded'") == 1


def test_clerks_approving_one_claim_at_once_pay_it_once(api, clerks):
    claim = filed_claim(api)
    answers = race(N, lambda i: api.post(f"{A}/{claim['id']}/approve", json={}, headers=clerks[i]))
    assert not [a for a in answers if isinstance(a, Exception)]
    ok = [a for a in answers if a.status_code == 200]
    assert len(ok) == 1 and ok[0].json()["status"] == "paid"
    assert {a.json()["error"]["code"] for a in answers if a.status_code != 200} <= {"CLAIM_LEASED_BY_OTHER",
                                                                                     "CLAIM_STATE_CHANGED"}
    _once(claim, out_biz_no(claim["id"], 1))


def test_double_clicks_on_approve_and_payout_pay_once(api, clerks):
    claim = filed_claim(api)
    answers = race(2, lambda i: api.post(f"{A}/{claim['id']}/approve", json={}, headers=clerks[0]))
    assert sorted(a.status_code for a in answers) == [200, 409]
    clicks = race(N, lambda i: api.post(f"{A}/{claim['id']}/payout", json={}, headers=clerks[0]))
    assert {c.status_code for c in clicks} == {200} and {c.json()["status"] for c in clicks} == {"paid"}
    _once(claim, out_biz_no(claim["id"], 1))


@pytest.mark.parametrize("fault", ["system_error_after", "timeout_before", "unsigned"])
def test_a_retry_after_an_unknown_result_queries_first_and_pays_once(api, clerks, fault):
    claim = filed_claim(api)
    inject_fault(sims.simulators().alipay, fault, delay_ms=0)
    first = api.post(f"{A}/{claim['id']}/approve", json={}, headers=clerks[0]).json()
    assert first["status"] == "paying" and first["payout"]["status"] == "unknown"
    assert rows("SELECT status FROM coupon") == [("reserved",)] and scalar("SELECT count(*) FROM ledger_entry") == 0
    retry = api.post(f"{A}/{claim['id']}/payout", json={}, headers=clerks[1]).json()
    assert retry["status"] == "paid" and retry["payout"]["out_biz_no"] == out_biz_no(claim["id"], 1)
    _once(claim, out_biz_no(claim["id"], 1))


def _principal(i: int = 1) -> Principal:
    return Principal(id=i, username=f"clerk{i - 1}", display_name=f"内勤{i - 1}", role="clerk")


def test_a_worker_dying_between_recorded_and_sent_pays_once_when_resumed(api, clerks):
    claim = filed_claim(api)
    from gc_admin.claims import review

    with session_scope() as s:
        review.approve(s, claim_id=claim["id"], principal=_principal())
    with session_scope() as s:  # the worker records the payout, commits ... and dies before sending
        payout.record_payout(s, claim_id=claim["id"], principal=_principal())
    assert all_sim_transfers() == 0 and rows("SELECT status FROM claim") == [("paying",)]
    # the job resumes it (and a racing click too): one transfer
    answers = race(3, lambda i: payout.resume_unfinished(older_than=dt.timedelta(0)) if i else
                   api.post(f"{A}/{claim['id']}/payout", json={}, headers=clerks[2]))
    assert not [a for a in answers if isinstance(a, Exception)], answers
    _once(claim, out_biz_no(claim["id"], 1))


def test_a_worker_dying_after_taking_the_send_lease_is_queried_before_resending(api, clerks):
    claim = filed_claim(api)
    from gc_admin.claims import review

    with session_scope() as s:
        review.approve(s, claim_id=claim["id"], principal=_principal())
    with session_scope() as s:
        p = payout.record_payout(s, claim_id=claim["id"], principal=_principal())
    now = payout.utcnow()
    assert payout._take_sender(p.id, now - payout.SEND_LEASE - dt.timedelta(seconds=1))  # took it, then died
    # it may or may not have sent: here it did (the transfer reached Alipay), the answer was lost
    from gc_admin.integrations.alipay.setup import get_client

    with session_scope() as s:
        c = s.get(payout.Claim, claim["id"])
        r = get_client().transfer(out_biz_no=p.out_biz_no, amount_fen=p.amount_fen, payee=payout._payee(c),
                                  order_title="车主权益返现")
    assert r.status == "SUCCESS"
    assert payout.resume_unfinished(older_than=dt.timedelta(0)) == {"succeeded": 1}
    _once(claim, p.out_biz_no)


def test_a_confirmed_failure_gets_a_new_out_biz_no_on_retry(api, clerks):
    claim = filed_claim(api)
    inject_fault(sims.simulators().alipay, "balance_not_enough")
    first = api.post(f"{A}/{claim['id']}/approve", json={}, headers=clerks[0]).json()
    assert first["status"] == "payout_failed" and first["payout"]["status"] == "failed"
    assert rows("SELECT status FROM coupon") == [("reserved",)]
    again = api.post(f"{A}/{claim['id']}/payout", json={}, headers=clerks[0]).json()
    assert again["status"] == "paid" and again["payout"]["out_biz_no"] == out_biz_no(claim["id"], 2)
    assert sim_transfers(out_biz_no(claim["id"], 1)) == 0
    _once(claim, out_biz_no(claim["id"], 2))
    assert [r[0] for r in rows("SELECT status FROM claim_payout ORDER BY attempt")] == ["failed", "succeeded"]
