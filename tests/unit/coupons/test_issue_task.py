"""A batch issuance through the APIs is the ``coupons.issue_batch`` task: the request records the batch (queued,
its phones in ``task_file``), defers ``batch:<id>`` in the same unit of work and waits for the per-row result. The
same batch_id again replays the first result and defers nothing. When the wait runs out: 202, then the GET."""

from __future__ import annotations

import json

import pytest

from gc_admin import tasks as _registry  # noqa: F401  (every task registered, as in the app)
from gc_admin.config import get_settings
from gc_admin.core import tasks
from gc_admin.coupons.issuance import flows
from gc_admin.db import session_scope
from gc_admin.partners.service import create_key
from tests.support import rows, scalar, staff_headers
from tests.unit.coupons.support import STAFF, codes_csv, setup_catalogue

pytestmark = pytest.mark.usefixtures("any_db")

PHONES = ["13800000001", "13800000002", "13800000001", "12345", "13800000003"]


def _stock(n: int) -> None:
    from gc_admin.coupons.stock import service as stock

    with session_scope() as s:
        stock.import_codes(s, actor=STAFF, product_code="tpp50", data=codes_csv([(f"IS{i:06d}", 90) for i in range(n)]))


def _jobs() -> list[tuple[str, dict]]:
    if tasks.in_process():
        jobs = tasks._app(get_settings().database_url, "memory").connector.jobs.values()
        return [(j["queueing_lock"], j["args"]) for j in jobs if j["task_name"] == "coupons.issue_batch"]
    return [(k, a if isinstance(a, dict) else json.loads(a)) for k, a in
            rows("SELECT queueing_lock, args FROM procrastinate_jobs WHERE task_name = 'coupons.issue_batch'")]


def test_admin_issuance_runs_the_task_and_the_same_batch_again_replays(api, make_staff):
    setup_catalogue()
    _stock(10)
    make_staff("chen", "clerk")
    clerk = staff_headers(api, "chen")
    body = {"batch_id": "B-1", "product_code": "tpp50", "phones": PHONES}
    first = api.post("/api/v1/admin/issuances", headers=clerk, json=body)
    assert first.status_code == 200, first.text
    out = first.json()
    assert (out["status"], out["issued"], out["failed"], out["replayed"]) == ("done", 3, 2, False)
    assert [r["status"] for r in out["rows"]] == ["issued", "issued", "duplicate", "invalid_phone", "issued"]
    (issuance_id,) = [i for (i,) in rows("SELECT id FROM issuance_batch")]
    assert _jobs() == [(f"batch:{issuance_id}", {"issuance_id": issuance_id})]  # the id only, never the phones
    assert scalar("SELECT count(*) FROM task_file") == 0
    assert rows("SELECT task, status FROM task_run WHERE task = 'coupons.issue_batch'") == [
        ("coupons.issue_batch", "succeeded")]
    again = api.post("/api/v1/admin/issuances", headers=clerk, json=body)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["rows"] == out["rows"]
    assert scalar("SELECT count(*) FROM coupon") == 3 and len(_jobs()) == 1  # nothing more issued, nothing deferred
    # a late run of the task (a retry after its commit) issues nothing more
    assert flows.run_issue(issuance_id=issuance_id) == {"issuance_id": issuance_id, "status": "done", "issued": 0}
    assert scalar("SELECT count(*) FROM coupon") == 3
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'coupon.issued'") == 1


def test_partner_issuance_runs_the_task(api, make_staff):
    setup_catalogue()
    _stock(5)
    from gc_admin.accounts.service import Principal

    boss = make_staff("boss", "admin")
    with session_scope() as s:
        _, key = create_key(s, actor=Principal(boss.id, "boss", "王敏", "admin"), partner_name="人保之友俱乐部",
                            programme_code="picc_gx", scopes=["issuance:write", "issuance:read"])
    body = {"batch_id": "P-1", "product_code": "tpp50", "phones": ["13900000001", "13900000002"]}
    sent = api.post("/api/v1/partner/issuances", headers={"X-Api-Key": key}, json=body)
    assert sent.status_code == 200, sent.text
    assert (sent.json()["issued"], sent.json()["replayed"]) == (2, False)
    again = api.post("/api/v1/partner/issuances", headers={"X-Api-Key": key}, json=body)
    assert (again.status_code, again.json()["replayed"], again.json()["issued"]) == (200, True, 2)
    assert scalar("SELECT count(*) FROM coupon WHERE source = 'partner'") == 2


def test_when_the_wait_runs_out_the_api_answers_202_and_the_get_gives_the_rows(api, make_staff, monkeypatch):
    setup_catalogue()
    _stock(10)
    make_staff("chen", "clerk")
    clerk = staff_headers(api, "chen")
    monkeypatch.setenv("GC_TASKS_WAIT_SECONDS", "0")
    get_settings.cache_clear()
    monkeypatch.setattr(tasks, "worker_alive", lambda: True)  # a worker is up (and busy): the request only waits
    body = {"batch_id": "B-LATER", "product_code": "tpp50", "phones": PHONES}
    sent = api.post("/api/v1/admin/issuances", headers=clerk, json=body)
    assert sent.status_code == 202, sent.text
    assert sent.json() == {"batch_id": "B-LATER", "status": "queued"}
    queued = api.get("/api/v1/admin/issuances/B-LATER", headers=clerk).json()
    assert (queued["status"], queued["issued"], queued["rows"]) == ("queued", 0, [])
    assert scalar("SELECT count(*) FROM coupon") == 0
    tasks.run_waiting()  # the worker gets to it
    done = api.get("/api/v1/admin/issuances/B-LATER", headers=clerk).json()
    assert (done["status"], done["issued"], len(done["rows"])) == ("done", 3, 5)
    get_settings.cache_clear()


