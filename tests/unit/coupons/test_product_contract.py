"""``POST /api/v1/admin/products`` takes the Product shape it answers with (API.md): ``jump: {app_id, path}``,
and a code keeps the case it was sent in while staying unique (and found) without regard to case."""

from __future__ import annotations

import pytest

from gc_admin.coupons import service as coupons
from gc_admin.db import session_scope
from tests.support import SETUP, api_error, staff_headers

pytestmark = pytest.mark.usefixtures("any_db")  # the case-insensitive unique index on both databases

A = "/api/v1/admin"
APP = "wx1234567890abcdef"


@pytest.fixture
def mgr(api, make_staff) -> dict[str, str]:
    make_staff("mgr", "manager")
    return staff_headers(api, "mgr")


def _code(code: str, **extra) -> dict:
    return {"code": code, "name": "淘票票 50 元通兑券", "kind": "redemption_code", "face_fen": 5000, "cost_fen": 4200,
            **extra}


def test_jump_is_taken_as_the_answer_shapes_it(api, mgr) -> None:
    made = api.post(f"{A}/products", json=_code("tpp50", jump={"app_id": APP, "path": "pages/ticket/index"}),
                    headers=mgr)
    assert made.status_code == 201, made.text
    assert made.json()["jump"] == {"app_id": APP, "path": "pages/ticket/index"}
    listed = {p["code"]: p for p in api.get(f"{A}/products", headers=mgr).json()}
    assert listed["tpp50"]["jump"] == {"app_id": APP, "path": "pages/ticket/index"}
    # what the answer says can be sent back as it is
    again = {k: v for k, v in made.json().items() if k in _code("x")}
    again.update(code="tpp50b", jump=made.json()["jump"])
    assert api.post(f"{A}/products", json=again, headers=mgr).status_code == 201


def test_the_old_flat_fields_still_work_and_must_agree_with_jump(api, mgr) -> None:
    old = api.post(f"{A}/products", json=_code("tpp60", jump_app_id=APP, jump_path="pages/a"), headers=mgr)
    assert old.status_code == 201 and old.json()["jump"] == {"app_id": APP, "path": "pages/a"}
    both = api.post(f"{A}/products", json=_code("tpp70", jump={"app_id": APP, "path": "pages/a"}, jump_app_id=APP,
                                                 jump_path="pages/a"), headers=mgr)
    assert both.status_code == 201
    api_error(api.post(f"{A}/products", json=_code("tpp80", jump={"app_id": APP, "path": "pages/a"},
                                                   jump_path="pages/b"), headers=mgr), 422, "VALIDATION_ERROR")
    api_error(api.post(f"{A}/products", json=_code("tpp90", jump={"app_id": "not-an-app", "path": "p"}), headers=mgr),
              422, "INVALID_PRODUCT")
    api_error(api.post(f"{A}/products", json=_code("tpp91", jump={"path": "p"}), headers=mgr), 422, "VALIDATION_ERROR")
    api_error(api.post(f"{A}/products", json=_code("tpp92", jump={"app_id": APP, "path": "p", "x": 1}), headers=mgr),
              422, "VALIDATION_ERROR")


def test_a_code_keeps_its_case_and_is_unique_and_found_without_it(api, mgr) -> None:
    made = api.post(f"{A}/products", json={"code": "BARS-X", "name": "酒吧券", "kind": "service_discount",
                                           "face_fen": 1000}, headers=mgr)
    assert made.status_code == 201 and made.json()["code"] == "BARS-X"
    assert [p["code"] for p in api.get(f"{A}/products", headers=mgr).json()] == ["BARS-X"]
    message = api_error(api.post(f"{A}/products", json={"code": "bars-x", "name": "重复", "kind": "service_discount",
                                                        "face_fen": 1000}, headers=mgr), 409, "PRODUCT_EXISTS")
    assert "BARS-X" in message
    with session_scope() as s:
        assert coupons.get_product_by_code(s, "bars-x").code == "BARS-X"
        batch = coupons.issue_batch(s, actor=SETUP, source="staff", batch_id="B1", product_code="Bars-X",
                                    phones=["13800000001"])
        assert batch.issued == 1
    # list filters by code take any case too
    issued = api.get(f"{A}/stock/summary", params={"product_code": "bars-x"}, headers=mgr)
    assert issued.status_code == 200
