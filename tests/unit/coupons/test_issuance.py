"""Batch issuance: per-row results, earliest expiry first, all-or-nothing per row, idempotency by batch id,
partner scoping, the preview, non-code products, and coupons waiting for unregistered phones."""

import datetime as dt

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.core.phone import normalize_phone
from gc_admin.coupons import service
from gc_admin.db import session_scope
from tests.support import SETUP, make_user, scalar
from tests.unit.coupons.support import PARTNER, audit_text, import_codes, issue, setup_catalogue, stock


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789+-() \t1386", max_size=16), min_size=1, max_size=20))
def test_vectorised_phone_check_agrees_with_normalize_phone(phones):
    frame = service.classify_phones(phones)
    assert frame["phone"].to_list() == [normalize_phone(p) for p in phones]
    seen = set()
    for phone, status in zip(frame["phone"], frame["status"]):
        assert status == ("invalid_phone" if phone is None else "duplicate" if phone in seen else "ok")
        seen.add(phone)


def _rows(result):
    return [(r["row"], r["phone"], r["status"], r.get("reason")) for r in result.rows()]


def test_rows_and_coupons(any_db):
    setup_catalogue()
    import_codes("tpp50", [("LATE", 120), ("EARLY", 40), ("MID", 60), ("NEAR", 20), ("SPARE", 200)])
    user = make_user("13900000002")
    result = issue(["13900000001", " 139-0000-0002", "12345", "13900000001", "+86 139 0000 0003", "13900000004",
                    "13900000005"])
    assert _rows(result) == [
        (1, "13900000001", "issued", None),
        (2, "13900000002", "issued", None),
        (3, "12345", "invalid_phone", "手机号格式不正确"),
        (4, "13900000001", "duplicate", "与第 1 行手机号重复"),
        (5, "13900000003", "issued", None),
        (6, "13900000004", "issued", None),
        (7, "13900000005", "no_stock", "库存不足"),  # NEAR has under 30 days left: never issued
    ]
    assert (result.requested, result.issued, result.failed, result.coupons, result.replayed) == (7, 4, 3, 4, False)
    d = result.to_dict()
    assert d["batch_id"] == "b1" and d["rows"][0]["coupon_ids"] == [result.rows()[0]["coupon_ids"][0]]
    with session_scope() as s:
        got = s.execute(sa.text(
            "SELECT c.phone, sc.code, c.user_id, c.status, c.face_fen, c.cost_fen, c.source, "
            "c.expires_at = sc.expires_at, c.issuance_id FROM coupon c JOIN stock_code sc ON sc.id = c.stock_code_id "
            "ORDER BY c.id")).all()
    # earliest expiry first, in row order
    assert [(g[0], g[1]) for g in got] == [("13900000001", "EARLY"), ("13900000002", "MID"), ("13900000003", "LATE"),
                                           ("13900000004", "SPARE")]
    assert [g[2] for g in got] == [None, user.id, None, None]  # a registered phone's coupon is theirs at once
    assert all(g[3:7] == ("available", 5000, 4500, "staff") and g[7] for g in got)
    assert {g[8] for g in got} == {result.issuance_id}
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'issued'") == 4
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 0
    assert scalar("SELECT count(*) FROM stock_code WHERE code = 'NEAR' AND state = 'discarded'") == 1  # 弃票 at import
    assert scalar("SELECT count(*) FROM issuance_row WHERE issuance_id = :i", i=result.issuance_id) == 7


def test_all_or_nothing_per_row(any_db):
    setup_catalogue()
    stock("tpp50", 7)
    result = issue(["13900000001", "13900000002", "13900000003"], per_phone=3)
    statuses = [(r["status"], len(r.get("coupon_ids", []))) for r in result.rows()]
    assert statuses == [("issued", 3), ("issued", 3), ("no_stock", 0)]
    assert result.coupons == 6
    assert scalar("SELECT count(*) FROM coupon") == 6
    # the seventh code could not complete a row: it is back in stock
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 1
    assert scalar("SELECT count(DISTINCT stock_code_id) FROM coupon") == 6


