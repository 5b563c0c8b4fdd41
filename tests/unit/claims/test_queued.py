"""Claims work done by the task queue, off the request path: a submission queues the reading of its
receipts (committed with the claim), and a payout whose result Alipay left unknown queues its own query."""

from __future__ import annotations

import pytest

from gc_admin import tasks as _registry  # noqa: F401  (every task registered, as in the app)
from gc_admin.claims.payout import out_biz_no
from gc_admin.config import get_settings
from gc_admin.core import tasks
from gc_admin.integrations import sims
from gc_admin.integrations.alipay.simulator import inject_fault
from tests.support import rows, run_queued, scalar, staff_headers
from tests.unit.claims.support import all_sim_transfers, filed_claim, give_coupons, post_claim, sim_transfers, user_headers
from tests.unit.tasks.test_in_process import run_queue_until


def _waiting() -> list[tuple[str, str, dict]]:
    jobs = tasks._app(get_settings().database_url, "memory").connector.jobs.values()
    return sorted((j["task_name"], j["queueing_lock"], j["args"]) for j in jobs if j["status"] == "todo")


@pytest.mark.usefixtures("any_db")
def test_a_submission_queues_the_reading_of_its_receipts(api, claims_env):
    assert not get_settings().claims.ocr_after_response  # the web process does not read them
    claim = filed_claim(api)
    assert scalar("SELECT ocr_status FROM claim_image") == "pending"  # the answer did not wait for OCR
    again = post_claim(api, user_headers(api, "13812345678"))  # the same client_ref: the first claim again
    assert again.status_code == 200 and again.json()["id"] == claim["id"]
    run_queued()
    (img,) = rows("SELECT ocr_status, ocr_amount_fen FROM claim_image")
    assert img == ("done", 12800)
    assert rows("SELECT task, status, result FROM task_run") in (
        [("claims.ocr", "succeeded", {"done": 1, "failed": 0})], [("claims.ocr", "succeeded", '{"done": 1, "failed": 0}')])


def test_a_refused_submission_queues_nothing(api, claims_env):
    give_coupons("13812345678")
    bad = post_claim(api, user_headers(api, "13812345678"), images=[b"not an image"])
    assert bad.status_code in (400, 415, 422), bad.text
    assert _waiting() == []


def test_an_unknown_payout_is_queried_from_the_queue_and_paid_once(api, claims_env, make_staff):
    tasks.reset()
    make_staff("clerk0", "clerk", name="内勤0")
    claim = filed_claim(api)
    run_queued()  # its receipts read (the claims.ocr job the submission queued)
    inject_fault(sims.simulators().alipay, "system_error_after", delay_ms=0)  # Alipay pays, the answer is lost
    first = api.post(f"/api/v1/admin/claims/{claim['id']}/approve", json={}, headers=staff_headers(api, "clerk0"))
    assert first.json()["status"] == "paying" and first.json()["payout"]["status"] == "unknown"
    payout_id = scalar("SELECT id FROM claim_payout")
    no = out_biz_no(claim["id"], 1)
    assert _waiting() == [("claims.payout_query", f"payout:{no}", {"payout_id": payout_id})]
    run_queue_until(lambda: scalar("SELECT status FROM claim WHERE id = :i", i=claim["id"]) == "paid")
    assert sim_transfers(no) == 1 and all_sim_transfers() == 1  # queried first: never a second transfer
    assert rows("SELECT kind, amount_fen, ref FROM ledger_entry") == [("cashback_payout", -5000, f"cashback:{no}")]
    assert rows("SELECT status FROM task_run WHERE task = 'claims.payout_query'") == [("succeeded",)]
