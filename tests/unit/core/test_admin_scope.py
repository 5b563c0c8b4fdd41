"""Role × route × row scope of the staff API (``/api/v1/admin``), enumerated from the app's route table.

:data:`ROUTES` has an entry for EVERY admin route the FastAPI app serves — a new route without an
entry fails :func:`test_every_admin_route_has_an_entry` — saying which roles may call it (every
other role must get 403), what an allowed call answers, and which roles may see phone numbers
whole in it. A route that a row-scoped role (insurer: one programme; dispatcher: driver orders;
supplier: its own) may call must also name its row-scope check in :data:`ROW_SCOPE`, which proves
that another programme's / other staff's rows are 404 or filtered out.

One database for the whole module (the matrix is ~200 requests); every request that writes uses
its own ids, so the cases do not depend on their order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlmodel import select

from gc_admin.audit.service import Actor
from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.core.roles import ALL_ROLES
from gc_admin.coupons import service as coupons
from gc_admin.coupons.models import Coupon, IssuanceBatch
from gc_admin.db import session_scope
from gc_admin.orders.models import ServiceOrder
from gc_admin.users.models import MpUser
from tests.support import PASSWORD, SETUP, api_error, fresh_sqlite, use_database, wired

ROLES = sorted(ALL_ROLES)
PLATFORM = frozenset({"admin", "manager", "clerk"})  # the issuing roles that are not confined to a programme
ISSUERS = PLATFORM | {"insurer"}
QUEUE = frozenset({"admin", "manager", "clerk", "service", "dispatcher"})
REFUNDERS = frozenset({"admin", "manager", "clerk", "service"})
MONEY = frozenset({"admin", "manager"})
STOCK = frozenset({"admin", "manager", "clerk"})
FLOWERS = STOCK  # 鲜花管理: read by these, changed by MONEY (admin, manager)
ADMIN = frozenset({"admin"})
ROW_SCOPED_ROLES = frozenset({"insurer", "supplier", "dispatcher"})
DRIVERS = frozenset({"admin", "manager", "dispatcher"})  # 司机管理

# Phones of the world, by whose list they are (none may leak whole to a role that did not supply it).
CLERK_PHONES = ["13900000001", "13900000002"]
PICC_PHONES = ["13900000011", "13900000012"]
OTHER_PHONES = ["13900000021", "13900000022"]
SAME_PHONES = ["13900000031"]  # the clerk's "B-SAME" list
BUYER_PHONE = "13500000001"  # a mini-program user with orders
SMS_PHONE = "13500000009"  # got a login code
ALL_PHONES = [*CLERK_PHONES, *PICC_PHONES, *OTHER_PHONES, *SAME_PHONES, BUYER_PHONE, SMS_PHONE]


# --- the world --------------------------------------------------------------------------------------

@dataclasses.dataclass
class World:
    url: str
    api: TestClient
    tokens: dict[str, str]  # username -> bearer token
    import_id: int
    driver_order: int
    flower_order: int
    login_code: str

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}


def _order(user_id: int, type_: str, n: int) -> int:
    now = utcnow()
    with session_scope() as s:
        order = ServiceOrder(order_no=f"GC20261201{n:010d}", type=type_, status="paid", user_id=user_id, list_fen=5000,
                             payable_fen=5000, paid_fen=5000, pricing={"list_fen": 5000, "steps": [], "payable_fen": 5000},
                             details={"lines": []}, pay_expires_at=now, created_at=now, updated_at=now, paid_at=now)
        s.add(order)
        s.flush()
        return order.id or 0


@pytest.fixture(scope="module")
def world(sqlite_template, tmp_path_factory) -> Iterator[World]:
    from gc_admin.accounts.service import authenticate, create_staff, start_session
    from gc_admin.api import build_api
    from gc_admin.integrations import sims
    from gc_admin.integrations.sms.service import messages_to
    from gc_admin.users.service import send_login_code

    url = fresh_sqlite(sqlite_template, tmp_path_factory.mktemp("scope"))
    use_database(url)
    with session_scope() as s:
        coupons.create_programme(s, actor=SETUP, code="picc_gx", name="广西人保车主权益")
        coupons.create_programme(s, actor=SETUP, code="other", name="别的项目")
        for code, programme, funded_by in [("picc_flower", "picc_gx", "insurer"), ("picc_promo", "picc_gx", "platform"),
                                           ("other_flower", "other", "insurer"), ("plat_promo", None, "platform")]:
            coupons.create_product(s, actor=SETUP, code=code, name=f"券 {code}", kind="service_discount", face_fen=1000,
                                   programme_code=programme, funded_by=funded_by)
        coupons.create_product(s, actor=SETUP, code="tpp10", name="淘票票 10 元", kind="redemption_code", face_fen=1000,
                               cost_fen=860, programme_code="picc_gx")
        report = coupons.import_codes(s, actor=SETUP, product_code="tpp10", filename="seed.csv",
                                      data=b"code,expires_at\nSEEDCODE0001,2099-12-31\nSEEDCODE0002,2099-12-31\n")
        staff = [(role, role, "picc_gx" if role == "insurer" else None) for role in ROLES]
        staff += [("insurer_other", "insurer", "other"), ("insurer_none", "insurer", None)]
        for username, role, programme in staff:
            create_staff(s, actor=SETUP, username=username, display_name=username, password=PASSWORD, role=role,
                         programme_code=programme)
        buyer = MpUser(phone=BUYER_PHONE, created_at=utcnow())
        s.add(buyer)
        s.flush()
        buyer_id = buyer.id or 0
    tokens = {}
    with session_scope() as s:
        for username, _, _ in staff:
            tokens[username], _ = start_session(s, principal=authenticate(s, username=username, password=PASSWORD),
                                                kind="api")
        # batches: the platform's (a clerk's), the picc insurer's, the other programme's insurer's
        clerk = Actor("staff", "3", "clerk")
        coupons.issue_batch(s, actor=clerk, source="staff", batch_id="B-CLERK", product_code="picc_flower",
                            phones=CLERK_PHONES)
        coupons.issue_batch(s, actor=clerk, source="staff", batch_id="B-SAME", product_code="picc_flower",
                            phones=SAME_PHONES)
        coupons.issue_batch(s, actor=Actor("staff", "5", "insurer"), source="staff", batch_id="B-PICC",
                            product_code="picc_flower", phones=PICC_PHONES, programme_code="picc_gx")
        coupons.issue_batch(s, actor=Actor("staff", "8", "insurer_other"), source="staff", batch_id="B-OTHER",
                            product_code="other_flower", phones=OTHER_PHONES, programme_code="other")
        send_login_code(s, phone=SMS_PHONE)
    with session_scope() as s:
        code = re.search(r"(\d{6})", messages_to(s, phone=SMS_PHONE)[0].content).group(1)
    driver, flower = _order(buyer_id, "driver", 1), _order(buyer_id, "flower", 2)
    sims.simulators.cache_clear()
    app = build_api()
    with wired(app), TestClient(app, raise_server_exceptions=False) as tc:  # WeChat Pay: the in-app simulator
        yield World(url, tc, tokens, report.import_id, driver, flower, code)


@pytest.fixture(autouse=True)
def _this_modules_database(world):
    """Another module's test may have pointed the app at its own database meanwhile: come back."""
    use_database(world.url)


