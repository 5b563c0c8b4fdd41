"""The audit rows a task writes name the caller as the request's own rows do — who, and from which address: the
row the task acts from (a stock import, a batch, an order import) keeps the uploader's IP."""

from __future__ import annotations

import pytest

from gc_admin import tasks as _registry  # noqa: F401  (every task registered, as in the app)
from gc_admin.core.principal import Actor
from gc_admin.coupons.issuance import flows as issuance
from gc_admin.db import session_scope
from gc_admin.orders.imports import flows as order_imports
from gc_admin.orders.imports import service as order_import_service
from tests.support import rows, staff_headers
from tests.unit.coupons.support import codes_csv, setup_catalogue
from tests.unit.orders.test_imports import MAPPING, SHEET

pytestmark = pytest.mark.usefixtures("any_db")

CLERK = Actor("staff", "7", "李内勤", "203.0.113.9")


def test_a_stock_import_s_audit_row_names_the_uploader_and_the_request_s_address(api, make_staff):
    setup_catalogue()
    make_staff("chen", "clerk")
    sent = api.post("/api/v1/admin/stock/imports", headers=staff_headers(api, "chen"), data={"product_code": "tpp50"},
                    files={"file": ("s.csv", codes_csv([(f"IP{i:06d}", 90) for i in range(3)]), "text/csv")})
    assert sent.status_code == 200, sent.text
    assert rows("SELECT actor_type, actor_name, ip FROM audit_log WHERE action = 'stock.imported'") == [
        ("staff", "chen", "testclient")]  # the test client's address, as every request's audit row has it


def test_a_batch_and_an_order_import_name_the_caller_s_address(db):
    setup_catalogue()
    from gc_admin.coupons.stock import service as stock

    with session_scope() as s:
        stock.import_codes(s, actor=CLERK, product_code="tpp50", data=codes_csv([(f"IB{i:06d}", 90) for i in range(3)]))
        order_import_service.save_mapping(s, actor=CLERK, source="meituan", mapping=MAPPING)
    issuance.issue(actor=CLERK, source="staff", batch_id="B-IP", product_code="tpp50", phones=["13800000001"])
    order_imports.import_file(actor=CLERK, source="meituan", data=SHEET, filename="m.csv")
    assert rows("SELECT action, actor_id, actor_name, ip FROM audit_log WHERE action IN "
                "('coupon.issued', 'orders.imported') ORDER BY id") == [
        ("coupon.issued", "7", "李内勤", "203.0.113.9"), ("orders.imported", "7", "李内勤", "203.0.113.9")]


def test_a_shipments_import_s_audit_rows_name_the_supplier_s_address(api, make_staff):
    from tests.unit.orders.goods_support import ship_sheet, shipping_world

    heads, made, _mug = shipping_world(api, make_staff)
    sent = api.post("/api/v1/admin/shipments/imports", data={"dry_run": "false"}, headers=heads["sup"],
                    files={"file": ("发货.csv", ship_sheet([(made[0]["order_no"], "顺丰速运", "SF001")]), "text/csv")})
    assert sent.status_code == 200 and sent.json()["to_ship"] == 1, sent.text
    shipped = rows("SELECT actor_name, ip FROM audit_log WHERE action = 'order.ship'")
    assert shipped and all(ip == "testclient" for _name, ip in shipped), shipped
