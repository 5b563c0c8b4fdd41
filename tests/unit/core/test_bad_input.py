"""Whatever a client sends to a POST route: a 4xx with the error envelope, never a 500, never a write.

Runs on SQLite and, with ``GC_TEST_PG_URL``, on PostgreSQL (which refuses things SQLite takes,
such as NUL characters in text).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from gc_admin.db import session_scope
from gc_admin.models import metadata
from tests.support import wechat_sign_in

JSON = {"content-type": "application/json"}

pytestmark = pytest.mark.usefixtures("any_db")  # every test on SQLite and PostgreSQL

# path -> a valid body (each field is a string)
ROUTES: dict[str, dict[str, str]] = {
    "/api/v1/admin/auth/login": {"username": "boss", "password": "secret2026"},
    "/api/v1/mp/auth/wechat": {"code": "some-code"},
    "/api/v1/mp/auth/wechat/phone": {"phone_code": "some-phone-code"},
    "/api/v1/mp/auth/sms/send": {"phone": "13812345678"},
    "/api/v1/mp/auth/sms/login": {"phone": "13812345678", "code": "123456"},
}
PHONE_ROUTES = ("/api/v1/mp/auth/sms/send", "/api/v1/mp/auth/sms/login")
BAD_PHONES = [
    "", " ", "1", "1381234567", "138123456789", "12812345678", "10012345678", "23812345678", "1381234567a",
    "138-1234-567x", "+1 415 555 2671", "+85213812345678", "0086 138", "86138123456", "8613812345678999",
    "１３８１２３４５６７８", "13８１２３４５６７８", "١٣٨١٢٣٤٥٦٧٨", "13812345678\x00", "138\t1234\n567", "+861381234567",
    "13812345678; DROP TABLE mp_user", "' OR 1=1 --", "𝟏𝟑𝟖𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖", "1" * 20, "1" * 21, "1" * 10_000,
]


@pytest.fixture
def mp_token(api: TestClient) -> str:
    """A signed-in mini-program user (the phone-binding route checks the token before the body)."""
    return wechat_sign_in(api, "o-fuzz")["token"]


def row_counts() -> dict[str, int]:
    with session_scope() as s:
        return {name: s.execute(select(func.count()).select_from(t)).scalar_one() for name, t in metadata.tables.items()}


def assert_envelope(resp, status: int | tuple[int, ...], code: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    statuses = (status,) if isinstance(status, int) else status
    assert resp.status_code in statuses, f"{resp.status_code}: {resp.text[:500]}"
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err, dict) and {"code", "message"} <= set(err) <= {"code", "message", "details"}, err
    assert isinstance(err["code"], str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", err["code"]), err
    assert isinstance(err["message"], str) and re.search(r"[\u4e00-\u9fff]", err["message"]), err
    if code is not None:
        assert err["code"] in ((code,) if isinstance(code, str) else code), err
    return err


class Poster:
    """POSTs to a route (with the user's token where needed), asserting nothing was written."""

    def __init__(self, api: TestClient, token: str) -> None:
        self.api, self.token = api, token

    def __call__(self, path: str, *, body: Any = None, raw: bytes | None = None, headers: dict[str, str] | None = None):
        hdrs = dict(JSON if headers is None else headers)
        if path.endswith("/wechat/phone"):
            hdrs["Authorization"] = f"Bearer {self.token}"
        content = raw if raw is not None else json.dumps(body).encode()
        before = row_counts()
        resp = self.api.post(path, content=content, headers=hdrs)
        assert resp.status_code < 500, f"{path} {content[:200]!r} -> {resp.status_code} {resp.text[:300]}"
        assert row_counts() == before, f"{path} {content[:200]!r} wrote rows"
        return resp


@pytest.fixture
def post(api: TestClient, mp_token: str) -> Poster:
    return Poster(api, mp_token)


MALFORMED = [b"{", b'{"a":}', b"{'code': 'x'}", b'{"code": "x",}', b'{"code": "x"', b"nul", b'{"code": "x"} trailing',
             b"   ", b'{"code": "\\x"}', b"[1, 2", b'{"code": "x" "y"}', b"{code: 1}"]


@pytest.mark.parametrize("path", list(ROUTES))
def test_malformed_json_is_400(post, path):
    for raw in MALFORMED:
        err = assert_envelope(post(path, raw=raw), 400, "BAD_JSON")
        assert err["message"] == "请求体不是合法的 JSON", raw


@pytest.mark.parametrize("path", list(ROUTES))
def test_undecodable_or_absurdly_nested_json_is_400(post, path):
    """FastAPI reports these as a generic parse failure (not ``json_invalid``): still a 400 envelope."""
    for raw in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, b"\xff\xfe\x00",
                b'{"code": "\xc3\x28"}'):
        assert_envelope(post(path, raw=raw), 400, ("BAD_JSON", "BAD_REQUEST"))


