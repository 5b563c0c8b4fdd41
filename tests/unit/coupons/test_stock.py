"""Stock dashboard support: the summary (product × state × expiry bucket, face and cost), the masked code
list, the audited staff reveal, and the daily expiry job."""

import datetime as dt

import pytest

from gc_admin.core.clock import utcnow
from gc_admin.core.errors import InvalidInput, NotFound
from gc_admin.coupons import service
from gc_admin.db import session_scope
from tests.support import make_user, rows, scalar
from tests.unit.coupons.support import STAFF, audit_text, import_codes, issue, setup_catalogue

ALICE = "13900000001"


def _summary(**kw):
    with session_scope() as s:
        return {(r.product_code, r.state, r.bucket): (r.count, r.face_fen, r.cost_fen)
                for r in service.stock_summary(s, **kw)}


@pytest.fixture
def stocked(any_db):
    setup_catalogue()
    import_codes("tpp50", [("A40", 40), ("A45", 45), ("A50", 50), ("A70", 70), ("A80", 80), ("A10", 10)])
    import_codes("tpp5", [("B90", 90)])
    user = make_user(ALICE)
    result = issue([ALICE, "13900000002", "13900000003"])  # takes A40, A45, A50
    return user, result


def test_summary_by_product_state_and_bucket(stocked):
    user, result = stocked
    ids = [r["coupon_ids"][0] for r in result.rows()]
    with session_scope() as s:
        service.use_coupon(s, user=user, coupon_id=ids[0])  # A40 revealed = used
    assert _summary() == {
        ("tpp50", "discarded", "lt30"): (1, 5000, 4500),  # A10, discarded at import
        ("tpp50", "used", "30to60"): (1, 5000, 4500),  # A40
        ("tpp50", "issued", "30to60"): (2, 10000, 9000),  # A45, A50
        ("tpp50", "in_stock", "gt60"): (2, 10000, 9000),  # A70, A80
        ("tpp5", "in_stock", "gt60"): (1, 500, 450),
    }
    assert set(_summary(product_code="tpp5")) == {("tpp5", "in_stock", "gt60")}
    # 40 days on, issued-but-unrevealed coupons past their date count as expired even before the job runs
    later = _summary(now=utcnow() + dt.timedelta(days=47))
    assert later[("tpp50", "expired", "lt30")] == (1, 5000, 4500)  # A45
    assert later[("tpp50", "issued", "lt30")] == (1, 5000, 4500)  # A50


def test_code_list_is_masked_filtered_and_paged(stocked):
    with session_scope() as s:
        page = service.list_stock_codes(s, product_code="tpp50", limit=4)
        assert page.total == 6 and len(page.rows) == 4
        assert all("*" in r.code_masked for r in page.rows)
        assert [r.state for r in page.rows] == ["discarded", "issued", "issued", "issued"]  # by expiry
        assert page.rows[1].phone_masked == "139****0001" and page.rows[1].coupon_id is not None
        assert service.list_stock_codes(s, state="in_stock").total == 3
        assert service.list_stock_codes(s, product_code="tpp50", state="in_stock", offset=1).rows[0].state == "in_stock"
        found = service.list_stock_codes(s, code="A70")
        assert found.total == 1 and found.rows[0].code_masked != "A70"
        soon = service.list_stock_codes(s, expires_before=utcnow() + dt.timedelta(days=46))
        assert soon.total == 3
        with pytest.raises(InvalidInput) as err:
            service.list_stock_codes(s, state="lost")
        assert err.value.code == "INVALID_STATE"
        blob = repr(service.list_stock_codes(s, limit=200))
    assert not any(c in blob for c in ("A40", "A45", "A50", "A70", "A80", "A10", "B90"))


