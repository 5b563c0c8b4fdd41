"""The user's coupons: listing by status, ownership (someone else's id is "not found"), the use (reveal)
flow, coupons waiting for a phone, reserve / consume / release for non-code coupons, staff views."""

import datetime as dt

import pytest
from sqlmodel import select

from gc_admin.audit.models import AuditLog
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.coupons import service
from gc_admin.db import session_scope
from tests.support import make_user, scalar
from tests.unit.coupons.support import JUMP_APP, STAFF, audit_text, import_codes, issue, setup_catalogue, stock

ALICE, BOB = "13900000001", "13900000002"


def _ids(result, phone):
    return [cid for r in result.rows() if r["phone"] == phone for cid in r.get("coupon_ids", [])]


def _actions(coupon_id):
    with session_scope() as s:
        return [a.action for a in service.coupon_history(s, coupon_id=coupon_id)]


@pytest.fixture
def two_users(any_db):
    setup_catalogue()
    codes = stock("tpp50", 4)
    alice, bob = make_user(ALICE), make_user(BOB)
    codes_batch = issue([ALICE, BOB], per_phone=2)
    flowers = issue([ALICE, BOB], product="flower30", batch_id="b2")
    return alice, bob, codes, codes_batch, flowers


def test_list_and_get_my_coupons(two_users):
    alice, bob, codes, batch, flowers = two_users
    with session_scope() as s:
        mine = service.list_user_coupons(s, user=alice)
        assert sorted(c.id for c in mine) == sorted(_ids(batch, ALICE) + _ids(flowers, ALICE))
        assert {c.status for c in mine} == {"available"}
        avail = service.list_user_coupons(s, user=alice, status="available")
        assert [c.expires_at for c in avail] == sorted(c.expires_at for c in avail)  # soonest first
        one = service.get_user_coupon(s, user=alice, coupon_id=avail[0].id)
        d = one.to_dict()
        assert set(d) == {"id", "product", "status", "issued_at", "expires_at", "use_by", "revealed_at", "used_at"}
        assert d["product"]["code"] in ("tpp50", "flower30")
        # an available coupon past its date is shown as expired, in lists and filters
        later = utcnow() + dt.timedelta(days=400)
        assert {c.status for c in service.list_user_coupons(s, user=alice, now=later)} == {"expired"}
        assert service.list_user_coupons(s, user=alice, status="available", now=later) == []
        with pytest.raises(InvalidInput) as err:
            service.list_user_coupons(s, user=alice, status="mine")
        assert err.value.code == "INVALID_STATUS"
        blob = repr(service.list_user_coupons(s, user=alice)) + repr([c.to_dict() for c in mine])
    assert not any(code in blob for code in codes)


def test_someone_elses_coupon_is_not_found(two_users):
    alice, bob, codes, batch, flowers = two_users
    bobs_code, bobs_flower = _ids(batch, BOB)[0], _ids(flowers, BOB)[0]
    missing = 999_999
    errors = []
    for coupon_id in (bobs_code, missing):
        for call in (
            lambda s, i: service.get_user_coupon(s, user=alice, coupon_id=i),
            lambda s, i: service.use_coupon(s, user=alice, coupon_id=i),
        ):
            with pytest.raises(NotFound) as err:
                with session_scope() as s:
                    call(s, coupon_id)
            errors.append((err.value.status, err.value.code, err.value.message))
    for coupon_id in (bobs_flower, missing):
        with pytest.raises(NotFound) as err:
            with session_scope() as s:
                service.reserve(s, coupon_id=coupon_id, user=alice, ref="order:1")
        errors.append((err.value.status, err.value.code, err.value.message))
    assert set(errors) == {(404, "COUPON_NOT_FOUND", "券不存在")}
    # nothing was revealed or reserved by the attempts
    assert "coupon.revealed" not in audit_text() and "coupon.reserved" not in audit_text()
    assert scalar("SELECT count(*) FROM coupon WHERE status <> 'available'") == 0


