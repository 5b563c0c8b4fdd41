"""Load on the real server (PostgreSQL + Redis, backend-only instances started like the scale-out tests):

1. ``load_3w_vs_1w``: the mini-program's hot paths — sign in with WeChat and bind the phone (3 requests), my
   coupons, the catalogue, order one coupon and pay it through the WeChat Pay simulator (whose notify comes
   back to the app) — by 32 concurrent virtual users, against 1 worker and then 3 workers on the same database.
   Prints req/s, p50/p99 latency, errors, and the CPU the load generator itself used.
2. ``coupons_vs_health``: ``GET /api/v1/mp/coupons`` for a user holding 100 coupons while 1 000 000 codes are in
   stock, against ``GET /api/v1/health`` on the same server in the same run (target: >= 0.7).

``python -m bench load [--scale 0.2]`` (needs GC_TEST_PG_URL and GC_TEST_REDIS_URL; run under the e2e lock).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import time

import httpx

USERS = 32
_serial = itertools.count(1)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Stats:
    """Latencies and errors of one phase; with ``rate`` the requests are paced to that many per second in all
    (an open-loop arrival rate: latency then is what a request waits, not how many users queue)."""

    def __init__(self, rate: float | None = None) -> None:
        self.latencies: list[float] = []
        self.by_path: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.rate = rate
        self._next = 0.0

    async def call(self, client: httpx.AsyncClient, method: str, path: str, **kw) -> httpx.Response | None:
        if self.rate:
            now = time.perf_counter()
            self._next = max(self._next, now) + 1 / self.rate
            await asyncio.sleep(self._next - now)
        start = time.perf_counter()
        try:
            r = await client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            self.errors.append(f"{method} {path}: {type(exc).__name__}")
            return None
        took = time.perf_counter() - start
        self.latencies.append(took)
        self.by_path.setdefault(f"{method} {path}", []).append(took)
        if r.status_code >= 400:
            self.errors.append(f"{method} {path}: {r.status_code} {r.text[:120]}")
            return None
        return r


async def _journey(client: httpx.AsyncClient, stats: Stats) -> None:
    n = next(_serial)
    openid, phone = f"oLoad{os.getpid()}{n:012d}"[:28], f"139{(os.getpid() * 100000 + n) % 10**8:08d}"
    minted = await stats.call(client, "POST", "/sim/wechat/_mint", json={"openid": openid, "phone": phone})
    if minted is None:
        return
    grant = await stats.call(client, "POST", "/api/v1/mp/auth/wechat", json={"code": minted.json()["code"]})
    if grant is None:
        return
    me = {"Authorization": f"Bearer {grant.json()['token']}"}
    if await stats.call(client, "POST", "/api/v1/mp/auth/wechat/phone", headers=me,
                        json={"phone_code": minted.json()["phone_code"]}) is None:
        return
    await stats.call(client, "GET", "/api/v1/mp/coupons", headers=me)
    await stats.call(client, "GET", "/api/v1/mp/catalog", headers=me)
    order = await stats.call(client, "POST", "/api/v1/mp/orders", headers=me,
                             json={"type": "coupon_purchase", "product_code": "tpp50", "quantity": 1})
    if order is None:
        return
    await stats.call(client, "POST", "/sim/wechatpay/_pay",
                     json={"prepay_id": order.json()["payment"]["package"].removeprefix("prepay_id=")})


async def _run(base_url: str, seconds: float, work, rate: float | None = None) -> tuple[Stats, float, float]:
    """``work(client, stats)`` repeated by USERS tasks for ``seconds``: (stats, wall seconds, generator CPU s)."""
    stats = Stats(rate)
    limits = httpx.Limits(max_connections=USERS, max_keepalive_connections=USERS)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        end = time.perf_counter() + seconds

        async def user() -> None:
            while time.perf_counter() < end:
                await work(client, stats)

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(user() for _ in range(USERS)))
        return stats, time.perf_counter() - t0, time.process_time() - cpu0


def _line(label: str, stats: Stats, wall: float, cpu: float) -> float:
    rate = len(stats.latencies) / wall
    print(f"  {label:<22} {rate:7.1f} req/s  p50 {_pct(stats.latencies, 0.5) * 1000:6.1f} ms  "
          f"p99 {_pct(stats.latencies, 0.99) * 1000:7.1f} ms  errors {len(stats.errors)}  "
          f"load generator CPU {cpu / wall * 100:4.0f}% of one core", flush=True)
    for e in sorted(set(stats.errors))[:5]:
        print(f"    error: {e}")
    if len(stats.by_path) > 1:  # where the tail comes from
        slowest = sorted(stats.by_path.items(), key=lambda kv: -_pct(kv[1], 0.99))
        print("    p50/p99 by path: " + "; ".join(f"{k} {_pct(v, 0.5) * 1000:.0f}/{_pct(v, 0.99) * 1000:.0f} ms"
                                                 for k, v in slowest))
    return rate


def _session_cpu(sid: int) -> float:
    """CPU seconds used so far by every live process of session ``sid`` (an instance and its workers)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # field 6 of stat: the session id
            total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return total


def _server_cpu_ms(app, one, n: int) -> float:
    """Server CPU (ms, all the instance's processes) per ``await one(client)``, run ``n`` times one at a time
    after a warm-up round: what one costs, however busy the machine is."""

    async def serial() -> None:
        async with httpx.AsyncClient(base_url=app.base_url, timeout=60) as client:
            for _ in range(n):
                await one(client)

    asyncio.run(serial())  # warm
    before = _session_cpu(app.proc.pid)
    asyncio.run(serial())
    return (_session_cpu(app.proc.pid) - before) / n * 1000


