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
    # no 实付金额 column mapped: what the channel collected is the order amount
    assert got == [("MT001", "goods", "paid", 12_800, 12_800, "南宁"), ("MT002", "goods", "paid", 3_000, 3_000, "柳州"),
                   ("MT005", "goods", "paid", 2_050, 2_050, None)]
    assert scalar("SELECT count(*) FROM mp_user") == 2  # 13812340001 once, for two orders
    assert scalar("SELECT count(*) FROM order_event WHERE action = 'import'") == 3
    queue = api.get(A + "/orders", params={"status": "paid"}, headers=clerk).json()
    assert queue["total"] == 3 and {r["summary"] for r in queue["items"]} >= {"车载香薰×1", "坭兴陶杯×2"}

    again = _post(api, clerk, SHEET, False).json()
    assert (again["imported"], again["duplicates"], again["failed"]) == (0, 3, 3)
    assert scalar("SELECT count(*) FROM service_order") == 3
    # the channel collected the money: the channel refunds it, not WeChat Pay here
    oid = scalar("SELECT id FROM service_order WHERE external_id = 'MT001'")
    make = api.post(f"{A}/orders/{oid}/actions/refund", json={"amount_fen": 100, "reason": "x"}, headers=clerk)
    assert "原渠道" in api_error(make, 409, "CHANNEL_ORDER")
    assert api.get(f"{A}/orders/{oid}", headers=clerk).json()["refundable_fen"] == 0
    assert scalar("SELECT count(*) FROM refund") == 0


PAID_SHEET = ("订单编号,买家手机,商品,订单金额,实付,收货城市\n"
              "JD001,13812340011,车载香薰,128.00,99.90,桂林\n"
              "JD002,13812340012,坭兴陶杯,30,,柳州\n"        # no paid amount: the order amount
              "JD003,13812340013,坭兴陶杯,30,31,柳州\n"      # paid more than the order: refused
              "JD004,13812340014,坭兴陶杯,30,abc,柳州\n").encode()


def test_imported_orders_carry_their_paid_amount_on_the_board_and_in_the_export(api, clerk) -> None:
    from gc_admin.db import session_scope
    from gc_admin.orders import service as orders
    from gc_admin.orders.kanban import service as kanban
    from gc_admin.orders.kanban.state import card_view
    from gc_admin.core.clock import utcnow

    mapping = {"external_id": "订单编号", "phone": "买家手机", "item": "商品", "amount": "订单金额", "paid": "实付",
               "city": "收货城市"}
    assert api.put(A + "/order-sources/jd/mapping", json={"mapping": mapping}, headers=clerk).status_code == 200
    done = _post(api, clerk, PAID_SHEET, False, source="jd").json()
    assert (done["imported"], done["failed"]) == (2, 2), done
    assert [r["message"] for r in done["items"] if r["outcome"] == "error"] == [
        "实付金额不能大于订单金额", "实付金额需为不小于 0 的金额（元，最多两位小数）"]
    assert rows("SELECT external_id, list_fen, payable_fen, paid_fen FROM service_order ORDER BY external_id") == [
        ("JD001", 12_800, 9_990, 9_990), ("JD002", 3_000, 3_000, 3_000)]
    oid = scalar("SELECT id FROM service_order WHERE external_id = 'JD001'")
    seen = api.get(f"{A}/orders/{oid}", headers=clerk).json()
    assert (seen["paid_fen"], seen["details"]["channel_paid_fen"], seen["details"]["source"]) == (9_990, 9_990, "jd")
    with session_scope() as s:
        scope = orders.scope_for("clerk")
        paid = kanban.column(s, status="paid", filters=kanban.BoardFilters.within(scope, city="桂林"))
        cards = [card_view(c, scope=scope, me="0", now=utcnow()) for c in paid.cards]
        frame = orders.orders_frame(s, status="paid")
    assert [(c["type_label"], c["amount"], c["essentials"], c["city"]) for c in cards] == [
        ("实物", "¥99.90", "车载香薰×1", "桂林")]
    assert sorted(frame["已付（分）"].to_list()) == [3_000, 9_990]


def test_two_imports_of_the_same_file_at_once_import_each_order_once(api, clerk) -> None:
    answers = race(3, lambda i: _post(api, clerk, SHEET, False))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sum(a.json()["imported"] for a in answers) == 3
    assert scalar("SELECT count(*) FROM service_order") == 3