def test_use_reveals_once_and_again_the_same_code(two_users):
    alice, bob, codes, batch, flowers = two_users
    cid = _ids(batch, ALICE)[0]
    now = utcnow()
    with session_scope() as s:
        first = service.use_coupon(s, user=alice, coupon_id=cid, now=now)
    assert first.first_reveal and first.code in codes
    assert first.use_by == now + dt.timedelta(days=30)  # the code itself lasts 90 days
    assert first.to_dict()["jump"] == {"app_id": JUMP_APP, "path": "pages/index/index"}
    with session_scope() as s:
        again = service.use_coupon(s, user=alice, coupon_id=cid, now=now + dt.timedelta(days=3))
        view = service.get_user_coupon(s, user=alice, coupon_id=cid)
    assert (again.code, again.use_by, again.first_reveal) == (first.code, first.use_by, False)
    assert view.status == "used" and view.revealed_at == now and view.use_by == first.use_by
    assert _actions(cid) == ["coupon.issued", "coupon.revealed", "coupon.re_revealed"]
    assert first.code not in audit_text()
    # a used code can be opened again even after it expired
    with session_scope() as s:
        late = service.use_coupon(s, user=alice, coupon_id=cid, now=now + dt.timedelta(days=200))
    assert late.code == first.code


def test_use_by_never_passes_the_code_expiry(db):
    setup_catalogue()
    import_codes("tpp50", [("SHORT1", 35)])
    with session_scope() as s:
        service.update_product(s, actor=STAFF, code="tpp50", use_window_days=60)
    user = make_user(ALICE)
    cid = issue([ALICE]).rows()[0]["coupon_ids"][0]
    with session_scope() as s:
        result = service.use_coupon(s, user=user, coupon_id=cid)
        expires = service.get_user_coupon(s, user=user, coupon_id=cid).expires_at
    assert result.use_by == expires


def test_expired_coupons_cannot_be_revealed(two_users):
    alice, bob, codes, batch, flowers = two_users
    cid = _ids(batch, ALICE)[0]
    later = utcnow() + dt.timedelta(days=400)
    with pytest.raises(Conflict) as err:
        with session_scope() as s:
            service.use_coupon(s, user=alice, coupon_id=cid, now=later)
    assert err.value.code == "COUPON_EXPIRED" and err.value.message == "该券已过期，无法使用"
    with session_scope() as s:
        service.run_expiry(s, now=later)
    with pytest.raises(Conflict) as err:
        with session_scope() as s:
            service.use_coupon(s, user=alice, coupon_id=cid)
    assert err.value.code == "COUPON_EXPIRED"
    with pytest.raises(Conflict) as err:
        with session_scope() as s:
            service.use_coupon(s, user=alice, coupon_id=_ids(flowers, ALICE)[0])
    assert err.value.code == "COUPON_NOT_REVEALABLE"


def test_coupons_wait_for_a_phone(any_db):
    setup_catalogue()
    stock("tpp50", 2)
    result = issue([ALICE])
    cid = result.rows()[0]["coupon_ids"][0]
    assert scalar("SELECT count(*) FROM coupon WHERE user_id IS NULL") == 1
    wechat_only = make_user(None, openid="o-abc")
    alice = make_user(ALICE)  # signs in later with the phone
    with session_scope() as s:
        assert service.list_user_coupons(s, user=wechat_only) == []
        assert [c.id for c in service.list_user_coupons(s, user=alice)] == [cid]
        assert service.claim_for_phone(s, user=alice) == 1
    with session_scope() as s:
        assert service.claim_for_phone(s, user=alice) == 0  # idempotent
        assert service.claim_for_phone(s, user=wechat_only) == 0
        assert service.use_coupon(s, user=alice, coupon_id=cid).first_reveal
    assert scalar("SELECT user_id FROM coupon WHERE id = :i", i=cid) == alice.id


