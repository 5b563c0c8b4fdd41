"""Coupons over HTTP as staff scripts, the insurer's club and the mini-program use them."""

from __future__ import annotations

import re

import pytest

from gc_admin.accounts.service import Principal
from gc_admin.coupons import service
from gc_admin.db import session_scope
from gc_admin.partners.service import create_key
from tests.unit.conftest import SYSTEM

CODES = [f"TPP{n:06d}XYZ{n % 7}" for n in range(1, 11)]


def _csv(codes, expires="2099-12-31") -> bytes:
    return ("code,expires_at\n" + "".join(f"{c},{expires}\n" for c in codes)).encode()


@pytest.fixture
def setup(api, make_staff):
    make_staff("boss", "admin")
    make_staff("mgr", "manager")
    make_staff("chen", "clerk")
    make_staff("liu", "service")
    with session_scope() as s:
        service.create_programme(s, actor=SYSTEM, code="picc_gx", name="广西人保车主权益", insurer="人保广西")
        service.create_programme(s, actor=SYSTEM, code="other", name="别的项目")
        service.create_product(s, actor=SYSTEM, code="TPP50", name="淘票票通兑券50元", kind="redemption_code", face_fen=5000,
                               cost_fen=3800, supplier="淘票票", programme_code="picc_gx", jump_app_id="wx1a2b3c4d5e6f7a8b",
                               jump_path="pages/index/index")
        service.create_product(s, actor=SYSTEM, code="OTHER10", name="别的项目券", kind="service_discount", face_fen=1000,
                               programme_code="other")
    return api


def _token(api, username):
    return {"Authorization": "Bearer " + api.post("/api/v1/admin/auth/login",
                                                 json={"username": username, "password": "secret2026"}).json()["token"]}


def _import(api, headers, codes=CODES):
    return api.post("/api/v1/admin/stock/imports", headers=headers, data={"product_code": "TPP50"},
                    files={"file": ("codes.csv", _csv(codes), "text/csv")})


def _mp_login(api, phone):
    api.post("/api/v1/mp/auth/sms/send", json={"phone": phone})
    from gc_admin.integrations.sms.service import messages_to

    with session_scope() as s:
        content = messages_to(s, phone=phone)[0].content  # as the phone received it
    code = re.search(r"(\d{6})", content).group(1)
    grant = api.post("/api/v1/mp/auth/sms/login", json={"phone": phone, "code": code}).json()
    return {"Authorization": f"Bearer {grant['token']}"}


def test_only_admin_or_manager_create_products(setup):
    api = setup
    body = {"code": "FLOWER30", "name": "鲜花立减30元", "kind": "service_discount", "face_fen": 3000}
    assert api.post("/api/v1/admin/products", json=body, headers=_token(api, "chen")).status_code == 403
    created = api.post("/api/v1/admin/products", json=body, headers=_token(api, "mgr"))
    assert created.status_code == 201 and created.json()["face_fen"] == 3000
    again = api.post("/api/v1/admin/products", json=body, headers=_token(api, "mgr"))
    assert again.status_code == 409
    bad = api.post("/api/v1/admin/products", json={**body, "code": "X2", "face_fen": 12.5}, headers=_token(api, "mgr"))
    assert bad.status_code == 422  # money is integer fen
    assert api.get("/api/v1/admin/products", headers=_token(api, "liu")).status_code == 403


def test_import_issue_and_use_end_to_end(setup):
    api = setup
    clerk = _token(api, "chen")
    report = _import(api, clerk).json()
    assert (report["rows"], report["imported"], report["duplicate_existing"]) == (10, 10, 0)
    assert _import(api, clerk).json()["imported"] == 0  # the same file again imports nothing new
    summary = api.get("/api/v1/admin/stock/summary", headers=clerk).json()
    assert sum(r["count"] for r in summary if r["state"] == "in_stock") == 10

    phones = ["13900000001", "13900000002", "139 0000 0003", "12345", "13900000001"]
    body = {"batch_id": "B-api-1", "product_code": "TPP50", "phones": phones}
    preview = api.post("/api/v1/admin/issuances/preview", json=body, headers=clerk).json()
    assert (preview["would_issue"], preview["invalid_phone"], preview["duplicate"], preview["stock_after"]) == (3, 1, 1, 7)
    result = api.post("/api/v1/admin/issuances", json=body, headers=clerk).json()
    assert [r["status"] for r in result["rows"]] == ["issued", "issued", "issued", "invalid_phone", "duplicate"]
    replay = api.post("/api/v1/admin/issuances", json=body, headers=clerk).json()
    assert replay["replayed"] is True and replay["coupons"] == result["coupons"] == 3
    summary = api.get("/api/v1/admin/stock/summary", headers=clerk).json()
    assert sum(r["count"] for r in summary if r["state"] == "in_stock") == 7

    # the coupons waited for the phone; the user signs in and finds one
    me = _mp_login(api, "13900000003")
    listed = api.get("/api/v1/mp/coupons", params={"status": "available"}, headers=me)
    assert listed.status_code == 200
    items = listed.json()["items"]
    from gc_admin.coupons.wallet.api import CouponsOut

    assert CouponsOut.model_validate(listed.json()).model_dump(mode="json") == listed.json()  # documented shape
    assert len(items) == 1 and items[0]["product"]["name"] == "淘票票通兑券50元"
    assert not any(code in listed.text for code in CODES)  # never a code in a list
    cid = items[0]["id"]
    used = api.post(f"/api/v1/mp/coupons/{cid}/use", headers=me).json()
    assert used["code"] in CODES and used["jump"] == {"app_id": "wx1a2b3c4d5e6f7a8b", "path": "pages/index/index"}
    assert api.post(f"/api/v1/mp/coupons/{cid}/use", headers=me).json()["code"] == used["code"]
    assert api.get("/api/v1/mp/coupons", params={"status": "used"}, headers=me).json()["items"][0]["id"] == cid

    # another user gets exactly the same 404 for this coupon as for a missing one
    other = _mp_login(api, "13900000002")
    theirs = api.get(f"/api/v1/mp/coupons/{cid}", headers=other)
    missing = api.get("/api/v1/mp/coupons/999999", headers=other)
    assert theirs.status_code == missing.status_code == 404 and theirs.json() == missing.json()
    assert api.post(f"/api/v1/mp/coupons/{cid}/use", headers=other).json() == missing.json()

    # staff views stay masked
    codes_page = api.get("/api/v1/admin/stock/codes", headers=clerk)
    assert codes_page.json()["total"] == 10 and not any(code in codes_page.text for code in CODES)
    assert sum(1 for c in codes_page.json()["items"] if c["coupon_id"]) == 3
    report_csv = api.get(f"/api/v1/admin/stock/imports/{report['import_id']}/report.csv", headers=clerk).text
    assert not any(code in report_csv for code in CODES)


