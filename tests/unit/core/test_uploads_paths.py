"""Every upload path goes through the upload gate: the stock import (admin API, 券库存 page, service), the
issuance phone file (发券 page, its reader) and the trade bill (admin API, 流水与对账 page, service) refuse
each hostile file of ``core/test_uploads`` with its code before any parser runs and import nothing; a body over
the cap is refused before it is read; and a parse runs off the event loop, so others are served meanwhile.
"""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
import reflex as rx

from gc_admin.config import get_settings
from gc_admin.core.errors import InvalidInput
from gc_admin.coupons import service
from gc_admin.coupons.issuance import files as phone_files
from gc_admin.coupons.issuance.state import IssuanceState
from gc_admin.coupons.stock import importer
from gc_admin.coupons.stock.state import StockCodesState, StockImportState
from gc_admin.db import session_scope
from gc_admin.payments import reconcile
from gc_admin.payments.state import ReconcileState
from tests.support import (
    SETUP,
    drain,
    run,
    scalar,
    sign_in,
    staff_headers,
    state_of,
    toasts,
    upload_chunks,
    upload_file,
)
from tests.unit.core.test_uploads import HOSTILE, MB, refusal

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

pytestmark = pytest.mark.usefixtures("private_uploads")  # staging files go to the test's own folder


def catalogue() -> None:
    """A code product with one code in stock (imported, so one import on record)."""
    with session_scope() as s:
        service.create_product(s, actor=SETUP, code="tpp50", name="淘票票通兑券 50 元", kind="redemption_code",
                               face_fen=5000, cost_fen=4200, supplier="淘票票")
        service.import_codes(s, actor=SETUP, product_code="tpp50", data=b"code,expires_at\nKEEP1,2099-12-31\n")


@pytest.fixture
def staff(make_staff):
    make_staff("mgr", "manager")
    make_staff("chen", "clerk")
    catalogue()


def imported() -> dict[str, int]:
    """What an upload could have put in: codes, successful imports, reconciliation runs."""
    return {"stock_code": scalar("SELECT count(*) FROM stock_code"),
            "done_imports": scalar("SELECT count(*) FROM stock_import WHERE status = 'done'"),
            "reconciliation_run": scalar("SELECT count(*) FROM reconciliation_run")}


def _type(name: str) -> str:
    return XLSX if name.endswith("xlsx") else CSV


def _file(name: str) -> rx.UploadFile:
    """What Reflex hands a page's upload handler."""
    return upload_file(HOSTILE[name][0](), f"{name}.{name.rsplit('_', 1)[-1]}")


NAMES = list(HOSTILE)


# --- admin API --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_admin_api_stock_import_refuses_hostile_files_unparsed(staff, api, name):
    build, code = HOSTILE[name]
    before = imported()
    r = api.post("/api/v1/admin/stock/imports", headers=staff_headers(api, "chen"), data={"product_code": "tpp50"},
                 files={"file": (f"{name}.dat", build(), _type(name))})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == {"code": code, "message": refusal(build()).message,
                                 "details": r.json()["error"]["details"]}
    assert imported() == before
    failed = api.get(f"/api/v1/admin/stock/imports/{r.json()['error']['details']['import_id']}",
                     headers=staff_headers(api, "chen")).json()
    assert (failed["status"], failed["imported"]) == ("failed", 0)  # the refusal is on record, nothing else


@pytest.mark.parametrize("name", NAMES)
def test_admin_api_trade_bill_refuses_hostile_files_unparsed(staff, api, name):
    build, code = HOSTILE[name]
    before = imported()
    r = api.post("/api/v1/admin/reconciliations", headers=staff_headers(api, "mgr"),
                 files={"file": (f"{name}.csv", build(), _type(name))})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == {"code": code, "message": refusal(build()).message}
    assert imported() == before