def test_stock_lists_page_with_the_shared_paginate(stocked):
    """The import history and the code list are :class:`gc_admin.db.Page`s built by ``db.paginate`` (one
    count, one bounded page), as every list is; the batch list pages the same way."""
    from gc_admin.db import Page

    with session_scope() as s:
        imports, codes = service.list_imports(s, limit=1), service.list_stock_codes(s, limit=10**6, offset=-5)
        batches, total = service.list_issuances(s, limit=0)
    assert type(imports) is Page and (imports.total, len(imports.rows)) == (2, 1)
    assert type(codes) is Page and codes.total == len(codes.rows) == 7  # a huge limit and a negative offset are bounded
    assert total == 1 and len(batches) == 1  # limit 0 still returns a row: at least one per page


def test_staff_reveal_is_audited(stocked):
    with session_scope() as s:
        row = service.list_stock_codes(s, code="A70").rows[0]
        assert service.reveal_stock_code(s, actor=STAFF, stock_code_id=row.id, reason="用户来电") == "A70"
        with pytest.raises(NotFound) as err:
            service.reveal_stock_code(s, actor=STAFF, stock_code_id=10**9)
        assert err.value.code == "CODE_NOT_FOUND"
    audit = audit_text()
    assert "stock.code_revealed" in audit and "用户来电" in audit and "A70" not in audit


def test_run_expiry_discards_and_expires_once(stocked):
    user, result = stocked
    ids = [r["coupon_ids"][0] for r in result.rows()]
    with session_scope() as s:
        service.use_coupon(s, user=user, coupon_id=ids[0])  # revealed: not expired by the job
    flower = issue([ALICE], product="flower30", batch_id="f1").rows()[0]["coupon_ids"][0]
    with session_scope() as s:
        service.reserve(s, coupon_id=flower, user=user, ref="order:1")  # reserved: left to its order
    day46 = utcnow() + dt.timedelta(days=46)
    with session_scope() as s:
        res = service.run_expiry(s, now=day46)
    # in stock: A70 (24 d left) and A80 (34 d left) vs 30 d minimum -> A70 discarded; tpp5's B90 fine
    # coupons: A45 past its date -> expired; A40 used; A50 still valid
    assert (res.discarded, res.discarded_face_fen, res.discarded_cost_fen) == (1, 5000, 4500)
    assert (res.expired_coupons, res.expired_cost_fen) == (1, 4500)
    assert [p["product_code"] for p in res.by_product] == ["tpp50"]
    states = dict(rows("SELECT code, state FROM stock_code"))
    assert states == {"A10": "discarded", "A40": "issued", "A45": "expired", "A50": "issued", "A70": "discarded",
                      "A80": "in_stock", "B90": "in_stock"}
    assert dict(rows("SELECT id, status FROM coupon")) == {ids[0]: "used", ids[1]: "expired",
                                                                   ids[2]: "available", flower: "reserved"}
    with session_scope() as s:
        again = service.run_expiry(s, now=day46)
    assert (again.discarded, again.expired_coupons, again.by_product) == (0, 0, [])
    audit = audit_text()
    assert audit.count("stock.discarded") == 1 and audit.count("coupon.expired") == 1 and "¥45.00" in audit
    assert "A70" not in audit and "A45" not in audit
    with session_scope() as s:
        summary = {(r.state, r.bucket): r.count for r in service.stock_summary(s, product_code="tpp50", now=day46)}
    assert summary[("expired", "lt30")] == 1 and summary[("discarded", "lt30")] == 2


def test_expiry_of_non_code_coupons(db):
    setup_catalogue()
    user = make_user(ALICE)
    issue([ALICE], product="fuel50")
    with session_scope() as s:
        res = service.run_expiry(s, now=utcnow() + dt.timedelta(days=100))
    assert (res.expired_coupons, res.expired_cost_fen, res.discarded) == (1, 0, 0)
    with session_scope() as s:
        assert [c.status for c in service.list_user_coupons(s, user=user)] == ["expired"]
    assert scalar("SELECT count(*) FROM coupon WHERE status = 'expired'") == 1
