"""The staff side over the HTTP API: queue, detail with OCR beside the claim, images for reviewers
only, lease, approve (paid through the Alipay simulator), reject (coupon back), four eyes, manual
payout with a reference, bulk approve of clean claims, reveal audited; masked everywhere else."""

from __future__ import annotations

import pytest

from gc_admin.claims.payout import out_biz_no
from tests.support import api_error, rows, scalar, staff_headers
from tests.unit.claims.support import (
    CARD,
    all_sim_transfers,
    filed_claim,
    sim_transfers,
    staff_world,
    user_headers,
    wechat_receipt,
)
from tests.unit.claims.test_ocr import _run_job

A = "/api/v1/admin/claims"


@pytest.fixture
def staff(make_staff, claims_env, api):
    staff_world(make_staff)
    return {u: staff_headers(api, u) for u in ("chen", "liu", "mgr", "kefu", "picc", "sup")}


def test_a_clerk_approves_a_fuel_claim_and_it_is_paid_once_through_alipay(api, staff):
    claim = filed_claim(api)
    _run_job()
    queue = api.get(f"{A}?status=pending_review", headers=staff["chen"]).json()
    assert queue["total"] == 1 and queue["items"][0]["phone_masked"] == "138****5678"
    assert queue["items"][0]["account_masked"] == "138****5678" and queue["items"][0]["sla"]["overdue"] is False
    d = api.get(f"{A}/{claim['id']}", headers=staff["chen"]).json()
    assert d["amount_paid_fen"] == 12800 and d["images"][0]["ocr"]["amount_fen"] == 12800
    assert d["images"][0]["ocr"]["transaction_no"] == "4200002345202611281234567890"
    assert d["mismatches"] == [] and d["duplicates"] == []
    assert "13812345678" not in str(d)  # masked everywhere
    img = api.get(d["images"][0]["url"], headers=staff["chen"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    assert img.headers["cache-control"] == "private, no-store" and img.content[:4] == b"\x89PNG"

    ok = api.post(f"{A}/{claim['id']}/approve", json={}, headers=staff["chen"])
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "paid" and ok.json()["payout"]["status"] == "succeeded"
    no = out_biz_no(claim["id"], 1)
    assert sim_transfers(no) == 1
    assert rows("SELECT status FROM coupon WHERE id = :i", i=claim["coupon_id"]) == [("used",)]
    assert rows("SELECT kind, amount_fen, ref, provider FROM ledger_entry") == [
        ("cashback_payout", -5000, f"cashback:{no}", "alipay")]
    assert [r[0] for r in rows("SELECT action FROM audit_log WHERE target_type = 'claim' ORDER BY id")] == [
        "claim.submitted", "claim.approved", "claim.payout_recorded", "claim.paid"]
    mine = api.get(f"/api/v1/mp/claims/{claim['id']}", headers=_user(api)).json()
    assert mine["status"] == "paid" and mine["payout"]["reference"]
    # again: nothing more
    again = api.post(f"{A}/{claim['id']}/approve", json={}, headers=staff["liu"])
    api_error(again, 409, "CLAIM_STATE_CHANGED")
    assert api.post(f"{A}/{claim['id']}/payout", json={}, headers=staff["chen"]).json()["status"] == "paid"
    assert sim_transfers(no) == 1 and scalar("SELECT count(*) FROM ledger_entry") == 1


def _user(api):
    return user_headers(api, "13812345678")


def test_reject_gives_the_coupon_back_with_the_reason(api, staff):
    claim = filed_claim(api)
    opts = api.get(f"{A}/options", headers=staff["chen"]).json()
    code = opts["reject_reasons"][1]["code"]
    r = api.post(f"{A}/{claim['id']}/reject", json={"reason": code}, headers=staff["chen"])
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert rows("SELECT status, reserved_for FROM coupon") == [("available", None)]
    mine = api.get(f"/api/v1/mp/claims/{claim['id']}", headers=_user(api)).json()
    assert mine["status"] == "rejected" and mine["reason"] == opts["reject_reasons"][1]["label"]
    assert all_sim_transfers() == 0
    api_error(api.post(f"{A}/{claim['id']}/approve", json={}, headers=staff["chen"]), 409, "CLAIM_STATE_CHANGED")


def test_only_reviewer_roles_see_claims_and_images(api, staff):
    claim = filed_claim(api)
    for who in ("kefu", "picc", "sup"):
        api_error(api.get(A, headers=staff[who]), 403, "FORBIDDEN")
        api_error(api.get(f"{A}/{claim['id']}/images/1", headers=staff[who]), 403, "FORBIDDEN")
        api_error(api.post(f"{A}/{claim['id']}/approve", json={}, headers=staff[who]), 403, "FORBIDDEN")
    assert api.get(f"{A}/{claim['id']}/images/1").status_code == 401
    assert api.get(f"{A}/{claim['id']}/images/1", headers=_user(api)).status_code == 401  # a user token is no staff
    api_error(api.get(f"{A}/{claim['id']}/images/2", headers=staff["chen"]), 404, "IMAGE_NOT_FOUND")


def test_a_claim_leased_by_one_clerk_cannot_be_decided_by_another(api, staff):
    claim = filed_claim(api)
    assert api.post(f"{A}/{claim['id']}/lease", headers=staff["chen"]).json()["leased_by"] == "陈内勤"
    msg = api_error(api.post(f"{A}/{claim['id']}/approve", json={}, headers=staff["liu"]), 409, "CLAIM_LEASED_BY_OTHER")
    assert "陈内勤" in msg
    api_error(api.post(f"{A}/{claim['id']}/reject", json={"reason": "凭证模糊"}, headers=staff["liu"]), 409,
              "CLAIM_LEASED_BY_OTHER")
    assert api.get(A, headers=staff["liu"]).json()["items"][0]["leased_by"] == "陈内勤"
    api.post(f"{A}/{claim['id']}/release", headers=staff["chen"])
    assert api.post(f"{A}/{claim['id']}/reject", json={"reason": "凭证模糊"}, headers=staff["liu"]).status_code == 200


def test_four_eyes_above_the_amount_needs_a_second_approver_who_does_not_pay(api, staff, monkeypatch):
    from gc_admin.config import get_settings

    monkeypatch.setenv("GC_CLAIMS_FOUR_EYES_FEN", "4000")  # the ¥50 fuel cashback is above it
    get_settings.cache_clear()
    claim = filed_claim(api)
    first = api.post(f"{A}/{claim['id']}/approve", json={}, headers=staff["chen"]).json()
    assert first["status"] == "pending_review" and first["awaiting_second"] is True
    api_error(api.post(f"{A}/{claim['id']}/approve", json={}, headers=staff["chen"]), 409, "FOUR_EYES_SAME_PERSON")
    second = api.post(f"{A}/{claim['id']}/approve", json={}, headers=staff["mgr"]).json()
    assert second["status"] == "approved" and second["payout"] is None  # not paid by the second approver
    assert all_sim_transfers() == 0
    api_error(api.post(f"{A}/{claim['id']}/payout", json={}, headers=staff["mgr"]), 409, "FOUR_EYES_PAYER")
    paid = api.post(f"{A}/{claim['id']}/payout", json={}, headers=staff["chen"]).json()
    assert paid["status"] == "paid" and sim_transfers(out_biz_no(claim["id"], 1)) == 1
    d = api.get(f"{A}/{claim['id']}", headers=staff["liu"]).json()
    assert (d["reviewer"], d["approver2"], d["payer"]) == ("陈内勤", "王经理", "陈内勤")


def test_the_users_third_payout_in_a_month_needs_four_eyes(api, staff):
    ids = [filed_claim(api, client_ref=f"n{i}", amount_paid_fen=12800 + i,
                       images=[wechat_receipt(txn=f"42000{i}", mch_no=f"M{i}")])["id"] for i in range(3)]
    assert api.post(f"{A}/{ids[0]}/approve", json={}, headers=staff["chen"]).json()["status"] == "paid"
    assert api.post(f"{A}/{ids[1]}/approve", json={}, headers=staff["chen"]).json()["status"] == "paid"
    third = api.post(f"{A}/{ids[2]}/approve", json={}, headers=staff["chen"]).json()
    assert third["awaiting_second"] is True


def test_a_bank_claim_is_paid_by_hand_with_the_reference_and_the_card_revealed_audited(api, staff):
    claim = filed_claim(api, payout_method="bank", real_name="张三", bank_card_no=CARD, bank_name="工商银行")
    ok = api.post(f"{A}/{claim['id']}/approve", json={"note": "凭证清晰"}, headers=staff["chen"]).json()
    assert ok["status"] == "approved" and ok["payout"] is None
    d = api.get(f"{A}/{claim['id']}", headers=staff["chen"]).json()
    assert CARD not in str(d) and d["account_masked"] == f"{CARD[:4]}****{CARD[-4:]}" and d["real_name_masked"] == "张*"
    whole = api.post(f"{A}/{claim['id']}/reveal", headers=staff["chen"]).json()
    assert whole == {"account": CARD, "real_name": "张三"}
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'claim.account_revealed'") == 1
    assert CARD not in str(rows("SELECT * FROM audit_log"))
    api_error(api.post(f"{A}/{claim['id']}/payout", json={"reference": "x"}, headers=staff["chen"]), 422,
              "INVALID_REFERENCE")
    paid = api.post(f"{A}/{claim['id']}/payout", json={"reference": "ICBC20261201000123"}, headers=staff["chen"])
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    assert api.post(f"{A}/{claim['id']}/payout", json={"reference": "ICBC20261201000123"},
                    headers=staff["liu"]).status_code == 200  # the same entry again changes nothing
    api_error(api.post(f"{A}/{claim['id']}/payout", json={"reference": "OTHER123"}, headers=staff["liu"]), 409,
              "CLAIM_ALREADY_PAID")
    assert rows("SELECT amount_fen, provider, provider_ref FROM ledger_entry") == [(-5000, "manual", "ICBC20261201000123")]
    assert rows("SELECT status FROM coupon") == [("used",)] and all_sim_transfers() == 0


@pytest.mark.usefixtures("any_db")  # the flags filter reads a JSON column: both databases
def test_bulk_approve_takes_clean_claims_and_refuses_flagged_ones(api, staff):
    clean = filed_claim(api, client_ref="k1")
    flagged = filed_claim(api, phone="13900000002", client_ref="k2", images=[wechat_receipt()])  # same image
    # before the OCR job has read them, their duplicate checks are not done: batch approval waits
    r = api.post(f"{A}/bulk/approve", json={"claim_ids": [clean["id"]]}, headers=staff["chen"]).json()
    assert r["approved"] == 0 and r["results"][0]["error"]["code"] == "CLAIM_CHECKS_PENDING"
    assert "识别中" in r["results"][0]["error"]["message"]
    _run_job()
    r = api.post(f"{A}/bulk/approve", json={"claim_ids": [clean["id"], flagged["id"]]}, headers=staff["chen"]).json()
    assert r["approved"] == 1
    by = {x["claim_id"]: x for x in r["results"]}
    assert by[clean["id"]]["status"] == "paid" and by[flagged["id"]]["error"]["code"] == "CLAIM_FLAGGED"
    assert api.get(f"{A}?flagged=true", headers=staff["chen"]).json()["items"][0]["id"] == flagged["id"]
    assert [i["id"] for i in api.get(f"{A}?flagged=false", headers=staff["chen"]).json()["items"]] == [clean["id"]]


@pytest.mark.usefixtures("any_db")
def test_queue_filters_and_search_by_phone(api, staff):
    a = filed_claim(api, client_ref="f1")
    b = filed_claim(api, phone="13900000002", category="car_wash", station="南宁车之美洗车店", client_ref="f2",
                    amount_paid_fen=3500, images=[wechat_receipt(txn="X1", mch_no="Y1", merchant="南宁车之美洗车店")])
    h = staff["chen"]
    assert [i["id"] for i in api.get(f"{A}?q=13900000002", headers=h).json()["items"]] == [b["id"]]
    assert [i["id"] for i in api.get(f"{A}?q=5678", headers=h).json()["items"]] == [a["id"]]
    assert [i["id"] for i in api.get(f"{A}?category=car_wash", headers=h).json()["items"]] == [b["id"]]
    assert [i["id"] for i in api.get(f"{A}?min_fen=10000", headers=h).json()["items"]] == [a["id"]]
    assert api.get(f"{A}?status=paid", headers=h).json()["total"] == 0
    api_error(api.get(f"{A}?status=weird", headers=h), 422, "INVALID_STATUS")


def test_the_review_pages_history_and_user_claims_show_no_raw_status(api, staff):
    """处理记录 as the review page renders it (:func:`gc_admin.claims.display.claim_detail`): every action,
    status and the automatic refusal's reason in Chinese; the API keeps its codes."""
    import re

    from gc_admin.claims import display, review
    from gc_admin.claims.models import EVENT_ACTIONS, STATUSES
    from gc_admin.db import session_scope

    paid = filed_claim(api, client_ref="h1")
    rejected = filed_claim(api, client_ref="h2", amount_paid_fen=9900)
    refused = api.post("/api/v1/mp/claims", headers=_user(api), files=[("images", ("r.png", wechat_receipt(), "image/png"))],
                       data={"category": "car_wash", "amount_paid_fen": "3500", "station": "南宁车之美洗车店",
                             "payout_method": "alipay", "alipay_account": "13812345678", "real_name": "张三",
                             "contact_phone": "13812345678", "client_ref": "h3"}).json()
    assert refused["status"] == "refused" and refused["reason"] == "no valid coupon"
    assert refused["reason_label"] == "没有可用的返现券" and refused["status_label"] == "审核不通过"
    assert api.post(f"{A}/{paid['id']}/approve", json={}, headers=staff["chen"]).json()["status"] == "paid"
    assert api.post(f"{A}/{rejected['id']}/reject", json={"reason": "图片模糊"}, headers=staff["chen"]).status_code == 200
    assert {r[0] for r in rows("SELECT DISTINCT action FROM claim_event")} == {
        "submit", "approve", "payout_recorded", "paid", "reject", "refuse"}
    raw = re.compile(r"\b(" + "|".join(sorted({*STATUSES, *EVENT_ACTIONS}, key=len, reverse=True)) + r")\b")
    shown: list[str] = []
    for claim_id in (paid["id"], rejected["id"], refused["id"]):
        with session_scope() as s:
            head, _, _, _, history, others = display.claim_detail(review.detail(s, claim_id=claim_id))
        for line in [*history, *others, head["status_label"], head["reason"]]:
            assert not raw.search(line) and "no valid coupon" not in line, line
        shown += history
    text = "\n".join(shown)
    for label in ("提交申请", "审核通过", "登记打款", "打款成功", "驳回", "自动不通过", "没有可用的返现券", "已打款", "已驳回",
                  "审核不通过", "待审核"):
        assert label in text, label
