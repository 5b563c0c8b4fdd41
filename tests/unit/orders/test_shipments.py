"""Shipping by sheet (批量发货) over HTTP, on SQLite and PostgreSQL: a dry run previews row by row and ships
nothing; applying ships the good rows and reports the bad ones; re-uploading the same sheet ships nothing
twice; a supplier's sheet cannot touch another supplier's orders."""

from __future__ import annotations

import pytest

from tests.support import api_error, scalar, staff_headers
from tests.unit.orders.goods_support import ship_sheet as _sheet
from tests.unit.orders.goods_support import shipping_world

pytestmark = pytest.mark.usefixtures("any_db")

A = "/api/v1/admin"


@pytest.fixture
def world(api, make_staff):
    return shipping_world(api, make_staff)


def _post(api, headers, data: bytes, dry_run: bool):
    return api.post(A + "/shipments/imports", data={"dry_run": str(dry_run).lower()},
                    files={"file": ("发货.csv", data, "text/csv")}, headers=headers)


def test_dry_run_apply_and_replay(api, world) -> None:
    heads, made, mug = world
    sheet = _sheet([(made[0]["order_no"], "顺丰速运", "SF001"), (made[1]["order_no"].lower(), "中通", "ZT002"),
                    (mug["order_no"], "顺丰速运", "SF003"), ("GC000", "顺丰速运", "SF004"),
                    (made[2]["order_no"], "", "SF005"), (made[0]["order_no"], "顺丰速运", "SF006")])
    preview = _post(api, heads["sup"], sheet, True)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert (body["dry_run"], body["rows"], body["to_ship"], body["skipped"], body["failed"]) == (True, 6, 2, 0, 4)
    assert [r["outcome"] for r in body["items"]] == ["ship", "ship", "error", "error", "error", "error"]
    assert body["items"][2]["message"] == "订单不存在"  # another supplier's order reads as missing
    assert body["items"][2]["order_id"] is None
    assert scalar("SELECT count(*) FROM service_order WHERE status = 'shipped'") == 0  # the dry run wrote nothing
    assert scalar("SELECT count(*) FROM shipment_import") == 0

    applied = _post(api, heads["sup"], sheet, False).json()
    assert (applied["to_ship"], applied["skipped"], applied["failed"]) == (2, 0, 4)
    assert [r["outcome"] for r in applied["items"][:2]] == ["shipped", "shipped"]
    assert scalar("SELECT count(*) FROM service_order WHERE status = 'shipped'") == 2
    seen = api.get(f"{A}/orders/{made[1]['id']}", headers=heads["sup"]).json()
    assert (seen["fulfilment"]["carrier"], seen["fulfilment"]["tracking_no"]) == ("中通", "ZT002")

    again = _post(api, heads["sup"], sheet, False).json()
    assert (again["to_ship"], again["skipped"]) == (0, 2)
    assert scalar("SELECT count(*) FROM order_event WHERE action = 'ship'") == 2  # nothing shipped twice
    changed = _post(api, heads["sup"], _sheet([(made[0]["order_no"], "顺丰速运", "SF999")]), True).json()
    assert changed["items"][0]["outcome"] == "error" and "SF001" in changed["items"][0]["message"]


def test_who_may_ship_by_sheet(api, world, make_staff) -> None:
    heads, made, _ = world
    sheet = _sheet([(made[0]["order_no"], "顺丰速运", "SF001")])
    other = _post(api, heads["sup2"], sheet, False).json()
    assert other["to_ship"] == 0 and other["items"][0]["message"] == "订单不存在"
    assert scalar("SELECT status FROM service_order WHERE id = :i", i=made[0]["id"]) == "paid"
    make_staff("daijia", "dispatcher")
    api_error(_post(api, staff_headers(api, "daijia"), sheet, True), 403, "FORBIDDEN")
    clerk = _post(api, heads["chen"], sheet, False).json()  # platform staff ship any supplier's orders
    assert clerk["to_ship"] == 1
    api_error(_post(api, heads["chen"], b"a,b\n1,2\n", True), 422, "MISSING_COLUMN")
