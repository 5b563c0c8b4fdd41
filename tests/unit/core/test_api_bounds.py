"""Every integer a client can send is bounded, and out-of-range integers are a 422, never a 500.

SQLite refuses a Python int past ``2**63 - 1`` and PostgreSQL one past the column's type, both long
after validation has said yes, so an integer without a maximum was a 500 (``?offset=2**63`` on the
SMS outbox and the stock code list, ``2**63`` as an import id). The OpenAPI walk below fails for any
new integer parameter or request-body field without both bounds. Responses are what we produce,
not input: they are not walked (a maximum there would be enforced on output and turn into a 500).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.core.params import ID_MAX, OFFSET_MAX
from tests.support import api_error, staff_headers, wechat_user

SQLITE_MAX = 2**63 - 1
BIG = 2**63  # one past SQLite's INTEGER


def _openapi() -> dict[str, Any]:
    from gc_admin.api import build_api

    return build_api().openapi()


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def integers(doc: dict[str, Any], schema: dict[str, Any], where: str, seen: frozenset[str] = frozenset()
             ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every integer schema reachable from ``schema`` (refs, unions, arrays, objects, maps)."""
    if "$ref" in schema:
        ref = schema["$ref"]
        if ref in seen:
            return
        seen = seen | {ref}
        schema = _resolve(doc, schema)
    types = schema.get("type")
    if types == "integer" or (isinstance(types, list) and "integer" in types):
        yield where, schema
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, sub in enumerate(schema.get(key, [])):
            yield from integers(doc, sub, f"{where}|{i}", seen)
    if isinstance(schema.get("items"), dict):
        yield from integers(doc, schema["items"], f"{where}[]", seen)
    for name, sub in schema.get("properties", {}).items():
        yield from integers(doc, sub, f"{where}.{name}", seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from integers(doc, schema["additionalProperties"], f"{where}{{}}", seen)


def client_integers(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``"METHOD path where" -> integer schema`` for every parameter and request body of every operation."""
    found: dict[str, dict[str, Any]] = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            label = f"{method.upper()} {path}"
            for param in op.get("parameters", []):
                for where, schema in integers(doc, param["schema"], f"{param['in']}:{param['name']}"):
                    found[f"{label} {where}"] = schema
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                for where, schema in integers(doc, content.get("schema", {}), f"body({media})"):
                    found[f"{label} {where}"] = schema
    return found


def test_every_integer_a_client_sends_has_both_bounds() -> None:
    found = client_integers(_openapi())
    # the walk reaches parameters, body fields, nested bodies, unions and maps (it cannot pass by finding nothing)
    for expected in ("GET /api/v1/admin/sms/outbox query:offset", "GET /api/v1/admin/stock/imports/{import_id} path:import_id",
                     "POST /api/v1/mp/orders body(application/json).quantity",
                     "POST /api/v1/mp/orders body(application/json).topup|0.face_fen",
                     "POST /api/v1/admin/orders/{order_id}/actions/{action} body(application/json)|0.fulfilment|0{}|1",
                     "POST /api/v1/partner/issuances body(application/json).per_phone"):
        assert expected in found, sorted(found)
    unbounded = {k: s for k, s in found.items()
                 if ("minimum" not in s and "exclusiveMinimum" not in s) or ("maximum" not in s and "exclusiveMaximum" not in s)}
    assert unbounded == {}
    too_big = {k: s["maximum"] for k, s in found.items() if s.get("maximum", 0) > SQLITE_MAX}
    assert too_big == {}


def test_path_ids_use_the_column_range() -> None:
    found = client_integers(_openapi())
    ids = {k: (s.get("minimum"), s.get("maximum")) for k, s in found.items() if " path:" in k}
    assert ids and set(ids.values()) == {(1, ID_MAX)}, ids


# --- the named 500s -----------------------------------------------------------------------------------

@pytest.fixture
def api(any_db: str, api: TestClient) -> TestClient:
    """The conftest ``api``, on every configured database."""
    return api


@pytest.fixture
def admin(api: TestClient, make_staff) -> dict[str, str]:
    make_staff("boss", "admin")
    return staff_headers(api, "boss")


LISTS = ["/api/v1/admin/sms/outbox", "/api/v1/admin/stock/codes", "/api/v1/admin/orders", "/api/v1/admin/ledger",
         "/api/v1/admin/refunds", "/api/v1/admin/reconciliations"]
BY_ID = {  # url -> the error code of an id nobody has
    "/api/v1/admin/stock/imports/{}": "IMPORT_NOT_FOUND",
    "/api/v1/admin/stock/imports/{}/report.csv": "IMPORT_NOT_FOUND",
    "/api/v1/admin/orders/{}": "ORDER_NOT_FOUND", "/api/v1/admin/reconciliations/{}": "RECONCILIATION_NOT_FOUND"}


def _validation_error(resp) -> None:
    api_error(resp, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("url", LISTS)
def test_offset_past_the_bound_is_a_422_and_the_bound_itself_works(api, admin, url) -> None:
    for offset in (BIG, 10**30, OFFSET_MAX + 1):
        _validation_error(api.get(url, params={"offset": offset}, headers=admin))
    for limit in (BIG, 0):
        _validation_error(api.get(url, params={"limit": limit}, headers=admin))
    resp = api.get(url, params={"offset": OFFSET_MAX}, headers=admin)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("url", list(BY_ID))
def test_id_past_the_column_is_a_422_and_the_largest_id_a_404(api, admin, url) -> None:
    for bad in (BIG, 10**30, ID_MAX + 1):
        _validation_error(api.get(url.format(bad), headers=admin))
    api_error(api.get(url.format(ID_MAX), headers=admin), 404, BY_ID[url])


def test_mini_program_ids_and_offsets_are_bounded_too(api) -> None:
    me = wechat_user(api, "o-bounds", None)
    for url in (f"/api/v1/mp/orders/{BIG}", f"/api/v1/mp/coupons/{BIG}"):
        _validation_error(api.get(url, headers=me))
    _validation_error(api.get("/api/v1/mp/orders", params={"offset": BIG}, headers=me))
    api_error(api.get(f"/api/v1/mp/orders/{ID_MAX}", headers=me), 404, "ORDER_NOT_FOUND")


def test_unbounded_body_integers_are_refused(api) -> None:
    me = wechat_user(api, "o-bounds", None)
    topup = {"type": "topup", "topup": {"mobile": "13812345678", "face_fen": BIG}}
    _validation_error(api.post("/api/v1/mp/orders/quote", json=topup, headers=me))
    for field in ("coupon_id", "exchange_coupon_id"):
        _validation_error(api.post("/api/v1/mp/orders/quote", json={"type": "topup", field: BIG}, headers=me))


# --- reconciliation for a day WeChat Pay has no bill for -------------------------------------------------

def _shanghai_today() -> dt.date:
    return utcnow().astimezone(SHANGHAI).date()


@pytest.mark.parametrize("days", [93, 400, 365 * 20])
def test_fetching_a_bill_older_than_wechat_keeps_is_a_422(api, admin, days) -> None:
    day = (_shanghai_today() - dt.timedelta(days=days)).isoformat()
    resp = api.post("/api/v1/admin/reconciliations/fetch", json={"bill_date": day}, headers=admin)
    assert "三个月" in api_error(resp, 422, "BILL_DATE_TOO_OLD")


@pytest.mark.parametrize("days", [1, 30, 365 * 70])
def test_fetching_a_bill_of_a_future_day_is_a_422(api, admin, days) -> None:
    day = (_shanghai_today() + dt.timedelta(days=days)).isoformat()
    resp = api.post("/api/v1/admin/reconciliations/fetch", json={"bill_date": day}, headers=admin)
    api_error(resp, 422, "BILL_DATE_IN_FUTURE")


def test_the_oldest_day_wechat_keeps_still_reconciles(api, admin) -> None:
    day = (_shanghai_today() - dt.timedelta(days=92)).isoformat()
    resp = api.post("/api/v1/admin/reconciliations/fetch", json={"bill_date": day}, headers=admin)
    assert resp.status_code == 201, resp.text
    assert resp.json()["bill_rows"] == 0 and resp.json()["ok"]


class _Refusing:
    """WeChat Pay answering the bill request with one error code (the codes its docs list for the call)."""

    def __init__(self, code: str, status: int = 400) -> None:
        self.code, self.status = code, status

    def trade_bill(self, bill_date: dt.date) -> bytes:
        from gc_admin.integrations.wechatpay.client import WxPayError

        raise WxPayError(f"GET /v3/bill/tradebill -> {self.status}", status=self.status, code=self.code, verified=True)


@pytest.mark.parametrize(("code", "status", "expected"), [
    ("INVALID_REQUEST", 422, "BILL_DATE_REFUSED"),  # WeChat's "today" is not ours, or the date is out of its range
    ("PARAM_ERROR", 422, "BILL_DATE_REFUSED"),
    ("STATEMENT_CREATING", 409, "BILL_NOT_READY"),  # the day's bill is still being generated
])
def test_wechat_refusing_the_date_is_a_4xx_not_a_502(api, admin, monkeypatch, code, status, expected) -> None:
    from gc_admin.integrations.wechatpay import setup

    monkeypatch.setattr(setup, "get_client", lambda: _Refusing(code))
    resp = api.post("/api/v1/admin/reconciliations/fetch", json={"bill_date": _shanghai_today().isoformat()},
                    headers=admin)
    assert code in api_error(resp, status, expected)


def test_wechat_failing_is_still_a_502(api, admin, monkeypatch) -> None:
    from gc_admin.integrations.wechatpay import setup

    monkeypatch.setattr(setup, "get_client", lambda: _Refusing("SYSTEM_ERROR", 500))
    resp = api.post("/api/v1/admin/reconciliations/fetch", json={"bill_date": _shanghai_today().isoformat()},
                    headers=admin)
    api_error(resp, 502, "BILL_UNAVAILABLE")


# --- dates: the same overflow one type over ------------------------------------------------------------
# 0001-01-01 at 00:00 Asia/Shanghai is before datetime.min in UTC, 9999-12-31 has no next day: both
# were an OverflowError (500) in the ledger filters, the reconciliation upload and the order badge.

FAR_DAYS = ["0001-01-01", "1899-12-31", "9999-12-31", "2100-01-01"]


@pytest.mark.parametrize("day", FAR_DAYS)
def test_dates_outside_the_business_range_are_a_422(api, admin, day) -> None:
    for url in ("/api/v1/admin/ledger", "/api/v1/admin/ledger.xlsx"):
        for key in ("date_from", "date_to"):
            _validation_error(api.get(url, params={key: day}, headers=admin))
    upload = api.post("/api/v1/admin/reconciliations", files={"file": ("bill.csv", b"")}, data={"bill_date": day},
                      headers=admin)
    _validation_error(upload)
    _validation_error(api.post("/api/v1/admin/reconciliations/fetch", json={"bill_date": day}, headers=admin))
    imported = api.post("/api/v1/admin/stock/imports", files={"file": ("codes.csv", b"code\nABCDEFGH1234\n")},
                        data={"product_code": "tpp50", "expires_at": day}, headers=admin)
    _validation_error(imported)


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "1899-12-31T00:00:00Z"])
def test_instants_outside_the_business_range_are_a_422(api, admin, since) -> None:
    _validation_error(api.get("/api/v1/admin/orders/badge", params={"since": since}, headers=admin))


def test_the_ends_of_the_range_still_work(api, admin) -> None:
    from gc_admin.core.params import DAY_MAX, DAY_MIN

    resp = api.get("/api/v1/admin/ledger", params={"date_from": DAY_MIN.isoformat(), "date_to": DAY_MAX.isoformat()},
                   headers=admin)
    assert resp.status_code == 200, resp.text
    for since in (f"{DAY_MIN.isoformat()}T00:00:00+14:00", f"{DAY_MAX.isoformat()}T23:59:59-12:00"):
        resp = api.get("/api/v1/admin/orders/badge", params={"since": since}, headers=admin)
        assert resp.status_code == 200, resp.text
    upload = api.post("/api/v1/admin/reconciliations", files={"file": ("bill.csv", b"")},
                      data={"bill_date": DAY_MIN.isoformat()}, headers=admin)
    assert upload.status_code == 201, upload.text