# --- the route table --------------------------------------------------------------------------------

Request = tuple[str, str, dict[str, Any]]  # method, url, TestClient kwargs


@dataclasses.dataclass(frozen=True)
class Case:
    """One way of calling a route: who may, how (per role), what an allowed call answers."""

    allowed: frozenset[str] | None  # None: public (no token needed)
    request: Callable[[str, World], Request]  # (role, world) -> request
    ok: int | tuple[int, str] = 200  # status (and error code) for an allowed role
    whole_phones: frozenset[str] = frozenset()  # roles this answer may show phone numbers whole to
    name: str = ""


A = "/api/v1/admin"


def get(path: str) -> Callable[[str, World], Request]:
    return lambda role, w: ("GET", A + path, {})


def _codes_file(role: str) -> dict[str, Any]:
    data = f"code,expires_at\nNEW{role.upper()}0001,2099-12-31\n".encode()
    return {"data": {"product_code": "tpp10"}, "files": {"file": ("codes.csv", data, "text/csv")}}


def _issue_body(role: str) -> dict[str, Any]:
    return {"json": {"batch_id": f"M-{role}", "product_code": "picc_flower", "phones": [f"1370000{len(role):04d}"]}}


def _yesterday() -> str:
    """A day WeChat Pay still keeps the bill of (it keeps three months), in Shanghai."""
    return (utcnow().astimezone(SHANGHAI) - dt.timedelta(days=1)).date().isoformat()