def test_same_batch_id_is_idempotent(any_db):
    setup_catalogue()
    stock("tpp50", 10)
    phones = ["13900000001", "13900000002", "bad"]
    first = issue(phones, batch_id="PICC-2026-11-001")
    again = issue(phones, batch_id="PICC-2026-11-001")
    assert again.replayed and not first.replayed
    assert again.issuance_id == first.issuance_id and again.rows() == first.rows()
    assert (again.issued, again.failed, again.coupons) == (2, 1, 2)
    assert scalar("SELECT count(*) FROM coupon") == 2
    assert audit_text().count("coupon.issued") == 1
    with pytest.raises(Conflict) as err:
        issue(phones + ["13900000009"], batch_id="PICC-2026-11-001")
    assert err.value.code == "BATCH_ID_REUSED"
    with pytest.raises(Conflict) as err:
        issue(phones, batch_id="PICC-2026-11-001", per_phone=2)
    assert err.value.code == "BATCH_ID_REUSED"
    # the key is (source, programme, batch id): a partner's batch of the same name is its own
    partner = issue(phones, batch_id="PICC-2026-11-001", source="partner", programme_code="picc_gx", actor=PARTNER)
    assert not partner.replayed and partner.issuance_id != first.issuance_id
    with session_scope() as s:
        got = service.get_issuance(s, source="partner", batch_id="PICC-2026-11-001", programme_code="picc_gx")
        assert got.rows() == partner.rows()
        with pytest.raises(NotFound) as err:
            service.get_issuance(s, source="partner", batch_id="PICC-2026-11-001", programme_code="other")
        assert err.value.code == "ISSUANCE_NOT_FOUND"
        states = service.issuance_coupon_states(s, issuance_id=first.issuance_id)
        assert sorted(states.values()) == ["available", "available"]
        batches, total = service.list_issuances(s)
        assert total == 2 and batches[0].source == "partner"


def test_partner_sees_only_its_programme(db):
    setup_catalogue()
    stock("tpp5", 3)
    with pytest.raises(NotFound) as err:
        issue(["13900000001"], product="tpp5", source="partner", programme_code="picc_gx", actor=PARTNER)
    assert err.value.code == "PRODUCT_NOT_FOUND"
    assert err.value.message == "券种不存在"
    with pytest.raises(NotFound) as err:
        with session_scope() as s:
            service.preview_issuance(s, product_code="tpp5", phones=["13900000001"], programme_code="picc_gx")
    assert err.value.code == "PRODUCT_NOT_FOUND"


def test_a_programmes_issuers_get_its_insurer_funded_products_and_own_batches_only(any_db):
    """One rule for an insurer's staff (source staff) and its partner keys: the programme's insurer-funded
    products, batch ids in the programme's own key space, and only the programme's batches listed."""
    setup_catalogue()
    with session_scope() as s:
        service.create_product(s, actor=PARTNER, code="promo5", name="平台促销", kind="service_discount",
                               face_fen=500, programme_code="picc_gx", funded_by="platform")
    for source in ("staff", "partner"):
        with pytest.raises(NotFound) as err:
            issue(["13900000001"], product="promo5", source=source, programme_code="picc_gx", actor=PARTNER)
        assert err.value.code == "PRODUCT_NOT_FOUND"
    platform = issue(["13900000001"], batch_id="b1", product="flower30")
    mine = issue(["13900000001"], batch_id="b1", product="flower30", programme_code="picc_gx")
    club = issue(["13900000002"], batch_id="b1", product="flower30", source="partner", programme_code="picc_gx",
                 actor=PARTNER)
    assert not mine.replayed and mine.issuance_id not in (platform.issuance_id, club.issuance_id)
    with session_scope() as s:
        listed, total = service.list_issuances(s, programme_code="picc_gx")
        assert total == 2 and {b.issuance_id for b in listed} == {mine.issuance_id, club.issuance_id}
        assert service.list_issuances(s, programme_code="other")[1] == 0
        assert service.list_issuances(s)[1] == 3
        assert service.get_issuance(s, source="staff", batch_id="b1", programme_code="picc_gx").issuance_id == (
            mine.issuance_id)
        assert [p.code for p in service.programme_products(s, programme_code="picc_gx")] == [
            "flower30", "fuel50", "tpp50"]


def test_non_code_products_need_no_stock(any_db):
    setup_catalogue()
    now = utcnow()
    result = issue(["13900000001", "13900000002"], product="flower30", per_phone=2)
    assert (result.issued, result.coupons) == (2, 4)
    expected = ((now.astimezone(SHANGHAI) + dt.timedelta(days=90)).date())
    with session_scope() as s:
        rows = s.execute(sa.text("SELECT stock_code_id, face_fen, expires_at FROM coupon")).all()
        views = service.user_coupons_for_staff(s, phone="13900000001")
    assert all(r[0] is None and r[1] == 3000 for r in rows)
    assert {v.expires_at.astimezone(SHANGHAI).date() for v in views} == {expected}
    assert {v.expires_at.astimezone(SHANGHAI).strftime("%H:%M:%S") for v in views} == {"23:59:59"}


