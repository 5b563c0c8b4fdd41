"""Third-party order import over HTTP, on SQLite and PostgreSQL: the mapping is saved once per source and
edited; a preview writes nothing; bad rows are reported and good ones imported in one set-based
transaction; replaying the file (or two clerks importing it at once) imports nothing twice; imported
orders join the staff queue."""

from __future__ import annotations

import pytest

from tests.support import api_error, race, rows, scalar, staff_headers

pytestmark = pytest.mark.usefixtures("any_db")

A = "/api/v1/admin"
MAPPING = {"external_id": "订单编号", "phone": "买家手机", "item": "商品", "amount": "实付金额", "quantity": "件数",
           "city": "收货城市"}
SHEET = ("订单编号,买家手机,商品,实付金额,件数,收货城市\n"
         "MT001,13812340001,车载香薰,128.00,1,南宁市\n"
         "MT002,13812340002,坭兴陶杯,30,2,柳州\n"
         "MT003,12345,坭兴陶杯,30,1,柳州\n"          # bad phone
         "MT004,13812340004,坭兴陶杯,abc,1,柳州\n"   # bad amount
         "MT002,13812340002,坭兴陶杯,30,2,柳州\n"    # duplicate in the sheet
         "MT005,13812340001,香薰补充液,20.5,1,\n").encode()


@pytest.fixture
def clerk(api, make_staff):
    make_staff("chen", "clerk")
    make_staff("kefu", "service")
    headers = staff_headers(api, "chen")
    saved = api.put(A + "/order-sources/meituan/mapping", json={"mapping": MAPPING}, headers=headers)
    assert saved.status_code == 200, saved.text
    return headers


def _post(api, headers, data: bytes, dry_run: bool, source: str = "meituan"):
    return api.post(A + "/orders/imports", data={"source": source, "dry_run": str(dry_run).lower()},
                    files={"file": ("美团订单.csv", data, "text/csv")}, headers=headers)


def test_mapping_saved_and_edited(api, clerk) -> None:
    got = api.get(A + "/order-sources/meituan/mapping", headers=clerk).json()
    assert got["mapping"] == MAPPING and got["default_type"] == "goods"
    api_error(api.put(A + "/order-sources/meituan/mapping", json={"mapping": {"phone": "手机"}}, headers=clerk),
              422, "INVALID_MAPPING")
    api_error(api.get(A + "/order-sources/jd/mapping", headers=clerk), 404, "MAPPING_NOT_FOUND")
    edited = api.put(A + "/order-sources/meituan/mapping", json={"mapping": {**MAPPING, "amount": "金额"},
                                                                  "default_type": "flower"}, headers=clerk)
    assert edited.json()["mapping"]["amount"] == "金额" and edited.json()["default_type"] == "flower"
    api_error(_post(api, clerk, SHEET, True), 422, "MISSING_COLUMN")  # the file has no 金额 column
    api_error(api.get(A + "/order-sources/meituan/mapping", headers=staff_headers(api, "kefu")), 403, "FORBIDDEN")


def test_bad_rows_reported_good_rows_kept_and_replay_imports_nothing(api, clerk) -> None:
    preview = _post(api, clerk, SHEET, True).json()
    assert (preview["rows"], preview["imported"], preview["duplicates"], preview["failed"]) == (6, 3, 0, 3)
    assert [r["outcome"] for r in preview["items"]] == ["ok", "ok", "error", "error", "error", "ok"]
    assert [r["line"] for r in preview["items"] if r["outcome"] == "error"] == [4, 5, 6]
    assert scalar("SELECT count(*) FROM service_order") == 0  # the preview wrote nothing

    done = _post(api, clerk, SHEET, False).json()
    assert (done["imported"], done["duplicates"], done["failed"]) == (3, 0, 3) and done["import_id"]
    got = rows("SELECT external_id, type, status, list_fen, paid_fen, city FROM service_order "
               "WHERE source = 'meituan' ORDER BY external_id")
    assert got == [("MT001", "goods", "paid", 12_800, 0, "南宁"), ("MT002", "goods", "paid", 3_000, 0, "柳州"),
                   ("MT005", "goods", "paid", 2_050, 0, None)]
    assert scalar("SELECT count(*) FROM mp_user") == 2  # 13812340001 once, for two orders
    assert scalar("SELECT count(*) FROM order_event WHERE action = 'import'") == 3
    queue = api.get(A + "/orders", params={"status": "paid"}, headers=clerk).json()
    assert queue["total"] == 3 and {r["summary"] for r in queue["items"]} >= {"车载香薰×1", "坭兴陶杯×2"}

    again = _post(api, clerk, SHEET, False).json()
    assert (again["imported"], again["duplicates"], again["failed"]) == (0, 3, 3)
    assert scalar("SELECT count(*) FROM service_order") == 3
    # an imported order has no WeChat Pay money here to refund: the channel refunds it
    oid = scalar("SELECT id FROM service_order WHERE external_id = 'MT001'")
    make = api.post(f"{A}/orders/{oid}/actions/refund", json={"amount_fen": 100, "reason": "x"}, headers=clerk)
    api_error(make, 409, "NOTHING_TO_REFUND")


def test_two_imports_of_the_same_file_at_once_import_each_order_once(api, clerk) -> None:
    answers = race(3, lambda i: _post(api, clerk, SHEET, False))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sum(a.json()["imported"] for a in answers) == 3
    assert scalar("SELECT count(*) FROM service_order") == 3
