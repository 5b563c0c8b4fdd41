"""Races on SQLite and PostgreSQL, made real with threads released together by a barrier (each its own unit of work):
issuing against scarce stock, two batches for the same stock, the same batch id twice, and many
first reveals of one coupon. The database decides every race; these tests check it decided right."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa

from gc_admin.coupons import service
from gc_admin.db import session_scope
from tests.support import make_user, race, scalar, staff_headers, statuses
from tests.unit.coupons.support import STAFF, issue, setup_catalogue, stock

N = 8  # threads released at once in a race


def _no_double_assignment(expected_coupons: int) -> None:
    with session_scope() as s:
        coupons, distinct_codes, codeless = s.execute(sa.text(
            "SELECT count(*), count(DISTINCT stock_code_id), count(*) - count(stock_code_id) FROM coupon")).one()
        issued_codes = s.execute(sa.text("SELECT count(*) FROM stock_code WHERE state = 'issued'")).scalar_one()
        orphans = s.execute(sa.text(
            "SELECT count(*) FROM stock_code sc WHERE sc.state = 'issued' "
            "AND NOT EXISTS (SELECT 1 FROM coupon c WHERE c.stock_code_id = sc.id)")).scalar_one()
    assert coupons == distinct_codes == issued_codes == expected_coupons
    assert codeless == 0 and orphans == 0


def test_50_single_phone_issuances_against_20_codes(any_db):
    setup_catalogue()
    stock("tpp50", 20)

    def work(i: int) -> str:
        with session_scope() as s:
            r = service.issue_batch(s, actor=STAFF, source="staff", batch_id=f"one-{i}", product_code="tpp50",
                                    phones=[f"1390000{i:04d}"])
        return r.rows()[0]["status"]

    results = race(50, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Counter(results) == {"issued": 20, "no_stock": 30}
    _no_double_assignment(20)
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 0


def test_two_batches_racing_for_the_same_stock(any_db):
    setup_catalogue()
    stock("tpp50", 100)

    def work(i: int):
        phones = [f"13{i + 5}{j:08d}" for j in range(80)]
        with session_scope() as s:
            return service.issue_batch(s, actor=STAFF, source="staff", batch_id=f"big-{i}", product_code="tpp50",
                                       phones=phones)

    results = race(2, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.coupons for r in results) == 100
    assert sum(r.issued for r in results) == 100 and sum(r.failed for r in results) == 60
    _no_double_assignment(100)
    for r in results:  # each batch's rows agree with what it created
        ids = [i for row in r.rows() for i in row.get("coupon_ids", [])]
        assert len(ids) == r.coupons == scalar("SELECT count(*) FROM coupon WHERE issuance_id = :b", b=r.issuance_id)


def test_two_batches_of_three_per_phone_racing(any_db):
    setup_catalogue()
    stock("tpp50", 50)

    def work(i: int):
        with session_scope() as s:
            return service.issue_batch(s, actor=STAFF, source="staff", batch_id=f"n3-{i}", product_code="tpp50",
                                       phones=[f"13{i + 5}{j:08d}" for j in range(12)], per_phone=3)

    results = race(2, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    for r in results:
        assert all(len(row.get("coupon_ids", [])) in (0, 3) for row in r.rows())  # never a partial row
    total = sum(r.coupons for r in results)
    assert total <= 50 and total >= 48 - 3  # every code that could complete a row was used
    _no_double_assignment(total)
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 50 - total


def test_same_batch_id_racing_issues_once(any_db):
    setup_catalogue()
    stock("tpp50", 30)
    phones = [f"1390000{j:04d}" for j in range(10)]

    def work(i: int):
        with session_scope() as s:
            return service.issue_batch(s, actor=STAFF, source="partner", batch_id="PICC-RETRY-1", product_code="tpp50",
                                       phones=phones, programme_code="picc_gx")

    results = race(8, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(not r.replayed for r in results) == 1
    assert {r.issuance_id for r in results} == {results[0].issuance_id}
    assert all(r.rows() == results[0].rows() and r.issued == 10 for r in results)
    _no_double_assignment(10)
    assert scalar("SELECT count(*) FROM issuance_batch") == 1
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'coupon.issued'") == 1


def test_20_concurrent_reveals_of_one_coupon(any_db):
    setup_catalogue()
    stock("tpp50", 3)
    user = make_user("13900000001")
    cid = issue(["13900000001"]).rows()[0]["coupon_ids"][0]

    def work(i: int):
        with session_scope() as s:
            return service.use_coupon(s, user=user, coupon_id=cid)

    results = race(20, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({r.code for r in results}) == 1 and len({r.use_by for r in results}) == 1
    assert sum(r.first_reveal for r in results) == 1
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'coupon.revealed'") == 1
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'coupon.re_revealed'") == 19
    assert scalar("SELECT count(*) FROM coupon WHERE status = 'used' AND revealed_at IS NOT NULL") == 1


def test_concurrent_consume_pays_out_once(any_db):
    setup_catalogue()
    user = make_user("13900000001")
    cid = issue(["13900000001"], product="fuel50").rows()[0]["coupon_ids"][0]
    with session_scope() as s:
        service.reserve(s, coupon_id=cid, user=user, ref="claim:1")

    def work(i: int):
        with session_scope() as s:
            return service.consume(s, coupon_id=cid, ref="claim:1").status

    results = race(10, work)
    assert results == ["used"] * 10
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'coupon.consumed'") == 1


def test_codes_are_claimed_by_one_statement():
    """Batch issuance and purchase reservations take codes out of stock through the one claim
    (``coupons.stock.service.claim_codes``): its SKIP LOCKED statement is written once, so a fix to
    how codes are claimed cannot miss a copy. (The races above and in orders/test_concurrency prove
    the claim itself on SQLite and PostgreSQL.)"""
    import ast
    import pathlib

    import gc_admin

    root = pathlib.Path(gc_admin.__file__).parent
    claims = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body
                and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        claims += [path.relative_to(root).as_posix() for n in ast.walk(tree)
                   if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
                   and "SKIP LOCKED" in n.value and "stock_code" in n.value]
    assert claims == ["coupons/stock/service.py"]


# --- concurrent twins: one product per code ------------------------------------------------------------

def test_concurrent_product_creations_over_http_create_one(any_db, api, make_staff) -> None:
    make_staff("mgr", "manager", name="经理")
    body = {"code": "flower30", "name": "鲜花立减30元", "kind": "service_discount", "face_fen": 3000}
    headers = staff_headers(api, "mgr")
    answers = race(N, lambda i: api.post("/api/v1/admin/products", json=body, headers=headers))
    assert statuses(answers) == {201: 1, (409, "PRODUCT_EXISTS"): N - 1}, [a.text for a in answers]
    assert scalar("SELECT count(*) FROM product") == 1
    assert scalar("SELECT count(*) FROM audit_log WHERE action = 'product.created'") == 1
