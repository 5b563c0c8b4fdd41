"""The production shape, as real processes: PostgreSQL + Redis + several workers, and two instances behind the
repo's nginx config. Slow (they build and start real servers): one instance started as the README says
(``GC_DATABASE_URL=… GC_REDIS_URL=… GC_WORKERS=3 scripts/run.sh``) serves the journeys; a second, backend-only
instance joins it behind nginx. Each request opens its own connection, so the kernel hands it to any worker:
the journeys only pass if everything they rely on (sessions, simulators, throttles) is shared."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e import cluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (cluster.PG_URL and cluster.REDIS_URL),
                       reason="GC_TEST_PG_URL and GC_TEST_REDIS_URL are needed for the production shape"),
]

PHONE_COUPON, PHONE_COUPON2, PHONE_BUYER, PHONE_BUYER2 = "13977001001", "13977001011", "13977001002", "13977001012"
CLERK_PHONE = "13600000001"
BUY3 = {"type": "coupon_purchase", "product_code": "tpp50", "quantity": 3}


class Journey:
    """An HTTP client that opens a new connection per request and tags each with a request id."""

    def __init__(self, base_url: str, name: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60, limits=httpx.Limits(max_keepalive_connections=0))
        self.name, self.ids, self.secrets = name, [], set()

    def _headers(self, headers) -> dict[str, str]:
        rid = f"{self.name}-{uuid.uuid4().hex[:16]}"
        self.ids.append(rid)
        return {**(headers or {}), "X-Request-Id": rid}

    def get(self, path: str, headers=None, **kw) -> httpx.Response:
        return self.http.get(path, headers=self._headers(headers), **kw)

    def post(self, path: str, headers=None, **kw) -> httpx.Response:
        return self.http.post(path, headers=self._headers(headers), **kw)


@pytest.fixture(scope="module")
def world() -> Iterator[dict]:
    """A PostgreSQL database with a catalogue (tpp50 on sale, 30 codes) and two staff accounts: the demo loader
    then leaves it alone. Afterwards the database is dropped and the Redis database flushed."""
    from gc_admin.accounts.service import create_staff
    from gc_admin.config import get_settings
    from gc_admin.db import session_scope
    from tests.support import SETUP, PASSWORD, rows, use_database
    from tests.unit.orders.support import shop

    saved = os.environ.get("GC_DATABASE_URL")
    cluster.flush_redis()
    with cluster.pg_database() as url:
        use_database(url)
        shop(codes=30)
        with session_scope() as s:
            create_staff(s, actor=SETUP, username="chen", display_name="陈", password=PASSWORD, role="clerk",
                         phone=CLERK_PHONE)
            create_staff(s, actor=SETUP, username="mgr", display_name="王", password=PASSWORD, role="manager")
        codes = [c for (c,) in rows("SELECT code FROM stock_code")]
        try:
            yield {"url": url, "codes": codes, "proxy_port": cluster.free_port()}
        finally:
            if saved is None:
                os.environ.pop("GC_DATABASE_URL", None)
            else:
                os.environ["GC_DATABASE_URL"] = saved
            get_settings.cache_clear()
            cluster.flush_redis()


@pytest.fixture(scope="module")
def three_workers(world) -> Iterator[cluster.App]:
    app = cluster.start("three-workers", world["url"], workers=3, origins=[_proxy_origin(world)])
    try:
        yield app
    finally:
        app.stop()


def _proxy_origin(world: dict) -> str:
    """Where the browser opens the dashboard in the nginx test: the websocket's Origin must be allowed."""
    return f"http://127.0.0.1:{world['proxy_port']}"


def _workers_of(app: cluster.App, request_ids: list[str]) -> dict[str, str]:
    wanted = set(request_ids)
    return {r["request_id"]: r["worker"] for r in app.log_records()
            if r.get("logger") == "gc_admin.access" and r.get("request_id") in wanted}