WRONG_TYPES = [123, 0, -1.5, True, False, None, [], ["x"], {}, {"x": "y"}]


@pytest.mark.parametrize("path", list(ROUTES))
def test_wrong_type_is_422_naming_the_field(post, path):
    for field in ROUTES[path]:
        for value in WRONG_TYPES:
            err = assert_envelope(post(path, body={**ROUTES[path], field: value}), 422, "VALIDATION_ERROR")
            assert err["message"] == f"请求参数不正确：{field}", (field, value)
            assert [d["field"] for d in err["details"]] == [field], (field, value)


@pytest.mark.parametrize("path", list(ROUTES))
def test_body_that_is_not_an_object_is_422(post, path):
    for body in ([], ["x"], [ROUTES[path]], "a string", 42, 4.2, True, None):
        err = assert_envelope(post(path, body=body), 422, "VALIDATION_ERROR")
        assert err["message"] == "请求参数不正确：请求体", body


@pytest.mark.parametrize("path", list(ROUTES))
def test_unknown_fields_are_422(post, path):
    for extra in ({"admin": True}, {"role": "admin"}, {"id": 1}, {"": ""}, {"代码": "x"}, {"code ": "x"}):
        err = assert_envelope(post(path, body={**ROUTES[path], **extra}), 422, "VALIDATION_ERROR")
        [detail] = err["details"]
        assert detail["type"] == "extra_forbidden" and detail["field"] == (next(iter(extra)) or "请求体"), extra