def test_a_reused_batch_id_is_refused_at_once_and_nothing_is_deferred(api, make_staff):
    setup_catalogue()
    _stock(5)
    make_staff("chen", "clerk")
    clerk = staff_headers(api, "chen")
    assert api.post("/api/v1/admin/issuances", headers=clerk,
                    json={"batch_id": "B-2", "product_code": "tpp50", "phones": ["13800000001"]}).status_code == 200
    other = api.post("/api/v1/admin/issuances", headers=clerk,
                     json={"batch_id": "B-2", "product_code": "tpp50", "phones": ["13800000009"]})
    assert other.status_code == 409 and other.json()["error"]["code"] == "BATCH_ID_REUSED"
    assert len(_jobs()) == 1 and scalar("SELECT count(*) FROM coupon") == 1


def test_a_batch_whose_task_breaks_is_failed_not_queued_for_ever_and_the_same_batch_again_retries_it(
        api, make_staff, monkeypatch):
    """An exception inside the issuing unit of work (our bug): it rolled back — nothing issued — and the batch is
    on record failed (error code, audit row), the request answers 500 with a Chinese message, the GET and the
    history say so, the sweep leaves it alone; the same batch_id sent again is a new attempt of the same batch."""
    from gc_admin.coupons.issuance import service

    setup_catalogue()
    _stock(10)
    make_staff("chen", "clerk")
    clerk = staff_headers(api, "chen")
    real = service._issue_rows

    def broken(session, **kw):
        real(session, **kw)  # the coupons are written, then it breaks: all of it must roll back
        raise RuntimeError("boom")

    monkeypatch.setattr(service, "_issue_rows", broken)
    body = {"batch_id": "B-BROKEN", "product_code": "tpp50", "phones": PHONES}
    sent = api.post("/api/v1/admin/issuances", headers=clerk, json=body)
    assert sent.status_code == 500, sent.text
    error = sent.json()["error"]
    assert (error["code"], error["details"]) == ("ISSUANCE_ERROR", {"batch_id": "B-BROKEN"})
    assert "未发放任何券" in error["message"]
    assert scalar("SELECT count(*) FROM coupon") == 0 and scalar("SELECT count(*) FROM issuance_row") == 0
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 10
    assert rows("SELECT status, error_code FROM issuance_batch") == [("failed", "ISSUANCE_ERROR")]
    assert scalar("SELECT count(*) FROM task_file") == 0
    assert rows("SELECT status FROM task_run WHERE task = 'coupons.issue_batch'") == [("succeeded",)]  # not retried
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'coupon.issue_failed'") == 1
    got = api.get("/api/v1/admin/issuances/B-BROKEN", headers=clerk).json()
    assert (got["status"], got["error_code"], got["issued"], got["rows"]) == ("failed", "ISSUANCE_ERROR", 0, [])
    with session_scope() as s:
        (summary,), _ = service.list_issuances(s)
        assert service.batch_status_label(summary.status) == "失败"
        assert flows.resume_batches(s, minutes=0) == 0  # the sweep does not defer it again
    assert flows.run_issue(issuance_id=summary.issuance_id)["issued"] == 0  # a late run changes nothing
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'coupon.issue_failed'") == 1

    monkeypatch.setattr(service, "_issue_rows", real)  # the cause fixed: the partner sends the same batch again
    again = api.post("/api/v1/admin/issuances", headers=clerk, json=body)
    assert again.status_code == 200, again.text
    assert (again.json()["status"], again.json()["issued"], again.json()["replayed"]) == ("done", 3, False)
    assert rows("SELECT status, error_code FROM issuance_batch") == [("done", None)]
    assert scalar("SELECT count(*) FROM coupon") == 3
    replay = api.post("/api/v1/admin/issuances", headers=clerk, json=body)
    assert (replay.status_code, replay.json()["replayed"], replay.json()["issued"]) == (200, True, 3)
    assert scalar("SELECT count(*) FROM coupon") == 3


def test_a_failed_batch_retried_twice_at_once_is_queued_once(db):
    """Two resends of a failed batch: the conditional update lets one of them queue it again; the other replays."""
    from gc_admin.coupons.issuance import service

    setup_catalogue()
    args = dict(actor=STAFF, source="staff", batch_id="B-TWICE", product_code="tpp50", phones=["13800000001"])
    with session_scope() as s:
        issuance_id, new = service.queue_batch(s, **args)
        assert new
    with session_scope() as s:
        assert service.fail_batch(s, issuance_id=issuance_id, code="ISSUANCE_ERROR")
        assert not service.fail_batch(s, issuance_id=issuance_id, code="ISSUANCE_ERROR")  # once
    with session_scope() as s:
        assert service.queue_batch(s, **args) == (issuance_id, True)
    with session_scope() as s:
        assert service.queue_batch(s, **args) == (issuance_id, False)
    assert rows("SELECT status, error_code FROM issuance_batch") == [("queued", None)]