def test_health_names_the_worker_and_requests_spread_over_workers(three_workers):
    seen = set()
    for _ in range(30):
        body = httpx.get(three_workers.url("/api/v1/health"), timeout=30, headers={"Connection": "close"}).json()
        assert body["status"] == "ok" and body["database"] == {"kind": "postgresql", "ok": True}
        assert body["redis"] == {"configured": True, "kind": "redis", "ok": True}
        seen.add(body["worker"])
        if len(seen) >= 2:
            break
    assert len(seen) >= 2, seen
    assert all(re.fullmatch(rf"{re.escape(socket.gethostname())}:\d+", w) for w in seen)


def _coupon_journey(j: Journey, clerk: dict[str, str], phone: str, codes: list[str]) -> None:
    """Issued to a phone, the user signs in by SMS, finds the coupon and reveals its code."""
    from tests.support import bearer

    issued = j.post("/api/v1/admin/issuances", headers=clerk,
                    json={"batch_id": f"SCALE-{phone}", "product_code": "tpp50", "phones": [phone]})
    assert issued.status_code == 200 and issued.json()["coupons"] == 1, issued.text
    assert j.post("/api/v1/mp/auth/sms/send", json={"phone": phone}).status_code == 200
    inbox = j.get("/sim/sms/_inbox", params={"phone": phone}).json()
    sms_code = re.search(r"验证码为 (\d{6})", inbox["items"][0]["content"]).group(1)
    grant = j.post("/api/v1/mp/auth/sms/login", json={"phone": phone, "code": sms_code})
    assert grant.status_code == 200, grant.text
    me = bearer(grant.json()["token"])
    j.secrets.update({sms_code, grant.json()["token"]})
    mine = j.get("/api/v1/mp/coupons", params={"status": "available"}, headers=me).json()["items"]
    assert [c["product"]["code"] for c in mine] == ["tpp50"]
    used = j.post(f"/api/v1/mp/coupons/{mine[0]['id']}/use", headers=me)
    assert used.status_code == 200 and used.json()["code"] in codes, used.text
    assert j.get("/api/v1/mp/coupons", params={"status": "used"}, headers=me).json()["items"][0]["id"] == mine[0]["id"]


def _buy_pay_refund(j: Journey, clerk: dict[str, str], phone: str) -> None:
    """WeChat sign-in and phone binding, a JSAPI order, the user pays, a clerk refunds one coupon, WeChat finishes."""
    from tests.support import bearer

    minted = j.post("/sim/wechat/_mint", json={"openid": f"oScale{phone}000000000001", "phone": phone}).json()
    wx = j.post("/api/v1/mp/auth/wechat", json={"code": minted["code"]})
    assert wx.status_code == 200, wx.text
    buyer = bearer(wx.json()["token"])
    j.secrets.update({wx.json()["token"], minted["code"], minted["phone_code"]})
    assert j.post("/api/v1/mp/auth/wechat/phone", json={"phone_code": minted["phone_code"]},
                  headers=buyer).status_code == 200
    catalog = j.get("/api/v1/mp/catalog", headers=buyer).json()
    assert any(p["code"] == "tpp50" for p in catalog["coupons"])
    created = j.post("/api/v1/mp/orders", json=BUY3, headers=buyer)
    assert created.status_code == 201, created.text
    order = created.json()
    paid = j.post("/sim/wechatpay/_pay", json={"prepay_id": order["payment"]["package"].removeprefix("prepay_id=")})
    assert paid.status_code == 200 and paid.json()["notify_status"] == 204, paid.text
    after = j.get(f"/api/v1/mp/orders/{order['id']}", headers=buyer).json()
    assert after["status"] == "completed" and len(after["coupon_ids"]) == 3
    refunded = j.post(f"/api/v1/admin/orders/{order['id']}/actions/refund", headers=clerk,
                      json={"amount_fen": 4_500, "reason": "用户只需要两张"})
    assert refunded.status_code == 200, refunded.text
    out_refund_no = refunded.json()["refunds"][0]["out_refund_no"]
    done = j.post("/sim/wechatpay/_refund", json={"out_refund_no": out_refund_no})
    assert done.status_code == 200 and done.json()["notify_status"] == 204, done.text
    detail = j.get(f"/api/v1/admin/orders/{order['id']}", headers=clerk).json()
    assert (detail["paid_fen"], detail["refunded_fen"], detail["refunds"][0]["status"]) == (13_500, 4_500, "succeeded")