def _cpu_per_journey(app, n: int = 20) -> float:
    """Server CPU (ms) per mini-program journey (7 requests)."""
    return _server_cpu_ms(app, lambda client: _journey(client, Stats()), n)


def _cpu_per_call(app, path: str, headers: dict[str, str], n: int = 400) -> float:
    """Server CPU (ms) per ``GET path``."""

    async def get(client: httpx.AsyncClient) -> None:
        (await client.get(path, headers=headers)).raise_for_status()

    return _server_cpu_ms(app, get, n)


def _seed(url: str, *, codes: int) -> None:
    """The catalogue (tpp50 on sale, no per-user limit) with ``codes`` codes in stock."""
    from gc_admin.coupons import service as coupons
    from gc_admin.db import session_scope
    from tests.unit.coupons.support import STAFF, codes_csv
    from tests.unit.orders.support import shop

    shop(codes=0, per_user_limit=None)
    batch = 200_000
    for start in range(0, codes, batch):
        data = codes_csv([(f"LD{i:010d}", 200) for i in range(start, min(codes, start + batch))])
        with session_scope() as s:
            coupons.import_codes(s, actor=STAFF, product_code="tpp50", data=data, filename=f"load{start}.csv")


def _holder(phone: str, n: int) -> str:
    """A user holding ``n`` tpp50 coupons (issued in ``n`` batches); returns a bearer token."""
    from gc_admin.coupons import service as coupons
    from gc_admin.db import session_scope
    from gc_admin.users.service import _grant
    from tests.support import SETUP, make_user

    user = make_user(phone, openid="oHolder000000000000000001")
    for i in range(n):
        with session_scope() as s:
            coupons.issue_batch(s, actor=SETUP, source="staff", batch_id=f"HOLD-{i}", product_code="tpp50",
                                phones=[phone])
    return _grant(user).token


def main(scale: float = 1.0) -> None:
    from tests.e2e import cluster
    from tests.support import use_database

    if not (cluster.PG_URL and cluster.REDIS_URL):
        print("load: skipped (GC_TEST_PG_URL and GC_TEST_REDIS_URL are needed)")
        return
    seconds = max(5.0, 30.0 * scale)
    total_codes = max(10_000, int(1_000_000 * scale)) if scale < 1 else 1_000_000
    cluster.flush_redis()
    with cluster.pg_database() as url:
        use_database(url)
        t0 = time.perf_counter()
        _seed(url, codes=total_codes)
        token = _holder("13900009999", 100)
        print(f"  seeded {total_codes} codes and a user with 100 coupons in {time.perf_counter() - t0:.0f}s")
        rates = {}
        for workers in (1, 3):
            app = cluster.start(f"bench-{workers}w", url, workers=workers, backend_only=True,
                                GC_LOG_FORMAT="json")
            try:
                asyncio.run(_run(app.base_url, 3.0, _journey))  # warm up: connections, caches, token
                stats, wall, cpu = asyncio.run(_run(app.base_url, seconds, _journey))
                rates[workers] = _line(f"{workers} worker(s), {USERS} users", stats, wall, cpu)
                if workers == 1:
                    print(f"server_cpu_ms_per_journey: {_cpu_per_journey(app):.0f}  (7 requests incl. the simulated "
                          "WeChat sign-in and payment; lower is better)", flush=True)
                if workers == 3:
                    paced = asyncio.run(_run(app.base_url, seconds, _journey, rate=rates[1]))
                    _line("3 workers @ 1w rate", *paced)
                    print(f"p99_at_1w_rate_ms: {_pct(paced[0].latencies, 0.99) * 1000:.0f}  (3 workers driven at the "
                          f"1-worker rate {rates[1]:.0f} req/s; target < 500 ms)")
                    mine = {"Authorization": f"Bearer {token}"}

                    async def coupons(client, stats):
                        await stats.call(client, "GET", "/api/v1/mp/coupons", headers=mine)

                    async def health(client, stats):
                        await stats.call(client, "GET", "/api/v1/health")

                    h = _line("health", *asyncio.run(_run(app.base_url, seconds / 2, health)))
                    c = _line(f"my coupons (100, {total_codes // 1000}k)", *asyncio.run(_run(app.base_url, seconds / 2, coupons)))
                    h2 = _line("health (again)", *asyncio.run(_run(app.base_url, seconds / 2, health)))
                    base = statistics.mean([h, h2])
                    print(f"coupons_vs_health: {c / base:.2f}  (my coupons {c:.0f} req/s vs health {base:.0f} req/s; "
                          "target >= 0.7)")
                    h_cpu = _cpu_per_call(app, "/api/v1/health", {})
                    c_cpu = _cpu_per_call(app, "/api/v1/mp/coupons", mine)
                    print(f"server_cpu_health_vs_coupons: {h_cpu / c_cpu:.2f}  (server CPU per request, one at a time: "
                          f"health {h_cpu:.2f} ms, my coupons {c_cpu:.2f} ms — the rate ratio the server alone would "
                          "give, without the load generator's share of the 2 cores)")
            finally:
                app.stop()
        print(f"load_3w_vs_1w: {rates[3] / rates[1]:.2f}  (3 workers {rates[3]:.0f} req/s vs 1 worker "
              f"{rates[1]:.0f} req/s, {USERS} users; target >= 1.3 on this 2-core machine)")
    cluster.flush_redis()


if __name__ == "__main__":
    main()