def _order_for(role: str, w: World) -> int:
    return w.driver_order if role == "dispatcher" else w.flower_order


ROUTES: dict[tuple[str, str], list[Case]] = {
    ("POST", "/auth/login"): [Case(None, lambda role, w: ("POST", A + "/auth/login",
                                                          {"json": {"username": role, "password": PASSWORD}}))],
    ("GET", "/me"): [Case(ALL_ROLES, get("/me"))],
    # cashback review (claims section): a missing claim, so nothing changes
    ("GET", "/claims/options"): [Case(STOCK, get("/claims/options"))],
    ("GET", "/claims"): [Case(STOCK, get("/claims"))],
    ("GET", "/claims/{claim_id}"): [Case(STOCK, get("/claims/999999"), ok=(404, "CLAIM_NOT_FOUND"))],
    ("GET", "/claims/{claim_id}/images/{n}"): [Case(STOCK, get("/claims/999999/images/1"), ok=(404, "IMAGE_NOT_FOUND"))],
    ("POST", "/claims/{claim_id}/lease"): [Case(STOCK, lambda role, w: ("POST", A + "/claims/999999/lease", {}),
                                                ok=(404, "CLAIM_NOT_FOUND"))],
    ("POST", "/claims/{claim_id}/release"): [Case(STOCK, lambda role, w: ("POST", A + "/claims/999999/release", {}))],
    ("POST", "/claims/bulk/approve"): [Case(STOCK, lambda role, w: ("POST", A + "/claims/bulk/approve",
                                                                    {"json": {"claim_ids": [999999]}}))],
    ("POST", "/claims/{claim_id}/approve"): [Case(STOCK, lambda role, w: ("POST", A + "/claims/999999/approve",
                                                                          {"json": {}}), ok=(404, "CLAIM_NOT_FOUND"))],
    ("POST", "/claims/{claim_id}/reject"): [Case(STOCK, lambda role, w: ("POST", A + "/claims/999999/reject",
                                                                         {"json": {"reason": "矩阵测试"}}),
                                                 ok=(404, "CLAIM_NOT_FOUND"))],
    ("POST", "/claims/{claim_id}/payout"): [Case(STOCK, lambda role, w: ("POST", A + "/claims/999999/payout",
                                                                         {"json": {"reference": "REF12345"}}),
                                                 ok=(404, "CLAIM_NOT_FOUND"))],
    ("POST", "/claims/{claim_id}/reveal"): [Case(STOCK, lambda role, w: ("POST", A + "/claims/999999/reveal", {}),
                                                 ok=(404, "CLAIM_NOT_FOUND"))],
    ("GET", "/sms/outbox"): [Case(MONEY, get("/sms/outbox"), whole_phones=MONEY)],
    ("GET", "/products"): [Case(STOCK, get("/products"))],
    ("POST", "/products"): [Case(MONEY, lambda role, w: ("POST", A + "/products", {"json": {
        "code": f"new_{role}", "name": "新券", "kind": "service_discount", "face_fen": 100}}), ok=201)],
    ("POST", "/stock/imports"): [Case(STOCK, lambda role, w: ("POST", A + "/stock/imports", _codes_file(role)))],
    ("GET", "/stock/imports/{import_id}"): [Case(STOCK, lambda role, w: ("GET", f"{A}/stock/imports/{w.import_id}", {}))],
    ("GET", "/stock/imports/{import_id}/report.csv"): [
        Case(STOCK, lambda role, w: ("GET", f"{A}/stock/imports/{w.import_id}/report.csv", {}))],
    ("GET", "/stock/summary"): [Case(STOCK, get("/stock/summary"))],
    ("GET", "/stock/codes"): [Case(STOCK, get("/stock/codes"))],
    ("POST", "/stock/expiry"): [Case(STOCK, lambda role, w: ("POST", A + "/stock/expiry", {}))],
    ("POST", "/issuances/preview"): [Case(ISSUERS, lambda role, w: ("POST", A + "/issuances/preview", _issue_body(role)),
                                          whole_phones=ISSUERS)],
    ("POST", "/issuances"): [Case(ISSUERS, lambda role, w: ("POST", A + "/issuances", _issue_body(role)),
                                  whole_phones=ISSUERS)],  # the issuer's own list
    ("GET", "/issuances/{batch_id}"): [Case(ISSUERS, lambda role, w: (
        "GET", A + ("/issuances/B-PICC" if role == "insurer" else "/issuances/B-CLERK"), {}), whole_phones=ISSUERS)],
    ("GET", "/orders"): [Case(QUEUE, get("/orders"))],
    ("GET", "/orders/badge"): [Case(QUEUE, lambda role, w: ("GET", A + "/orders/badge",
                                                            {"params": {"since": "2000-01-01T00:00:00+08:00"}}))],
    ("GET", "/orders/{order_id}"): [Case(QUEUE, lambda role, w: ("GET", f"{A}/orders/{_order_for(role, w)}", {}))],
    ("POST", "/orders/{order_id}/actions/{action}"): [  # answers that change nothing, so the order stays "paid"
        Case(QUEUE, lambda role, w: ("POST", f"{A}/orders/{_order_for(role, w)}/actions/cancel",
                                     {"json": {"reason": "矩阵测试"}}), ok=(409, "ORDER_STATE_INVALID"), name="cancel"),
        Case(REFUNDERS, lambda role, w: ("POST", f"{A}/orders/{_order_for(role, w)}/actions/refund",
                                         {"json": {"amount_fen": 10**9, "reason": "矩阵测试"}}),
             ok=(409, "REFUND_EXCEEDS_PAID"), name="refund"),
    ],
    ("GET", "/bouquets"): [Case(FLOWERS, get("/bouquets"))],
    ("POST", "/bouquets"): [Case(MONEY, lambda role, w: ("POST", A + "/bouquets", {"json": {
        "code": f"b-{role}", "name": "红玫瑰", "price_fen": 9900}}), ok=201)],
    ("PATCH", "/bouquets/{code}"): [Case(MONEY, lambda role, w: ("PATCH", A + "/bouquets/none", {"json": {"sort": 1}}),
                                         ok=(404, "BOUQUET_NOT_FOUND"))],
    ("POST", "/bouquets/{code}/image"): [Case(MONEY, lambda role, w: ("POST", A + "/bouquets/none/image", {
        "files": {"file": ("p.png", b"\x89PNG\r\n\x1a\n", "image/png")}}), ok=(404, "BOUQUET_NOT_FOUND"))],
    ("GET", "/staff"): [Case(ADMIN, get("/staff"))],
    ("POST", "/staff"): [Case(ADMIN, lambda role, w: ("POST", A + "/staff", {"json": {
        "username": f"new_{role}", "display_name": "新员工", "password": "New-Staff-2026", "role": "clerk"}}), ok=201)],
    ("PATCH", "/staff/{staff_id}"): [Case(ADMIN, lambda role, w: ("PATCH", A + "/staff/999999", {"json": {"enabled": True}}),
                                          ok=(404, "STAFF_NOT_FOUND"))],
    ("POST", "/orders/next"): [Case(QUEUE, lambda role, w: ("POST", A + "/orders/next", {"params": {"type": "goods"}}))],
    ("POST", "/orders/bulk/{action}"): [Case(QUEUE, lambda role, w: ("POST", A + "/orders/bulk/accept",
                                                                     {"json": {"order_ids": [999999]}}))],
    ("POST", "/orders/{order_id}/case/calls"): [Case(QUEUE, lambda role, w: (
        "POST", f"{A}/orders/{_order_for(role, w)}/case/calls", {"json": {"outcome": "reached"}}),
        ok=(404, "CASE_NOT_FOUND"))],
    ("GET", "/drivers"): [Case(DRIVERS, get("/drivers"))],
    ("POST", "/drivers"): [Case(DRIVERS, lambda role, w: ("POST", A + "/drivers", {"json": {
        "name": f"司机{role}", "phone": f"136{ROLES.index(role):08d}"}}), ok=201)],
    ("PATCH", "/drivers/{driver_id}"): [Case(DRIVERS, lambda role, w: ("PATCH", A + "/drivers/999999", {
        "json": {"status": "off"}}), ok=(404, "DRIVER_NOT_FOUND"))],
    ("GET", "/goods"): [Case(REFUNDERS, get("/goods"))],  # a supplier linked to its supplier: tests/unit/orders/test_goods
    ("POST", "/goods"): [Case(MONEY, lambda role, w: ("POST", A + "/goods", {"json": {
        "code": f"g_{role}", "name": "香薰", "price_fen": 100, "supplier_code": "nobody"}}), ok=(404, "SUPPLIER_NOT_FOUND"))],
    # a supplier linked to its supplier reads and edits its own goods (404 for another's): test_goods_catalogue
    ("GET", "/goods/{code}"): [Case(REFUNDERS, get("/goods/nogoods"), ok=(404, "GOODS_NOT_FOUND"))],
    ("PATCH", "/goods/{code}"): [Case(MONEY, lambda role, w: ("PATCH", A + "/goods/nogoods", {"json": {"on_sale": False}}),
                                      ok=(404, "GOODS_NOT_FOUND"))],
    ("POST", "/goods/{code}/image"): [Case(MONEY, lambda role, w: ("POST", A + "/goods/nogoods/image", {
        "files": {"file": ("p.png", b"\x89PNG\r\n\x1a\n", "image/png")}}), ok=(404, "GOODS_NOT_FOUND"))],
    ("POST", "/shipments/imports"): [Case(REFUNDERS, lambda role, w: ("POST", A + "/shipments/imports", {
        "data": {"dry_run": "true"}, "files": {"file": ("s.csv", "订单号,快递公司,快递单号\nGC1,顺丰,SF1\n".encode(),
                                                        "text/csv")}}))],
    ("GET", "/shipments/imports/{import_id}"): [Case(REFUNDERS, get("/shipments/imports/999999"),
                                                     ok=(404, "SHIPMENT_IMPORT_NOT_FOUND"))],
    ("GET", "/order-sources/{source}/mapping"): [Case(STOCK, get("/order-sources/nosource/mapping"),
                                                      ok=(404, "MAPPING_NOT_FOUND"))],
    ("PUT", "/order-sources/{source}/mapping"): [Case(STOCK, lambda role, w: (
        "PUT", f"{A}/order-sources/s_{role}/mapping", {"json": {"mapping": {
            "external_id": "单号", "phone": "手机", "item": "商品", "amount": "金额"}}}))],
    ("POST", "/orders/imports"): [Case(STOCK, lambda role, w: ("POST", A + "/orders/imports", {
        "data": {"source": "nosource", "dry_run": "true"}, "files": {"file": ("o.csv", b"a,b\n1,2\n", "text/csv")}}),
        ok=(404, "MAPPING_NOT_FOUND"))],
    ("GET", "/orders/imports/{import_id}"): [Case(STOCK, get("/orders/imports/999999"), ok=(404, "IMPORT_NOT_FOUND"))],
    ("GET", "/ledger"): [Case(MONEY, get("/ledger"))],
    ("GET", "/ledger.xlsx"): [Case(MONEY, get("/ledger.xlsx"))],
    # an export is its asker's alone: any signed-in role may ask, a missing (or someone else's) id is 404
    ("GET", "/exports/{export_id}"): [Case(ALL_ROLES, get("/exports/2000000000"), ok=(404, "EXPORT_NOT_FOUND"))],
    ("GET", "/exports/{export_id}/file"): [Case(ALL_ROLES, get("/exports/2000000000/file"),
                                                ok=(404, "EXPORT_NOT_FOUND"))],
    ("GET", "/refunds"): [Case(MONEY, get("/refunds"))],
    ("POST", "/refunds/{refund_id}/sync"): [Case(MONEY, lambda role, w: ("POST", A + "/refunds/999999/sync", {}),
                                                 ok=(404, "REFUND_NOT_FOUND"))],
    ("POST", "/reconciliations"): [Case(MONEY, lambda role, w: ("POST", A + "/reconciliations", {
        "data": {"bill_date": _yesterday()}, "files": {"file": ("bill.csv", b"", "text/csv")}}), ok=201)],
    ("POST", "/reconciliations/fetch"): [Case(MONEY, lambda role, w: ("POST", A + "/reconciliations/fetch",
                                                                      {"json": {"bill_date": _yesterday()}}), ok=201)],
    ("GET", "/reconciliations"): [Case(MONEY, get("/reconciliations"))],
    ("GET", "/reconciliations/{run_id}"): [Case(MONEY, get("/reconciliations/999999"),
                                                ok=(404, "RECONCILIATION_NOT_FOUND"))],
    ("GET", "/jobs"): [Case(MONEY, get("/jobs"))],
    ("POST", "/jobs/{name}/run"): [Case(MONEY, lambda role, w: ("POST", A + "/jobs/payments.refunds/run", {}), ok=202),
                                   Case(MONEY, lambda role, w: ("POST", A + "/jobs/nope/run", {}),
                                        ok=(404, "JOB_NOT_FOUND"), name="unknown")],
}


