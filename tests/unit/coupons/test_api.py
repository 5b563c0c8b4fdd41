"""Coupons over HTTP as staff scripts, the insurer's club and the mini-program use them."""

from __future__ import annotations

import pytest

from gc_admin.accounts.service import Principal
from gc_admin.coupons import service
from gc_admin.db import session_scope
from gc_admin.partners.service import create_key
from tests.support import SETUP, api_error, sms_user, staff_headers

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
        service.create_programme(s, actor=SETUP, code="picc_gx", name="广西人保车主权益", insurer="人保广西")
        service.create_programme(s, actor=SETUP, code="other", name="别的项目")
        service.create_product(s, actor=SETUP, code="TPP50", name="淘票票通兑券50元", kind="redemption_code", face_fen=5000,
                               cost_fen=3800, supplier="淘票票", programme_code="picc_gx", jump_app_id="wx1a2b3c4d5e6f7a8b",
                               jump_path="pages/index/index")
        service.create_product(s, actor=SETUP, code="OTHER10", name="别的项目券", kind="service_discount", face_fen=1000,
                               programme_code="other")
    return api


def _import(api, headers, codes=CODES):
    return api.post("/api/v1/admin/stock/imports", headers=headers, data={"product_code": "TPP50"},
                    files={"file": ("codes.csv", _csv(codes), "text/csv")})


def test_only_admin_or_manager_create_products(setup):
    api = setup
    body = {"code": "FLOWER30", "name": "鲜花立减30元", "kind": "service_discount", "face_fen": 3000}
    api_error(api.post("/api/v1/admin/products", json=body, headers=staff_headers(api, "chen")), 403, "FORBIDDEN")
    created = api.post("/api/v1/admin/products", json=body, headers=staff_headers(api, "mgr"))
    assert created.status_code == 201 and created.json()["face_fen"] == 3000
    again = api.post("/api/v1/admin/products", json=body, headers=staff_headers(api, "mgr"))
    api_error(again, 409, "PRODUCT_EXISTS")
    bad = api.post("/api/v1/admin/products", json={**body, "code": "X2", "face_fen": 12.5},
                   headers=staff_headers(api, "mgr"))
    api_error(bad, 422, "VALIDATION_ERROR")  # money is integer fen
    api_error(api.get("/api/v1/admin/products", headers=staff_headers(api, "liu")), 403, "FORBIDDEN")


def test_import_issue_and_use_end_to_end(setup):
    api = setup
    clerk = staff_headers(api, "chen")
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
    me = sms_user(api, "13900000003")
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
    other = sms_user(api, "13900000002")
    theirs = api.get(f"/api/v1/mp/coupons/{cid}", headers=other)
    missing = api.get("/api/v1/mp/coupons/999999", headers=other)
    assert api_error(theirs, 404, "COUPON_NOT_FOUND") and theirs.json() == missing.json()
    assert api.post(f"/api/v1/mp/coupons/{cid}/use", headers=other).json() == missing.json()

    # staff views stay masked
    codes_page = api.get("/api/v1/admin/stock/codes", headers=clerk)
    assert codes_page.json()["total"] == 10 and not any(code in codes_page.text for code in CODES)
    assert sum(1 for c in codes_page.json()["items"] if c["coupon_id"]) == 3
    report_csv = api.get(f"/api/v1/admin/stock/imports/{report['import_id']}/report.csv", headers=clerk).text
    assert not any(code in report_csv for code in CODES)


def test_partner_issues_only_in_its_programme(setup):
    api = setup
    _import(api, staff_headers(api, "chen"))
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
    assert api.post("/api/v1/admin/issuances", json=body, headers=staff_headers(api, "chen")).json()["replayed"] is False
    foreign = api.post("/api/v1/partner/issuances", json={**body, "batch_id": "club-0002", "product_code": "OTHER10"},
                       headers=key)
    api_error(foreign, 404, "PRODUCT_NOT_FOUND")
    state = api.get("/api/v1/partner/issuances/club-0001", headers=key).json()
    assert [r["coupon_states"] for r in state["rows"]] == [["available"], ["available"]]
    api_error(api.post("/api/v1/partner/issuances", json=body, headers={"X-Api-Key": read_only}), 403, "SCOPE_MISSING")
    member = api.get("/api/v1/partner/members/13700000001/coupons", headers={"X-Api-Key": read_only})
    assert member.status_code == 200 and len(member.json()["items"]) == 2  # partner batch + staff batch
    assert "****" in member.json()["items"][0]["code_masked"] and not any(c in member.text for c in CODES)
    api_error(api.get("/api/v1/partner/members/13700000001/coupons"), 401, "INVALID_API_KEY")


def test_one_programme_rule_for_the_partner_and_the_insurers_staff(setup, make_staff):
    """The insurer's club key and the insurer's staff token get the same answers from the same rule:
    their programme's insurer-funded products only (a platform-funded product attached to the
    programme is the platform's to give), and their own batches only."""
    api = setup
    _import(api, staff_headers(api, "chen"))
    with session_scope() as s:
        service.create_product(s, actor=SETUP, code="PROMO5", name="平台促销券", kind="service_discount",
                               face_fen=500, programme_code="picc_gx", funded_by="platform")
        _, key = create_key(s, actor=Principal(1, "boss", "王敏", "admin"), partner_name="人保之友俱乐部",
                            programme_code="picc_gx", scopes=["issuance:write", "issuance:read", "members:read"])
    make_staff("picc", "insurer", programme_code="picc_gx")
    callers = {"partner": ("/api/v1/partner", {"X-Api-Key": key}), "staff": ("/api/v1/admin", staff_headers(api, "picc"))}
    for who, (base, headers) in callers.items():
        for product in ("PROMO5", "OTHER10"):
            body = {"batch_id": f"{who}-{product}", "product_code": product, "phones": ["13700000001"]}
            resp = api.post(f"{base}/issuances", json=body, headers=headers)
            assert resp.status_code == 404 and resp.json()["error"]["code"] == "PRODUCT_NOT_FOUND", (who, product)
        ok = api.post(f"{base}/issuances", json={"batch_id": f"{who}-1", "product_code": "TPP50",
                                                 "phones": ["13700000001"]}, headers=headers)
        assert ok.status_code == 200 and ok.json()["issued"] == 1, ok.text
    with session_scope() as s:
        assert service.issue_batch(s, actor=SETUP, source="staff", batch_id="clerk-1", product_code="PROMO5",
                                   phones=["13700000001"]).issued == 1  # the platform's staff may give it
    # the member's coupons through the club key: the programme's products only, not the platform's promo
    member = api.get("/api/v1/partner/members/13700000001/coupons", headers={"X-Api-Key": key}).json()
    assert [c["product_code"] for c in member["items"]] == ["TPP50", "TPP50"]  # the code as created (issue 10)
    # each side reads its own batch, not the other's nor the platform's
    api_error(api.get("/api/v1/partner/issuances/staff-1", headers={"X-Api-Key": key}), 404, "ISSUANCE_NOT_FOUND")
    api_error(api.get("/api/v1/admin/issuances/partner-1", headers=callers["staff"][1]), 404, "ISSUANCE_NOT_FOUND")
    api_error(api.get("/api/v1/admin/issuances/clerk-1", headers=callers["staff"][1]), 404, "ISSUANCE_NOT_FOUND")
    assert api.get("/api/v1/admin/issuances/staff-1", headers=callers["staff"][1]).status_code == 200