def test_a_body_over_the_cap_is_refused_before_it_is_read(staff, api, monkeypatch):
    monkeypatch.setenv("GC_UPLOAD_MAX_MB", "1")
    get_settings.cache_clear()
    before = imported()
    big = b"code,expires_at\n" + b"TPP0000000000001,2099-12-31\n" * 110_000  # 3 MB
    too_large = {"code": "UPLOAD_TOO_LARGE", "message": "文件超过 1 MB 上限，请拆分成几个较小的文件后分批上传"}
    for path, headers in (("/api/v1/admin/stock/imports", staff_headers(api, "chen")),  # signed in
                          ("/api/v1/admin/stock/imports", {}),  # or not: the size is judged before anything
                          ("/api/v1/admin/reconciliations", staff_headers(api, "mgr")),
                          ("/_upload", {})):  # the dashboard's own upload endpoint is mounted inside this app
        r = api.post(path, headers=headers, data={"product_code": "tpp50"}, files={"file": ("big.csv", big, CSV)})
        assert (r.status_code, r.json()) == (413, {"error": too_large}), path
    # under the transport's allowance for form fields, still over the cap: the route refuses it unparsed
    r = api.post("/api/v1/admin/stock/imports", headers=staff_headers(api, "chen"), data={"product_code": "tpp50"},
                 files={"file": ("big.csv", big[:1_400_000], CSV)})
    assert (r.status_code, r.json()) == (413, {"error": too_large})
    assert imported() == before and scalar("SELECT count(*) FROM stock_import") == 1  # the fixture's


def test_a_streamed_body_without_a_length_is_cut_off_at_the_cap(staff, api, monkeypatch):
    monkeypatch.setenv("GC_UPLOAD_MAX_MB", "1")
    get_settings.cache_clear()
    from gc_admin.api import build_api

    app = build_api()
    sent = []

    async def body():
        head = (b'--b\r\nContent-Disposition: form-data; name="product_code"\r\n\r\ntpp50\r\n--b\r\nContent-Disposition: '
                b'form-data; name="file"; filename="x.csv"\r\nContent-Type: text/csv\r\n\r\ncode,expires_at\n')
        yield head
        for _ in range(64):  # 64 MB if nobody stops it
            sent.append(1)
            yield b"TPP0000000000001,2099-12-31\n" * 37_450

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            login = await c.post("/api/v1/admin/auth/login", json={"username": "chen", "password": "secret2026"})
            headers = {"Authorization": f"Bearer {login.json()['token']}", "content-type": "multipart/form-data; boundary=b"}
            try:
                return await c.post("/api/v1/admin/stock/imports", headers=headers, content=body())
            except Exception as exc:  # the app stopped reading: some transports surface that as an error
                return exc

    before = imported()
    result = run(scenario())
    assert not (isinstance(result, httpx.Response) and result.status_code < 400), result
    assert len(sent) < 64 and imported() == before


# --- the dashboard ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_stock_page_import_refuses_hostile_files_unparsed(staff, name):
    data = HOSTILE[name][0]()
    before = imported()

    async def scenario():
        imp = await state_of(StockImportState, sign_in("chen"))
        await imp.load()
        imp.product_code = "tpp50"
        events = await drain(StockImportState.import_file.fn(imp, await upload_chunks(data, f"{name}.dat", MB)))
        return imp, events

    imp, events = run(scenario())
    message = refusal(data).message
    assert imp.error == message and not imp.busy
    assert ("error", f"导入失败：{message}") in toasts(events)
    assert imported() == before


@pytest.mark.parametrize("name", NAMES)
def test_issuance_page_phone_file_refuses_hostile_files_unparsed(staff, name):
    async def scenario():
        iss = await state_of(IssuanceState, sign_in("chen"))
        await iss.load()
        events = await drain(iss.upload_phones([_file(name)]))
        return iss, events

    iss, events = run(scenario())
    message = refusal(HOSTILE[name][0]()).message
    assert iss.error == message and iss.file_token == "" and iss.file_count == 0
    assert ("error", message) in toasts(events)
    with pytest.raises(InvalidInput) as err:
        phone_files.read_phone_file(HOSTILE[name][0](), filename=name)
    assert err.value.code == HOSTILE[name][1]