def admin_routes() -> set[tuple[str, str]]:
    """Every (method, path below /api/v1/admin) the app serves, from FastAPI's own route table."""
    from gc_admin.api import build_api

    out = set()
    for route in iter_route_contexts(build_api().routes):
        path = route.path or ""
        if path.startswith(A + "/"):
            for method in route.methods or ():
                if method != "HEAD":
                    out.add((method, path.removeprefix(A)))
    return out


def test_every_admin_route_has_an_entry():
    served = admin_routes()
    assert served, "no admin routes found: the route table walk is broken"
    assert served - set(ROUTES) == set(), "add these routes to ROUTES (who may call them, what they answer)"
    assert set(ROUTES) - served == set(), "these ROUTES entries no longer exist"


CASES = [(route, i, role) for route, cases in ROUTES.items() for i in range(len(cases)) for role in ROLES]


def _call(w: World, role: str, case: Case, *, token_of: str | None = None):
    method, url, kw = case.request(role, w)
    headers = {} if case.allowed is None else w.auth(token_of or role)
    return w.api.request(method, url, headers=headers, **kw)


@pytest.mark.parametrize("route, i, role", CASES,
                         ids=[f"{m} {p}{'#' + ROUTES[(m, p)][i].name if ROUTES[(m, p)][i].name else ''}-{r}"
                              for (m, p), i, r in CASES])