def test_coupon_journey_and_buy_pay_refund_across_workers(three_workers, world):
    """Four users at once (two coupon journeys, two purchases), as the mini-program's users arrive: concurrent
    connections are spread over the workers, so a journey's steps land on different ones."""
    from tests.support import PASSWORD, bearer

    login = httpx.post(three_workers.url("/api/v1/admin/auth/login"), json={"username": "chen", "password": PASSWORD},
                       timeout=60)
    assert login.status_code == 200, login.text
    clerk = bearer(login.json()["token"])
    journeys = [Journey(three_workers.base_url, f"journey{i}") for i in range(4)]
    work = [lambda: _coupon_journey(journeys[0], clerk, PHONE_COUPON, world["codes"]),
            lambda: _coupon_journey(journeys[1], clerk, PHONE_COUPON2, world["codes"]),
            lambda: _buy_pay_refund(journeys[2], clerk, PHONE_BUYER),
            lambda: _buy_pay_refund(journeys[3], clerk, PHONE_BUYER2)]
    with concurrent.futures.ThreadPoolExecutor(len(work)) as pool:
        for done in [pool.submit(w) for w in work]:
            done.result()

    # The journeys' requests were served by several workers (their access lines name them).
    time.sleep(0.5)
    ids = [rid for j in journeys for rid in j.ids]
    served = _workers_of(three_workers, ids)
    assert len(served) == len(ids), f"access lines missing for {set(ids) - set(served)}"
    assert len(set(served.values())) >= 2, served
    spanning = [j.name for j in journeys if len({served[r] for r in j.ids}) >= 2]
    assert spanning, "no journey had its steps served by more than one worker"

    # --- nothing secret in the whole log: phones, SMS codes, tokens, WeChat codes, redemption codes
    text = three_workers.log.read_text(errors="replace")
    assert three_workers.log_records(), "no JSON log lines"
    secrets = {login.json()["token"], *(s for j in journeys for s in j.secrets)}
    leaked = [s for s in (PHONE_COUPON, PHONE_COUPON2, PHONE_BUYER, PHONE_BUYER2, CLERK_PHONE, *secrets,
                          *world["codes"]) if s in text]
    assert leaked == [], f"secrets in the log: {leaked}"


def test_sign_in_throttle_holds_across_workers(three_workers):
    j = Journey(three_workers.base_url, "throttle")
    for _ in range(5):
        assert j.post("/api/v1/admin/auth/login", json={"username": "mgr", "password": "wrong-password"}).status_code == 401
    from tests.support import PASSWORD

    locked = j.post("/api/v1/admin/auth/login", json={"username": "mgr", "password": PASSWORD})
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "LOGIN_THROTTLED", locked.text


def _websocket_open(host: str, port: int, path: str) -> str:
    """Open a websocket by hand (RFC 6455 handshake) and return the first text frame the server sends."""
    import base64

    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"Origin: http://127.0.0.1:{port}\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode()
        assert " 101 " in status, head.decode(errors="replace")
        while len(rest) < 2:
            rest += sock.recv(4096)
        length = rest[1] & 0x7F
        offset = 2
        if length == 126:
            while len(rest) < 4:
                rest += sock.recv(4096)
            length, offset = int.from_bytes(rest[2:4], "big"), 4
        while len(rest) < offset + length:
            rest += sock.recv(4096)
        assert rest[0] & 0x0F == 1  # a text frame
        return rest[offset:offset + length].decode()