def test_preview_has_no_side_effects(any_db):
    setup_catalogue()
    stock("tpp50", 5)
    import_codes("tpp50", [("SOON", 45)])
    with session_scope() as s:  # SOON is in stock, but now under the minimum validity: not issuable
        service.update_product(s, actor=PARTNER, code="tpp50", min_validity_days=50)
    phones = ["13900000001", "13900000002", "x", "13900000001", "13900000003"]
    audit_before = scalar("SELECT count(*) FROM audit_log")
    with session_scope() as s:
        p = service.preview_issuance(s, product_code="tpp50", phones=phones, per_phone=2)
    assert (p.requested, p.valid, p.invalid_phone, p.duplicate) == (5, 3, 1, 1)
    assert (p.stock_available, p.would_issue, p.coupons, p.no_stock, p.stock_after) == (5, 2, 4, 1, 1)
    assert scalar("SELECT count(*) FROM audit_log") == audit_before
    assert scalar("SELECT count(*) FROM issuance_batch") == 0
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'in_stock'") == 6
    with session_scope() as s:
        p = service.preview_issuance(s, product_code="flower30", phones=phones)
    assert p.stock_available is None and p.would_issue == 3
    # and the real thing matches the preview
    result = issue(phones, per_phone=2)
    assert (result.issued, result.coupons) == (2, 4)


@pytest.mark.parametrize("kw, code", [
    ({"phones": []}, "NO_PHONES"),
    ({"per_phone": 0}, "INVALID_PER_PHONE"),
    ({"per_phone": 21}, "INVALID_PER_PHONE"),
    ({"batch_id": ""}, "INVALID_BATCH_ID"),
    ({"batch_id": "有中文"}, "INVALID_BATCH_ID"),
    ({"source": "robot"}, "INVALID_SOURCE"),
])
def test_request_validation(db, kw, code):
    setup_catalogue()
    args = {"phones": ["13900000001"], "batch_id": "b1", **kw}
    with pytest.raises(InvalidInput) as err:
        issue(**args)
    assert err.value.code == code


def test_many_phones_in_one_batch(any_db):
    setup_catalogue()
    stock("tpp50", 5_000)
    make_user("13900000010")
    phones = [f"1390000{i:04d}" for i in range(6_000)]
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with session_scope() as s:
        engine = s.get_bind()
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            result = service.issue_batch(s, actor=PARTNER, source="staff", batch_id="big", product_code="tpp50",
                                         phones=phones)
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
    assert (result.issued, result.failed) == (5_000, 1_000)
    assert len(statements) < 30  # set-based: no statement per row
    assert scalar("SELECT count(*) FROM coupon") == 5_000
    assert scalar("SELECT count(DISTINCT stock_code_id) FROM coupon") == 5_000
    assert scalar("SELECT count(*) FROM coupon WHERE user_id IS NOT NULL") == 1
    assert scalar("SELECT count(*) FROM stock_code WHERE state = 'issued'") == 5_000
    audit = audit_text()
    assert "13900000010" not in audit and "CTPP50" not in audit.replace("CTPP50****", "")


def test_coupons_waiting_for_an_unregistered_phone_are_found_by_the_whole_number(any_db):
    """What the 用户 page finds for a number nobody has registered (coupons.wallet.service.waiting_phone)."""
    from gc_admin.coupons.wallet import service as wallet

    setup_catalogue()
    issue(["13900000077", "13900000078"], batch_id="w1", product="flower30")
    issue(["13900000077"], batch_id="w2", product="fuel50", now=utcnow() - dt.timedelta(days=400))  # expired by now
    make_user("13900000078")
    with session_scope() as s:
        found = wallet.waiting_phone(s, phone="+86 139-0000-0077")
        assert found == wallet.WaitingPhone("13900000077", 2, 1)
        assert wallet.waiting_phone(s, phone="13900000078") is None  # registered: a user row, not a waiting entry
        assert wallet.waiting_phone(s, phone="1390000007") is None  # not a whole number
        assert wallet.waiting_phone(s, phone="13900000099") is None  # nothing waits for it
        assert len(wallet.phone_coupons(s, phone="13900000077")) == 2


def test_the_preview_lists_at_most_fifty_bad_lines_and_counts_the_rest(db):
    with session_scope() as s:
        service.create_product(s, actor=SETUP, code="wash20", name="洗车返现 20 元", kind="cashback", face_fen=2000,
                               category="car_wash")
        pv = service.preview_issuance(s, product_code="wash20", phones=["13800000001"] + [f"bad{i}" for i in range(70)])
    assert pv.invalid_phone == 70 and len(pv.problems) == 50
    assert pv.problems[0] == (2, "bad0", "invalid_phone", "手机号格式不正确")