def test_role_may_or_may_not_call_the_route(world, route, i, role):
    case = ROUTES[route][i]
    resp = _call(world, role, case)
    allowed = case.allowed is None or role in case.allowed
    if not allowed:
        api_error(resp, 403, "FORBIDDEN")
        return
    if isinstance(case.ok, int):
        assert resp.status_code == case.ok, resp.text
    else:
        api_error(resp, *case.ok)
    # nothing whole that this role should not see: phones of other people's lists, the user's login code
    text = resp.text
    if role not in case.whole_phones:
        leaked = [p for p in ALL_PHONES if p in text]
        assert leaked == [], f"{role} sees whole phone numbers in {route}"
    assert world.login_code not in text


def test_signed_out_gets_401_on_every_route_but_login(world):
    for method, path in sorted(ROUTES):
        if (method, path) == ("POST", "/auth/login"):
            continue
        for case in ROUTES[(method, path)]:
            m, url, kw = case.request("admin", world)
            resp = world.api.request(m, url, **kw)
            assert api_error(resp, 401, "UNAUTHORIZED"), (method, path)


# --- row scope --------------------------------------------------------------------------------------

def _coupons_for(product_code: str) -> int:
    with session_scope() as s:
        product = coupons.get_product_by_code(s, product_code)
        return len(s.exec(select(Coupon.id).where(Coupon.product_id == product.id)).all())