@pytest.fixture(scope="module")
def backend_only(world) -> Iterator[cluster.App]:
    """Instance B: a second, backend-only instance on the same PostgreSQL and Redis."""
    app = cluster.start("backend-only", world["url"], workers=1, backend_only=True, origins=[_proxy_origin(world)])
    try:
        yield app
    finally:
        app.stop()


def test_two_instances_behind_the_repo_nginx(three_workers, backend_only, world, tmp_path):
    second = backend_only
    proxy = cluster.start_nginx([f"127.0.0.1:{three_workers.port}", f"127.0.0.1:{second.port}"], tmp_path,
                                port=world["proxy_port"])
    try:
        seen = set()
        for _ in range(40):
            r = httpx.get(proxy.base_url + "/api/v1/health", timeout=30, headers={"X-Request-Id": "through-nginx-01"})
            assert r.status_code == 200 and r.headers["x-request-id"] == "through-nginx-01"
            seen.add(r.json()["worker"])
        second_pid = second.proc.pid  # reflex run --backend-only; its worker is a child of it
        assert len(seen) >= 2, seen
        on_second = {w for w in seen if _is_descendant(int(w.rsplit(":", 1)[1]), second_pid)}
        assert on_second and seen - on_second, (seen, second_pid)  # both instances answered through nginx
        # The dashboard's websocket upgrade passes the proxy: Engine.IO's open packet comes back, from either.
        for _ in range(2):
            opened = _websocket_open("127.0.0.1", proxy.port, "/_event/?EIO=4&transport=websocket")
            assert opened.startswith("0{") and '"sid"' in opened, opened
        # A journey through the proxy: WeChat sign-in and an order paid, requests spread over both instances.
        from tests.support import bearer

        j = Journey(proxy.base_url, "nginx")
        minted = j.post("/sim/wechat/_mint", json={"openid": "oNginx0000000000000000001", "phone": "13977001003"}).json()
        buyer = bearer(j.post("/api/v1/mp/auth/wechat", json={"code": minted["code"]}).json()["token"])
        assert j.post("/api/v1/mp/auth/wechat/phone", json={"phone_code": minted["phone_code"]},
                      headers=buyer).status_code == 200
        order = j.post("/api/v1/mp/orders", json={**BUY3, "quantity": 1}, headers=buyer).json()
        paid = j.post("/sim/wechatpay/_pay", json={"prepay_id": order["payment"]["package"].removeprefix("prepay_id=")})
        assert paid.json()["notify_status"] == 204, paid.text
        assert j.get(f"/api/v1/mp/orders/{order['id']}", headers=buyer).json()["status"] == "completed"
    finally:
        proxy.stop()


def _notifies(app: cluster.App) -> list[dict]:
    """The WeChat Pay payment notifies this instance answered (its access lines)."""
    return [r for r in app.log_records() if r.get("logger") == "gc_admin.access"
            and " /api/v1/pay/wechat/notify " in r.get("msg", "")]