@pytest.mark.parametrize("name", NAMES)
def test_ledger_page_trade_bill_refuses_hostile_files_unparsed(staff, name):
    before = imported()

    async def scenario():
        rec = await state_of(ReconcileState, sign_in("mgr"))
        await rec.load()
        events = await drain(rec.upload_bill([_file(name)]))
        return rec, events

    rec, events = run(scenario())
    message = refusal(HOSTILE[name][0]()).message
    assert rec.error == message and not rec.busy
    assert ("error", f"对账失败：{message}") in toasts(events)
    assert imported() == before


# --- the services the pages and the API call (SQLite and PostgreSQL) --------------------------

@pytest.mark.parametrize("name", NAMES)
def test_services_refuse_hostile_files_and_store_nothing(any_db, name):
    catalogue()
    build, code = HOSTILE[name]
    before = imported()
    with pytest.raises(InvalidInput) as err:
        with session_scope() as s:
            service.import_codes(s, actor=SETUP, product_code="tpp50", data=build(), filename=name)
    assert err.value.code == code
    with pytest.raises(InvalidInput) as err:
        with session_scope() as s:
            reconcile.reconcile_trade_bill(s, data=build(), actor=SETUP, filename=name)
    assert err.value.code == code
    assert imported() == before


# --- one upload does not stall the others -----------------------------------------------------

def _held_parse(monkeypatch) -> tuple[threading.Event, threading.Event, list[str]]:
    """Hold every codes-file parse half-way (file read, rows not yet checked) until ``release``."""
    started, release, order = threading.Event(), threading.Event(), []
    real = importer._rows

    def held(*args, **kwargs):
        started.set()
        assert release.wait(120), "nothing else was served while the parse was held: it blocks the event loop"
        out = real(*args, **kwargs)
        order.append("parsed")
        return out

    monkeypatch.setattr(importer, "_rows", held)
    return started, release, order


LEGAL = b"code,expires_at\n" + b"".join(b"BIG%07d,2099-12-31\n" % i for i in range(200_000))


def test_health_answers_while_an_api_import_is_being_parsed(staff, monkeypatch):
    from gc_admin.api import build_api

    started, release, order = _held_parse(monkeypatch)
    app = build_api()

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            login = await c.post("/api/v1/admin/auth/login", json={"username": "chen", "password": "secret2026"})
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            upload_task = asyncio.create_task(c.post("/api/v1/admin/stock/imports", headers=headers,
                                                     data={"product_code": "tpp50"},
                                                     files={"file": ("big.csv", LEGAL, CSV)}))
            assert await asyncio.to_thread(started.wait, 120)  # the parse is running in its worker
            health = await c.get("/api/v1/health")
            order.append("health")
            release.set()
            return health, await upload_task

    health, imported_ = run(scenario())
    assert health.json()["status"] == "ok" and order == ["health", "parsed"]
    assert imported_.status_code == 200 and imported_.json()["imported"] == 200_000


def test_the_stock_page_serves_others_while_an_import_is_being_parsed(staff, monkeypatch):
    started, release, order = _held_parse(monkeypatch)

    async def scenario():
        imp = await state_of(StockImportState, sign_in("chen"))
        await imp.load()
        imp.product_code = "tpp50"
        task = asyncio.create_task(drain(StockImportState.import_file.fn(imp, await upload_chunks(LEGAL, "big.csv", MB))))
        assert await asyncio.to_thread(started.wait, 120)
        other = await state_of(StockCodesState, sign_in("mgr"))  # another clerk's page loads meanwhile
        await other.load()
        order.append(f"other page: {other.total}")
        release.set()
        await task
        return imp

    imp = run(scenario())
    assert order == ["other page: 1", "parsed"]
    assert imp.report["imported"] == "200,000" and imp.error == ""