def scope_issue(w: World) -> None:
    """An insurer issues only its programme's insurer-funded products, in its own batch-id space."""
    api = w.api
    before = {p: _coupons_for(p) for p in ("plat_promo", "picc_promo", "other_flower")}
    for product in ("plat_promo", "picc_promo", "other_flower"):  # platform-funded / another programme's
        body = {"batch_id": f"X-{product}", "product_code": product, "phones": ["13700000099"]}
        api_error(api.post(A + "/issuances", json=body, headers=w.auth("insurer")), 404, "PRODUCT_NOT_FOUND")
    assert {p: _coupons_for(p) for p in before} == before
    # an insurer account without a programme can do nothing programme-scoped
    body = {"batch_id": "X-none", "product_code": "picc_flower", "phones": ["13700000099"]}
    api_error(api.post(A + "/issuances", json=body, headers=w.auth("insurer_none")), 403, "NO_PROGRAMME")
    # the clerk's batch id with the clerk's very request: not a replay of the clerk's batch, a batch of its own
    body = {"batch_id": "B-SAME", "product_code": "picc_flower", "phones": SAME_PHONES}
    mine = api.post(A + "/issuances", json=body, headers=w.auth("insurer")).json()
    assert mine["replayed"] is False and mine["issued"] == 1
    with session_scope() as s:
        scopes = sorted(b.scope for b in s.exec(select(IssuanceBatch).where(IssuanceBatch.batch_id == "B-SAME")).all())
    assert scopes == ["", "picc_gx"]
    # the same id from the other programme's insurer is its own too, and refused for a product not theirs
    api_error(api.post(A + "/issuances", json=body, headers=w.auth("insurer_other")), 404, "PRODUCT_NOT_FOUND")