def test_a_payment_notified_on_instance_b_appears_on_a_board_open_on_instance_a(three_workers, backend_only,
                                                                                 browser):
    """Issue 9: a clerk's 订单看板 is open in a browser on instance A (directly on A's port: the page and its
    websocket are A's). A new order is created and paid through instance B's API and WeChat Pay simulator, so
    the signed notify is answered by B (its notify_url is B's). The card appears on A's board without a reload:
    the live feed goes through the database, not through any process's memory."""
    from tests.e2e.conftest import login
    from tests.support import PASSWORD, bearer

    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai")
    ctx.set_default_timeout(30_000)
    page = ctx.new_page()
    try:
        login(page, three_workers, "chen", PASSWORD)
        page.get_by_test_id("nav-orders").click()
        expect(page.get_by_test_id("page-title")).to_have_text("订单看板")
        expect(page.get_by_test_id("column-completed")).to_be_visible()
        on_a_before, on_b_before = len(_notifies(three_workers)), len(_notifies(backend_only))

        b = Journey(backend_only.base_url, "cross")
        minted = b.post("/sim/wechat/_mint", json={"openid": "oCross0000000000000000001", "phone": "13977001004"})
        buyer = bearer(b.post("/api/v1/mp/auth/wechat", json={"code": minted.json()["code"]}).json()["token"])
        assert b.post("/api/v1/mp/auth/wechat/phone", json={"phone_code": minted.json()["phone_code"]},
                      headers=buyer).status_code == 200
        created = b.post("/api/v1/mp/orders", json={**BUY3, "quantity": 1}, headers=buyer)
        assert created.status_code == 201, created.text
        order = created.json()
        card = page.get_by_test_id("column-completed").locator(f'[data-order-no="{order["order_no"]}"]')
        expect(card).to_have_count(0)  # not paid: at most in 待支付 (created)
        paid = b.post("/sim/wechatpay/_pay",
                      json={"prepay_id": order["payment"]["package"].removeprefix("prepay_id=")})
        assert paid.status_code == 200 and paid.json()["notify_status"] == 204, paid.text
        paid_at = time.monotonic()

        expect(card).to_be_visible(timeout=15_000)
        delay = time.monotonic() - paid_at
        expect(card).to_contain_text("¥45.00")
        time.sleep(0.5)  # the access lines are written after the response
        assert len(_notifies(backend_only)) == on_b_before + 1  # B answered the notify …
        assert len(_notifies(three_workers)) == on_a_before  # … and A never saw it
        print(f"\nlive across instances: order {order['order_no']} paid on B (port {backend_only.port}), card on "
              f"A's board (port {three_workers.port}) {delay:.2f} s after the notify was answered")
    finally:
        ctx.close()


def _is_descendant(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            with open(f"/proc/{pid}/stat") as fh:
                pid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def test_a_task_worker_killed_mid_import_imports_once_after_the_retry(world, tmp_path):
    """Issue 9: the instance's imports run as the ``coupons.import`` task in ``python -m gc_admin worker``, not in the
    app's processes. SIGKILL to that task worker while a 200 000-code import's transaction is storing the codes
    (seen in ``pg_stat_activity``, not guessed with a sleep): nothing of the codes is in the database, the
    import stays on record (running) and the request keeps waiting; a second task worker finds the job stalled,
    runs it again, and the same request is answered with the report — every code imported once, one import row.
    The same file sent again: all duplicates, nothing new stored. The instance (3 app workers, PostgreSQL,
    Redis) is its own, and so is its database (no other instance's task worker takes the job); its task workers
    are started here, as ``scripts/run.sh`` starts one."""
    from gc_admin.accounts.service import create_staff
    from gc_admin.db import session_scope
    from tests.support import PASSWORD, SETUP, use_database
    from tests.unit.coupons.support import codes_csv
    from tests.unit.orders.support import shop

    n = 200_000
    data = codes_csv([(f"KILL{i:09d}", 90) for i in range(n)])
    with cluster.pg_database() as url:
        use_database(url)
        shop(codes=1)
        with session_scope() as s:
            create_staff(s, actor=SETUP, username="chen", display_name="陈", password=PASSWORD, role="clerk")
        try:
            _kill_the_task_worker_mid_import(url, tmp_path, data, n)
        finally:
            use_database(world["url"])


def _kill_the_task_worker_mid_import(url: str, tmp_path, data: bytes, n: int) -> None:
    from tests.support import PASSWORD, bearer, rows, scalar
    from tests.unit.tasks.support import process_with_local_port, session_gone, storing_codes, workers

    app = cluster.start("kill-import", url, workers=3, backend_only=True)
    try:
        def clerk() -> dict[str, str]:
            login = httpx.post(app.url("/api/v1/admin/auth/login"), json={"username": "chen", "password": PASSWORD},
                               timeout=60)
            assert login.status_code == 200, login.text
            return bearer(login.json()["token"])

        def send(headers: dict[str, str]) -> httpx.Response:
            return httpx.post(app.url("/api/v1/admin/stock/imports"), headers=headers,
                              data={"product_code": "tpp50", "batch_ref": "KILL-1"},
                              files={"file": ("kill.csv", data, "text/csv")}, timeout=300)

        def stored() -> tuple[list, int]:
            return (rows("SELECT status FROM stock_import WHERE filename = 'kill.csv' ORDER BY id"),
                    scalar("SELECT count(*) FROM stock_code WHERE code LIKE 'KILL%'"))

        headers = clerk()
        with workers(url, tmp_path, GC_ENV="dev") as w:
            first = w.start()
            w.wait_for("the task worker to register", lambda: w.registered() >= 1)
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                upload = pool.submit(send, headers)
                backend, client_port = storing_codes(upload)
                assert process_with_local_port(client_port) == first.pid  # the task worker imports, not the app
                os.kill(first.pid, signal.SIGKILL)
                first.wait(10)
                session_gone(backend)  # the database notices its client is gone and rolls back
                assert stored() == ([("running",)], 0)  # no code stored; the import on record, waiting for its retry
                assert not upload.done()
                w.start()  # the dead worker stopped beating: its job is found stalled and run again here
                answer = upload.result(timeout=300)
            assert answer.status_code == 200, answer.text
            assert (answer.json()["imported"], answer.json()["duplicate_existing"]) == (n, 0)
            assert stored() == ([("done",)], n)
            assert rows("SELECT attempt, status FROM task_run WHERE task = 'coupons.import' ORDER BY id") == [
                (0, "interrupted"), (1, "succeeded")], w.log()
            again = send(headers)
            assert again.status_code == 200, again.text
            assert (again.json()["imported"], again.json()["duplicate_existing"]) == (0, n)
            assert stored() == ([("done",), ("done",)], n)  # a second report, nothing new in stock
        assert rows("SELECT DISTINCT import_id FROM stock_code WHERE code LIKE 'KILL%'") == [(answer.json()["import_id"],)]
    finally:
        app.stop()


def _health_worker(app: cluster.App) -> str:
    answer = httpx.get(app.url("/api/v1/health"), timeout=30, headers={"Connection": "close"})
    assert answer.status_code == 200, answer.text
    return answer.json()["worker"]


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] == "T"