def test_partner_issues_only_in_its_programme(setup):
    api = setup
    _import(api, _token(api, "chen"))
    with session_scope() as s:
        _, write_key = create_key(s, actor=Principal(1, "boss", "王敏", "admin"), partner_name="人保之友俱乐部",
                                  programme_code="picc_gx", scopes=["issuance:write", "issuance:read", "members:read"])
        _, read_only = create_key(s, actor=Principal(1, "boss", "王敏", "admin"), partner_name="只读",
                                  programme_code="picc_gx", scopes=["members:read"])
    key = {"X-Api-Key": write_key}
    body = {"batch_id": "club-0001", "product_code": "TPP50", "phones": ["13700000001", "13700000002"]}
    first = api.post("/api/v1/partner/issuances", json=body, headers=key).json()
    assert first["issued"] == 2 and first["replayed"] is False
    assert api.post("/api/v1/partner/issuances", json=body, headers=key).json()["replayed"] is True
    # a staff batch with the same id is another key space
    assert api.post("/api/v1/admin/issuances", json=body, headers=_token(api, "chen")).json()["replayed"] is False
    foreign = api.post("/api/v1/partner/issuances", json={**body, "batch_id": "club-0002", "product_code": "OTHER10"},
                       headers=key)
    assert foreign.status_code == 404
    state = api.get("/api/v1/partner/issuances/club-0001", headers=key).json()
    assert [r["coupon_states"] for r in state["rows"]] == [["available"], ["available"]]
    assert api.post("/api/v1/partner/issuances", json=body, headers={"X-Api-Key": read_only}).status_code == 403
    member = api.get("/api/v1/partner/members/13700000001/coupons", headers={"X-Api-Key": read_only})
    assert member.status_code == 200 and len(member.json()["items"]) == 2  # partner batch + staff batch
    assert "****" in member.json()["items"][0]["code_masked"] and not any(c in member.text for c in CODES)
    assert api.get("/api/v1/partner/members/13700000001/coupons").status_code == 401


def test_one_programme_rule_for_the_partner_and_the_insurers_staff(setup, make_staff):
    """The insurer's club key and the insurer's staff token get the same answers from the same rule:
    their programme's insurer-funded products only (a platform-funded product attached to the
    programme is the platform's to give), and their own batches only."""
    api = setup
    _import(api, _token(api, "chen"))
    with session_scope() as s:
        service.create_product(s, actor=SYSTEM, code="PROMO5", name="平台促销券", kind="service_discount",
                               face_fen=500, programme_code="picc_gx", funded_by="platform")
        _, key = create_key(s, actor=Principal(1, "boss", "王敏", "admin"), partner_name="人保之友俱乐部",
                            programme_code="picc_gx", scopes=["issuance:write", "issuance:read", "members:read"])
    make_staff("picc", "insurer", programme_code="picc_gx")
    callers = {"partner": ("/api/v1/partner", {"X-Api-Key": key}), "staff": ("/api/v1/admin", _token(api, "picc"))}
    for who, (base, headers) in callers.items():
        for product in ("PROMO5", "OTHER10"):
            body = {"batch_id": f"{who}-{product}", "product_code": product, "phones": ["13700000001"]}
            resp = api.post(f"{base}/issuances", json=body, headers=headers)
            assert resp.status_code == 404 and resp.json()["error"]["code"] == "PRODUCT_NOT_FOUND", (who, product)
        ok = api.post(f"{base}/issuances", json={"batch_id": f"{who}-1", "product_code": "TPP50",
                                                 "phones": ["13700000001"]}, headers=headers)
        assert ok.status_code == 200 and ok.json()["issued"] == 1, ok.text
    with session_scope() as s:
        assert service.issue_batch(s, actor=SYSTEM, source="staff", batch_id="clerk-1", product_code="PROMO5",
                                   phones=["13700000001"]).issued == 1  # the platform's staff may give it
    # the member's coupons through the club key: the programme's products only, not the platform's promo
    member = api.get("/api/v1/partner/members/13700000001/coupons", headers={"X-Api-Key": key}).json()
    assert [c["product_code"] for c in member["items"]] == ["tpp50", "tpp50"]
    # each side reads its own batch, not the other's nor the platform's
    assert api.get("/api/v1/partner/issuances/staff-1", headers={"X-Api-Key": key}).status_code == 404
    assert api.get("/api/v1/admin/issuances/partner-1", headers=callers["staff"][1]).status_code == 404
    assert api.get("/api/v1/admin/issuances/clerk-1", headers=callers["staff"][1]).status_code == 404
    assert api.get("/api/v1/admin/issuances/staff-1", headers=callers["staff"][1]).status_code == 200
