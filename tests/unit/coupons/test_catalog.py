"""Programmes and coupon products (券种): validation, update rules, listing, audit."""

import pytest
from sqlmodel import select

from gc_admin.audit.models import AuditLog
from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.coupons import service
from gc_admin.db import session_scope
from tests.unit.coupons.support import JUMP_APP, STAFF, setup_catalogue


def _create(**kw):
    args = {"code": "p1", "name": "测试券", "kind": "service_discount", "face_fen": 1000, **kw}
    with session_scope() as s:
        return service.create_product(s, actor=STAFF, **args)


def test_create_and_read_back(any_db):
    setup_catalogue()
    with session_scope() as s:
        p = service.get_product_by_code(s, "TPP50 ")
        assert (p.kind, p.face_fen, p.cost_fen, p.use_window_days, p.min_validity_days) == (
            "redemption_code", 5000, 4500, 30, 30)
        d = service.product_dict(p)
        assert d["jump"] == {"app_id": JUMP_APP, "path": "pages/index/index"}
        assert d["programme"] == "picc_gx" and d["on_sale"] is False and d["price_fen"] is None
        assert [x.code for x in service.list_products(s, kind="redemption_code")] == ["tpp5", "tpp50"]
        assert [x.code for x in service.list_products(s, programme_code="other")] == ["tpp5"]
        assert service.get_by_code is service.get_product_by_code
        actions = [a.action for a in s.exec(select(AuditLog)).all()]
    assert actions.count("product.created") == 4 and actions.count("programme.created") == 2


@pytest.mark.parametrize("kw, code", [
    ({"code": "A"}, "INVALID_PRODUCT_CODE"),
    ({"code": "有中文"}, "INVALID_PRODUCT_CODE"),
    ({"name": ""}, "INVALID_PRODUCT"),
    ({"kind": "voucher"}, "INVALID_KIND"),
    ({"face_fen": 0}, "INVALID_PRODUCT"),
    ({"face_fen": 12.5}, "INVALID_PRODUCT"),
    ({"face_fen": True}, "INVALID_PRODUCT"),
    ({"cost_fen": -1}, "INVALID_PRODUCT"),
    ({"price_fen": 0}, "INVALID_PRODUCT"),
    ({"percent_off": 20}, "INVALID_PRODUCT"),  # only goods_discount may be a percentage
    ({"kind": "goods_discount", "face_fen": 1000, "percent_off": 20}, "INVALID_PRODUCT"),  # one or the other
    ({"kind": "goods_discount", "face_fen": 0, "percent_off": 100}, "INVALID_PRODUCT"),
    ({"kind": "cashback"}, "INVALID_PRODUCT"),  # needs a category
    ({"category": "fuel"}, "INVALID_PRODUCT"),  # only cashback has one
    ({"funded_by": "user"}, "INVALID_PRODUCT"),
    ({"use_window_days": 0}, "INVALID_PRODUCT"),
    ({"min_validity_days": -1}, "INVALID_PRODUCT"),
    ({"jump_app_id": JUMP_APP}, "INVALID_PRODUCT"),  # jump only for redemption codes
    ({"kind": "redemption_code", "jump_app_id": "taopiaopiao"}, "INVALID_PRODUCT"),
    ({"kind": "redemption_code", "jump_path": "pages/x"}, "INVALID_PRODUCT"),  # path without app id
    ({"programme_code": "nope"}, "PROGRAMME_NOT_FOUND"),
])
def test_validation_in_chinese(db, kw, code):
    with pytest.raises(InvalidInput) as err:
        _create(**kw)
    assert err.value.code == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err.value.message)


def test_goods_discount_either_amount_or_percent(db):
    assert _create(code="g1", kind="goods_discount", face_fen=0, percent_off=15).percent_off == 15
    assert _create(code="g2", kind="goods_discount", face_fen=2000).face_fen == 2000


def test_duplicate_code_conflicts(db):
    _create()
    with pytest.raises(Conflict) as err:
        _create(name="另一个")
    assert err.value.code == "PRODUCT_EXISTS"


def test_update_changes_editable_fields_and_audits_the_diff(any_db):
    setup_catalogue()
    with session_scope() as s:
        p = service.update_product(s, actor=STAFF, code="tpp50", on_sale=True, price_fen=4800, min_validity_days=20)
        assert (p.on_sale, p.price_fen, p.min_validity_days) == (True, 4800, 20)
        same = service.update_product(s, actor=STAFF, code="tpp50", on_sale=True)  # no change, no audit row
        assert same.on_sale
    with session_scope() as s:
        rows = s.exec(select(AuditLog).where(AuditLog.action == "product.updated")).all()
    assert len(rows) == 1
    assert '"price_fen": 4800' in rows[0].after and '"price_fen": null' in rows[0].before
    for kw in ({"kind": "cashback"}, {"created_at": None}):
        with pytest.raises(InvalidInput) as err:
            with session_scope() as s:
                service.update_product(s, actor=STAFF, code="tpp50", **kw)
        assert err.value.code == "FIELD_NOT_EDITABLE"
    with pytest.raises(InvalidInput) as err:
        with session_scope() as s:
            service.update_product(s, actor=STAFF, code="tpp50", face_fen=-5)
    assert err.value.code == "INVALID_PRODUCT"
    with session_scope() as s:
        assert service.get_product_by_code(s, "tpp50").face_fen == 5000  # the failed update rolled back


def test_missing_product_and_programme(db):
    with pytest.raises(NotFound) as err:
        with session_scope() as s:
            service.get_product_by_code(s, "nope")
    assert err.value.code == "PRODUCT_NOT_FOUND" and err.value.message == "券种不存在"
    with pytest.raises(NotFound) as err:
        with session_scope() as s:
            service.get_programme(s, "nope")
    assert err.value.code == "PROGRAMME_NOT_FOUND"
    with pytest.raises(InvalidInput) as err:
        with session_scope() as s:
            service.create_programme(s, actor=STAFF, code="x", name="")
    assert err.value.code == "INVALID_PROGRAMME"