def test_a_web_worker_killed_loses_no_queued_request_and_is_started_again(three_workers):
    """SIGKILL to one of the instance's web workers (what the OOM killer does to a stuck one). Each Granian worker
    listens on a socket of its own (SO_REUSEPORT): the requests the kernel had queued on the dead worker's socket
    are served by the others (``scripts/run.sh`` turns on ``net.ipv4.tcp_migrate_req``; without it they are reset),
    every request meanwhile is answered, a new worker process takes its place, and the instance is still up.
    (Granian's default would stop the whole server; ``rxconfig.py`` turns on its respawn.)"""
    migrate = "/proc/sys/net/ipv4/tcp_migrate_req"
    if not os.access(migrate, os.W_OK):
        pytest.skip("run.sh may only switch net.ipv4.tcp_migrate_req on as root")
    with open(migrate) as fh:
        assert fh.read().strip() == "1", "scripts/run.sh did not switch net.ipv4.tcp_migrate_req on"
    before = {_health_worker(three_workers) for _ in range(30)}
    victim = sorted(before)[0]
    pid = int(victim.rsplit(":", 1)[1])
    os.kill(pid, signal.SIGSTOP)  # stuck: the kernel keeps queueing connections on its socket, nobody accepts
    try:
        deadline = time.monotonic() + 10
        while not _stopped(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            asked = [pool.submit(_health_worker, three_workers) for _ in range(24)]
            time.sleep(2)
            queued = sum(not f.done() for f in asked)
            os.kill(pid, signal.SIGKILL)
            answered = [f.result() for f in asked]  # each 200 (asserted), none reset
    finally:  # never leave it stopped
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert queued, "no request was queued at the stopped worker"
    assert victim not in answered
    seen: set[str] = set(answered)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not seen - before:
        seen.add(_health_worker(three_workers))  # each answered 200 (asserted), by a live worker
        time.sleep(0.1)
    assert seen - before, (before, seen)  # a new worker
    assert victim not in seen
    assert three_workers.proc.poll() is None


def _task_workers(app: cluster.App) -> list[int]:
    """The pids of the instance's ``python -m gc_admin worker`` processes (its session is its own)."""
    found = subprocess.run(["pgrep", "-s", str(app.proc.pid), "-f", "gc_admin worker"],
                           capture_output=True, text=True).stdout.split()
    return sorted(int(p) for p in found)


def test_the_run_command_starts_its_task_worker_again_when_it_dies(three_workers, world):
    """``scripts/run.sh`` keeps one task worker beside the app: killed, another is started, and it runs the queue
    (a job a manager queues now runs there)."""
    from gc_admin.accounts.service import create_staff
    from gc_admin.db import session_scope
    from tests.support import PASSWORD, SETUP, bearer, rows, use_database

    use_database(world["url"])
    with session_scope() as s:  # "mgr" is locked out by the throttle test
        create_staff(s, actor=SETUP, username="ops", display_name="运维", password=PASSWORD, role="manager")
    (first,) = _task_workers(three_workers)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _task_workers(three_workers) in ([], [first]):
        time.sleep(0.2)
    (second,) = _task_workers(three_workers)
    assert second != first
    manager = bearer(httpx.post(three_workers.url("/api/v1/admin/auth/login"),
                                json={"username": "ops", "password": PASSWORD}, timeout=30).json()["token"])
    queued = httpx.post(three_workers.url("/api/v1/admin/jobs/orders.expire_unpaid/run"), headers=manager, timeout=30)
    assert queued.status_code == 202, queued.text
    ran_by = f"{socket.gethostname()}:{second}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not rows("SELECT 1 FROM task_run WHERE task = 'orders.expire_unpaid' "
                                                   "AND status = 'succeeded' AND worker = :w", w=ran_by):
        time.sleep(0.5)
    assert rows("SELECT status FROM task_run WHERE task = 'orders.expire_unpaid' AND worker = :w", w=ran_by), \
        three_workers.log.read_text(errors="replace")[-3000:]