@pytest.mark.parametrize("path", list(ROUTES))
def test_overlong_strings_are_422(post, path):
    for field in ROUTES[path]:
        for value in ("x" * 10_240, "9" * 10_240, "验" * 10_240):
            err = assert_envelope(post(path, body={**ROUTES[path], field: value}), 422, "VALIDATION_ERROR")
            assert err["details"][0]["field"] == field
    # a 1 MB body with an unknown field is refused just the same
    assert_envelope(post(path, body={**ROUTES[path], "pad": "x" * 1_000_000}), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("path", list(ROUTES))
def test_empty_and_blank_bodies_are_422(post, path):
    err = assert_envelope(post(path, raw=b""), 422, "VALIDATION_ERROR")
    assert err["message"] == "请求参数不正确：请求体"
    err = assert_envelope(post(path, body={}), 422, "VALIDATION_ERROR")
    assert sorted(d["field"] for d in err["details"]) == sorted(ROUTES[path])
    assert {d["type"] for d in err["details"]} == {"missing"}
    for field in ROUTES[path]:  # strings are stripped, then must not be empty
        for blank in ("", "   ", "\t\n"):
            err = assert_envelope(post(path, body={**ROUTES[path], field: blank}), 422, "VALIDATION_ERROR")
            assert err["details"][0]["field"] == field


@pytest.mark.parametrize("path", list(ROUTES))
def test_nul_characters_are_422(post, path):
    """PostgreSQL cannot store NUL: a username with one used to reach the database and fail with a 500."""
    for field in ROUTES[path]:
        for value in ("a\x00b", "\x00", "13812345678\x00", "123\x00456"):
            err = assert_envelope(post(path, body={**ROUTES[path], field: value}), 422, "VALIDATION_ERROR")
            assert err["details"][0]["field"] == field


@pytest.mark.parametrize("path", list(ROUTES))
def test_lone_surrogates_are_422(post, path):
    for field in ROUTES[path]:
        raw = json.dumps({**ROUTES[path], field: "PLACEHOLDER"}).replace("PLACEHOLDER", "\\ud800").encode()
        assert_envelope(post(path, raw=raw), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("path", list(ROUTES))
def test_json_without_json_content_type_is_refused(post, path):
    """FastAPI parses only ``application/json`` bodies; anything else is a 4xx, never a guess."""
    raw = json.dumps(ROUTES[path]).encode()
    for headers in ({}, {"content-type": "text/plain"}, {"content-type": "application/x-www-form-urlencoded"}):
        assert_envelope(post(path, raw=raw, headers=headers), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("path", PHONE_ROUTES)
def test_invalid_phone_numbers_are_422(post, path):
    codes = set()
    for phone in BAD_PHONES:
        err = assert_envelope(post(path, body={**ROUTES[path], "phone": phone}), 422, ("INVALID_PHONE", "VALIDATION_ERROR"))
        codes.add(err["code"])
        if err["code"] == "INVALID_PHONE":
            assert err["message"] == "请输入正确的 11 位手机号", phone
        else:
            assert err["details"][0]["field"] == "phone", phone
    assert codes == {"INVALID_PHONE", "VALIDATION_ERROR"}  # both layers were exercised


def test_malformed_sms_codes_are_422(post):
    for code in ("12a456", "12 456", "123", "123456789", "-12345", "1e5", "１２３４５６", "١٢٣٤٥٦", "12345.6"):
        err = assert_envelope(post("/api/v1/mp/auth/sms/login", body={"phone": "13812345678", "code": code}), 422,
                              "VALIDATION_ERROR")
        assert err["details"][0]["field"] == "code", code


def test_unknown_route_is_404_envelope(api):
    before = row_counts()
    for method, path in [("GET", "/api/v1/nope"), ("POST", "/api/v1/nope"), ("DELETE", "/api/v1/mp/nope/1"),
                         ("GET", "/api/v2/mp/me"), ("GET", "/api/v1/admin/auth/login/extra"), ("PATCH", "/api/v1/x"),
                         ("POST", "/api/v1/mp/auth/sms"), ("GET", "/api"), ("GET", "/nope")]:
        err = assert_envelope(api.request(method, path, json={"code": "x"}), 404, "NOT_FOUND")
        assert err["message"] == "接口不存在", (method, path)
    assert row_counts() == before


def test_wrong_method_is_405_envelope(api):
    before = row_counts()
    for method, path in [("GET", "/api/v1/admin/auth/login"), ("PUT", "/api/v1/mp/auth/sms/send"),
                         ("DELETE", "/api/v1/mp/auth/sms/login"), ("GET", "/api/v1/mp/auth/wechat"),
                         ("PATCH", "/api/v1/mp/auth/wechat/phone"), ("POST", "/api/v1/mp/me"), ("DELETE", "/api/v1/admin/me"),
                         ("POST", "/api/v1/admin/sms/outbox"), ("PUT", "/api/v1/health")]:
        err = assert_envelope(api.request(method, path, json={"code": "x"}), 405, "METHOD_NOT_ALLOWED")
        assert err["message"] == "不支持该请求方法", (method, path)
    assert row_counts() == before


# --- fuzzing -------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
# strings that look a lot like what the routes expect, to reach past the schema into the services
near_phone = st.from_regex(r"\A(\+86|0086|86)? ?1[0-9][0-9 \-]{8,11}\Z") | st.text(alphabet="0123456789+-() ", max_size=20)
near_code = st.from_regex(r"\A[0-9]{3,9}\Z") | st.text(alphabet="0123456789 ", max_size=9)
near_name = st.sampled_from(["boss", "BOSS ", "chen", "", "x" * 64, "x" * 65]) | st.text(max_size=70)


def _bodies(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    shaped = st.fixed_dictionaries({k: v | json_values for k, v in fields.items()},
                                   optional={"extra": json_values})
    partial = st.dictionaries(st.sampled_from([*fields, "extra"]), json_values | near_code, max_size=3)
    return shaped | partial | json_values


FUZZ = {
    "/api/v1/mp/auth/sms/login": _bodies({"phone": near_phone, "code": near_code}),
    "/api/v1/admin/auth/login": _bodies({"username": near_name, "password": near_name}),
}


def _fuzz(api: TestClient, path: str, value: Any) -> None:
    before = row_counts()
    resp = api.post(path, content=json.dumps(value).encode(), headers=JSON)
    assert resp.status_code < 500, f"{value!r} -> {resp.status_code} {resp.text[:300]}"
    err = assert_envelope(resp, (400, 401, 403, 422, 429))
    if resp.status_code in (400, 422):  # refused at the door: nothing may have been written
        assert row_counts() == before, f"{value!r} was refused ({err['code']}) but wrote rows"


FUZZ_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                                  HealthCheck.too_slow])


@FUZZ_SETTINGS
@given(value=FUZZ["/api/v1/mp/auth/sms/login"])
def test_fuzz_sms_login(api, value):
    _fuzz(api, "/api/v1/mp/auth/sms/login", value)


@FUZZ_SETTINGS
@given(value=FUZZ["/api/v1/admin/auth/login"])
def test_fuzz_admin_login(api, value):
    _fuzz(api, "/api/v1/admin/auth/login", value)