def test_reserve_consume_release(two_users):
    alice, bob, codes, batch, flowers = two_users
    cid = _ids(flowers, ALICE)[0]
    with session_scope() as s:
        assert service.reserve(s, coupon_id=cid, user=alice, ref="order:1").status == "reserved"
        assert service.reserve(s, coupon_id=cid, user=alice, ref="order:1").status == "reserved"  # same ref: no-op
    with pytest.raises(Conflict) as err:
        with session_scope() as s:
            service.reserve(s, coupon_id=cid, user=alice, ref="order:2")
    assert err.value.code == "COUPON_RESERVED"
    with pytest.raises(Conflict) as err:
        with session_scope() as s:
            service.consume(s, coupon_id=cid, ref="order:2")
    assert err.value.code == "COUPON_NOT_RESERVED"
    with session_scope() as s:
        assert service.release(s, coupon_id=cid, ref="order:1").status == "available"
        assert service.release(s, coupon_id=cid, ref="order:1").status == "available"  # again: nothing happens
        assert service.reserve(s, coupon_id=cid, user=alice, ref="claim:9").status == "reserved"
        assert service.consume(s, coupon_id=cid, ref="claim:9").status == "used"
        assert service.consume(s, coupon_id=cid, ref="claim:9").status == "used"  # double consume: once
    for call, code in (
        (lambda s: service.release(s, coupon_id=cid, ref="claim:9"), "COUPON_USED"),
        (lambda s: service.reserve(s, coupon_id=cid, user=alice, ref="order:3"), "COUPON_USED"),
        (lambda s: service.reserve(s, coupon_id=_ids(batch, ALICE)[0], user=alice, ref="order:3"),
         "COUPON_NOT_RESERVABLE"),
        (lambda s: service.consume(s, coupon_id=_ids(batch, ALICE)[0], ref="order:3"), "COUPON_NOT_RESERVABLE"),
    ):
        with pytest.raises(Conflict) as err:
            with session_scope() as s:
                call(s)
        assert err.value.code == code
    with pytest.raises(NotFound) as err:
        with session_scope() as s:
            service.consume(s, coupon_id=424242, ref="order:1")
    assert err.value.code == "COUPON_NOT_FOUND"
    with pytest.raises(InvalidInput) as err:
        with session_scope() as s:
            service.reserve(s, coupon_id=cid, user=alice, ref=" ")
    assert err.value.code == "INVALID_REF"
    assert _actions(cid) == ["coupon.issued", "coupon.reserved", "coupon.released", "coupon.reserved",
                             "coupon.consumed"]
    with session_scope() as s:
        summaries = [a.summary for a in service.coupon_history(s, coupon_id=cid)]
    # the clerk reads the business, not the internal reference
    assert "券被订单 #1锁定" in summaries and "订单 #1释放了券" in summaries and "券已用于返现申请 #9" in summaries
    assert not any("order:" in t or "claim:" in t for t in summaries)


def test_expired_non_code_coupon_cannot_be_reserved(two_users):
    alice, bob, codes, batch, flowers = two_users
    cid = _ids(flowers, BOB)[0]
    with pytest.raises(Conflict) as err:
        with session_scope() as s:
            service.reserve(s, coupon_id=cid, user=bob, ref="order:1", now=utcnow() + dt.timedelta(days=400))
    assert err.value.code == "COUPON_EXPIRED"


def test_staff_views_are_masked(two_users):
    alice, bob, codes, batch, flowers = two_users
    cid = _ids(batch, ALICE)[0]
    with session_scope() as s:
        service.use_coupon(s, user=alice, coupon_id=cid)
    with session_scope() as s:
        rows = service.user_coupons_for_staff(s, phone="139 0000 0001")
        history = service.coupon_history(s, coupon_id=cid)
        with pytest.raises(InvalidInput) as err:
            service.user_coupons_for_staff(s, phone="123")
        assert err.value.code == "INVALID_PHONE"
        with pytest.raises(NotFound) as err:
            service.coupon_history(s, coupon_id=987654)
        assert err.value.code == "COUPON_NOT_FOUND"
    assert len(rows) == 3 and {r.phone_masked for r in rows} == {"139****0001"}
    code_rows = [r for r in rows if r.kind == "redemption_code"]
    assert all("****" in r.code_masked for r in code_rows) and {r.batch_id for r in code_rows} == {"b1"}
    assert [r.status for r in rows if r.id == cid] == ["used"]
    blob = repr(rows) + repr([(h.summary, h.before, h.after) for h in history])
    assert not any(code in blob for code in codes) and ALICE not in blob
    assert [h.action for h in history] == ["coupon.issued", "coupon.revealed"]