def test_graceful_shutdown_finishes_the_request_in_flight(three_workers, world):
    """SIGTERM to the server (what systemd or a deploy sends) while a 100 000-code import is being served (the
    request waiting for the ``coupons.import`` task that ``scripts/run.sh``'s task worker runs): the worker
    finishes the import and commits it, the request is answered, then the server exits. Last in this module:
    it stops the instance."""
    from tests.support import PASSWORD, bearer, scalar, use_database
    from tests.unit.coupons.support import codes_csv
    from tests.unit.tasks.support import storing_codes

    clerk = bearer(httpx.post(three_workers.url("/api/v1/admin/auth/login"),
                              json={"username": "chen", "password": PASSWORD}, timeout=30).json()["token"])
    data = codes_csv([(f"GRACE{i:08d}", 90) for i in range(100_000)])
    def post() -> tuple[httpx.Response, float]:
        r = httpx.post(three_workers.url("/api/v1/admin/stock/imports"), headers=clerk, data={"product_code": "tpp50"},
                       files={"file": ("grace.csv", data, "text/csv")}, timeout=300)
        return r, time.monotonic()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        upload = pool.submit(post)
        storing_codes(upload)  # the body is sent and the import's transaction is storing the codes
        killed_at = time.monotonic()
        os.kill(three_workers.proc.pid, signal.SIGTERM)
        answer, answered_at = upload.result()
    assert answered_at > killed_at  # it was in flight when the server was told to stop
    assert answer.status_code == 200 and answer.json()["imported"] == 100_000, answer.text
    three_workers.proc.wait(timeout=60)
    use_database(world["url"])
    assert scalar("SELECT count(*) FROM stock_code WHERE code LIKE 'GRACE%'") == 100_000