def scope_preview(w: World) -> None:
    api = w.api
    for product in ("plat_promo", "picc_promo", "other_flower"):
        body = {"batch_id": "P-1", "product_code": product, "phones": ["13700000099"]}
        api_error(api.post(A + "/issuances/preview", json=body, headers=w.auth("insurer")), 404, "PRODUCT_NOT_FOUND")
    body = {"batch_id": "P-1", "product_code": "picc_flower", "phones": ["13700000099"]}
    api_error(api.post(A + "/issuances/preview", json=body, headers=w.auth("insurer_none")), 403, "NO_PROGRAMME")
    assert api.post(A + "/issuances/preview", json=body, headers=w.auth("insurer")).json()["would_issue"] == 1


def scope_get_issuance(w: World) -> None:
    """An insurer sees only its programme's own batches; everyone else's id is "not found"."""
    api = w.api
    own = api.get(A + "/issuances/B-PICC", headers=w.auth("insurer"))
    assert own.status_code == 200 and [r["phone"] for r in own.json()["rows"]] == PICC_PHONES
    for batch in ("B-CLERK", "B-OTHER"):
        api_error(api.get(f"{A}/issuances/{batch}", headers=w.auth("insurer")), 404, "ISSUANCE_NOT_FOUND")
    api_error(api.get(A + "/issuances/B-PICC", headers=w.auth("insurer_other")), 404, "ISSUANCE_NOT_FOUND")
    api_error(api.get(A + "/issuances/B-PICC", headers=w.auth("insurer_none")), 403, "NO_PROGRAMME")
    # platform staff read the platform's staff batches by id; an insurer's ids are another key space
    assert api.get(A + "/issuances/B-CLERK", headers=w.auth("clerk")).json()["rows"][0]["phone"] == CLERK_PHONES[0]
    api_error(api.get(A + "/issuances/B-OTHER", headers=w.auth("clerk")), 404, "ISSUANCE_NOT_FOUND")


def scope_roster(w: World) -> None:
    """The driver roster is the platform's own, not a dispatcher's: a dispatcher sees the same drivers as a
    manager, and neither sees anything but drivers (no order or user data)."""
    w.api.post(A + "/drivers", json={"name": "范围司机", "phone": "13599990001"}, headers=w.auth("manager"))
    mine = w.api.get(A + "/drivers", params={"limit": 200}, headers=w.auth("dispatcher")).json()
    theirs = w.api.get(A + "/drivers", params={"limit": 200}, headers=w.auth("manager")).json()
    assert mine == theirs and mine["total"] >= 1
    assert {k for d in mine["items"] for k in d} <= {"id", "name", "phone", "phone_masked", "status", "status_label",
                                                     "active", "order_id", "updated_at"}


def scope_orders(w: World) -> None:
    """A dispatcher's queue holds driver orders only."""
    mine = w.api.get(A + "/orders", headers=w.auth("dispatcher")).json()
    assert mine["total"] == 1 and [r["id"] for r in mine["items"]] == [w.driver_order]
    everyone = w.api.get(A + "/orders", headers=w.auth("clerk")).json()
    assert {r["id"] for r in everyone["items"]} == {w.driver_order, w.flower_order}


def scope_badge(w: World) -> None:
    """The dispatcher's badge counts driver orders only (it counted every paid order)."""
    params = {"since": "2000-01-01T00:00:00+08:00"}
    assert w.api.get(A + "/orders/badge", params=params, headers=w.auth("dispatcher")).json() == {"unseen_paid": 1}
    assert w.api.get(A + "/orders/badge", params=params, headers=w.auth("clerk")).json() == {"unseen_paid": 2}


def scope_order(w: World) -> None:
    api_error(w.api.get(f"{A}/orders/{w.flower_order}", headers=w.auth("dispatcher")), 404, "ORDER_NOT_FOUND")
    assert w.api.get(f"{A}/orders/{w.driver_order}", headers=w.auth("dispatcher")).status_code == 200


def scope_act(w: World) -> None:
    with session_scope() as s:
        before = s.get(ServiceOrder, w.flower_order).status
    resp = w.api.post(f"{A}/orders/{w.flower_order}/actions/accept", json={}, headers=w.auth("dispatcher"))
    api_error(resp, 404, "ORDER_NOT_FOUND")
    with session_scope() as s:
        assert s.get(ServiceOrder, w.flower_order).status == before