def test_audit_rows_name_who_did_it(two_users):
    alice, bob, codes, batch, flowers = two_users
    with session_scope() as s:
        service.use_coupon(s, user=alice, coupon_id=_ids(batch, ALICE)[0])
    with session_scope() as s:
        row = s.exec(select(AuditLog).where(AuditLog.action == "coupon.revealed")).one()
    assert (row.actor_type, row.actor_id, row.actor_name, row.target_type) == ("user", str(alice.id), "139****0001",
                                                                               "coupon")


def test_the_coupons_json_is_the_views_json_byte_for_byte(two_users):
    """我的礼券 answers ``user_coupons_json``'s text (built without the views): for every status filter, past
    dates, a coupon still waiting for the phone, revealed / reserved / used ones and a product name that
    needs escaping, it is exactly ``json.dumps`` of the views' ``to_dict`` — the documented shape."""
    import json

    from sqlalchemy import text

    from gc_admin.coupons.wallet.service import user_coupons_json
    from gc_admin.db import read_connection

    alice, bob, codes, batch, flowers = two_users
    waiting = issue([ALICE], product="flower30", batch_id="b3")  # issued before the phone is known below
    with session_scope() as s:
        service.use_coupon(s, user=alice, coupon_id=_ids(batch, ALICE)[0])  # revealed, use_by, used
        service.reserve(s, coupon_id=_ids(flowers, ALICE)[0], user=alice, ref="order:7")
        service.reserve(s, coupon_id=_ids(waiting, ALICE)[0], user=alice, ref="claim:8")
        service.consume(s, coupon_id=_ids(waiting, ALICE)[0], ref="claim:8")
    with session_scope() as s:
        s.connection().execute(text("UPDATE product SET name = :n WHERE code = 'flower30'"),
                               {"n": '鲜花 "立减" \\ 30 元 🌹\n</script>'})
        s.connection().execute(text("UPDATE coupon SET user_id = NULL WHERE id = :i"),  # waits for the phone
                               {"i": _ids(batch, ALICE)[1]})
    later = utcnow() + dt.timedelta(days=400)
    seen = 0
    for now in (None, later):
        for status in (None, "available", "reserved", "used", "expired", "revoked"):
            with session_scope() as s:
                views = service.list_user_coupons(s, user=alice, status=status, now=now)
                expected = json.dumps({"items": [v.to_dict() for v in views]}, ensure_ascii=False,
                                      separators=(",", ":"))
            with read_connection() as conn:
                got = user_coupons_json(conn, user_id=alice.id, phone=alice.phone, status=status, now=now)
            assert got == expected, (status, now)
            assert json.loads(got) == json.loads(expected)
            seen += len(views)
    assert seen >= 8  # the filters really listed coupons
    with read_connection() as conn:
        everything = json.loads(user_coupons_json(conn, user_id=alice.id, phone=alice.phone))["items"]
    assert {c["status"] for c in everything} == {"available", "reserved", "used"}
    assert any(c["use_by"] and c["revealed_at"] for c in everything)
    assert not any(code in repr(everything) for code in codes)


def test_reserve_first_takes_the_users_first_usable_coupon_of_the_kind_in_one_statement(two_users):
    from gc_admin.coupons.wallet.service import reserve_first

    alice, bob, codes, batch, flowers = two_users
    (mine,), (bobs,) = _ids(flowers, ALICE), _ids(flowers, BOB)
    later = utcnow() + dt.timedelta(days=400)
    with session_scope() as s:
        assert reserve_first(s, user=alice, ref="order:7", kind="redemption_code") is None  # codes: never
        assert reserve_first(s, user=alice, ref="order:7", kind="service_discount", now=later) is None  # expired
        got = reserve_first(s, user=alice, ref="order:7", kind="service_discount")
        assert (got.coupon_id, got.face_fen) == (mine, 3000)
        assert reserve_first(s, user=alice, ref="order:8", kind="service_discount") is None  # Bob's is not hers
        assert reserve_first(s, user=alice, ref="order:8", kind="service_discount", category="fuel") is None
    assert scalar("SELECT status || ' ' || reserved_for FROM coupon WHERE id = :i", i=mine) == "reserved order:7"
    assert scalar("SELECT status FROM coupon WHERE id = :i", i=bobs) == "available"
    assert _actions(mine)[-1] == "coupon.reserved"  # written by default (write_audit=True)