def scope_next(w: World) -> None:
    """下一单 of another type than a dispatcher's claims nothing."""
    resp = w.api.post(A + "/orders/next", params={"type": "flower"}, headers=w.auth("dispatcher"))
    assert resp.status_code == 200 and resp.json() == {"order": None}
    with session_scope() as s:
        assert s.get(ServiceOrder, w.flower_order).claimed_by is None


def scope_bulk(w: World) -> None:
    resp = w.api.post(A + "/orders/bulk/accept", json={"order_ids": [w.flower_order]}, headers=w.auth("dispatcher"))
    assert resp.status_code == 200 and resp.json()["items"][0]["error"]["code"] == "ORDER_NOT_FOUND"
    with session_scope() as s:
        assert s.get(ServiceOrder, w.flower_order).status == "paid"


def scope_case_call(w: World) -> None:
    resp = w.api.post(f"{A}/orders/{w.flower_order}/case/calls", json={"outcome": "reached"},
                      headers=w.auth("dispatcher"))
    api_error(resp, 404, "ORDER_NOT_FOUND")


def scope_exports(w: World) -> None:
    """The manager's ledger export (built by the exports.build task) is the manager's: every other staff member,
    row-scoped or not, gets the same 404 as for an id that is not one; the manager reads it, and its file went
    with the one download."""
    from gc_admin.core.models import ExportJob

    assert w.api.get(A + "/ledger.xlsx", headers=w.auth("manager")).content[:2] == b"PK"
    with session_scope() as s:
        export_id = s.exec(select(ExportJob.id).order_by(ExportJob.id.desc())).first()  # type: ignore[union-attr]
    for other in sorted(set(w.tokens) - {"manager"}):
        api_error(w.api.get(f"{A}/exports/{export_id}", headers=w.auth(other)), 404, "EXPORT_NOT_FOUND")
        api_error(w.api.get(f"{A}/exports/{export_id}/file", headers=w.auth(other)), 404, "EXPORT_NOT_FOUND")
    mine = w.api.get(f"{A}/exports/{export_id}", headers=w.auth("manager")).json()
    assert (mine["kind"], mine["status"], mine["downloaded"]) == ("ledger", "done", True)
    api_error(w.api.get(f"{A}/exports/{export_id}/file", headers=w.auth("manager")), 410, "EXPORT_GONE")


def no_rows(w: World) -> None:
    """The route returns no one's rows (e.g. the caller's own account)."""


ROW_SCOPE: dict[tuple[str, str], Callable[[World], None]] = {
    ("GET", "/me"): no_rows,
    ("GET", "/exports/{export_id}"): scope_exports,
    ("GET", "/exports/{export_id}/file"): scope_exports,
    ("POST", "/issuances/preview"): scope_preview,
    ("POST", "/issuances"): scope_issue,
    ("GET", "/issuances/{batch_id}"): scope_get_issuance,
    ("GET", "/orders"): scope_orders,
    ("GET", "/orders/badge"): scope_badge,
    ("GET", "/orders/{order_id}"): scope_order,
    ("POST", "/orders/{order_id}/actions/{action}"): scope_act,
    ("POST", "/orders/next"): scope_next,
    ("POST", "/orders/bulk/{action}"): scope_bulk,
    ("POST", "/orders/{order_id}/case/calls"): scope_case_call,
    ("GET", "/drivers"): scope_roster,
    ("POST", "/drivers"): scope_roster,
    ("PATCH", "/drivers/{driver_id}"): scope_roster,
}


def test_routes_open_to_row_scoped_roles_declare_their_row_scope():
    needs = {route for route, cases in ROUTES.items() for c in cases
             if c.allowed is not None and c.allowed & ROW_SCOPED_ROLES}
    assert needs - set(ROW_SCOPE) == set(), "say how these routes keep a row-scoped role to its own rows"


@pytest.mark.parametrize("route", sorted(ROW_SCOPE), ids=[f"{m} {p}" for m, p in sorted(ROW_SCOPE)])
def test_row_scope(world, route):
    ROW_SCOPE[route](world)


def test_insurer_without_programme_may_still_sign_in_and_see_who_it_is(world):
    me = world.api.get(A + "/me", headers=world.auth("insurer_none")).json()
    assert me["role"] == "insurer" and me["programme_code"] is None
    assert world.api.get(A + "/me", headers=world.auth("insurer")).json()["programme_code"] == "picc_gx"

