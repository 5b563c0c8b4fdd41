"""Demo data (SPEC.md §10): fictitious, enough to see every screen alive.

Loaded by the README's run command into an empty database; refused in prod. Later features
add their own demo rows through :data:`EXTRA_LOADERS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from sqlalchemy import func, insert
from sqlmodel import Session, select

from gc_admin.accounts.models import StaffUser
from gc_admin.accounts.service import PROGRAMME_ROLES, create_staff
from gc_admin.audit.service import Actor, record
from gc_admin.config import get_settings
from gc_admin.core.clock import utcnow
from gc_admin.core.regions import GUANGXI_CITIES
from gc_admin.core.roles import ROLE_LABELS
from gc_admin.claims.demo import load as load_claims
from gc_admin.coupons.demo import load as load_coupons
from gc_admin.db import session_scope
from gc_admin.orders.flowers.demo import load as load_flowers
from gc_admin.orders.demo import fill_every_state, load as load_orders
from gc_admin.orders.drivers.demo import load as load_drivers
from gc_admin.orders.suppliers.demo import load as load_goods
from gc_admin.users.models import MpUser


# username, display name, role, password (demo only; printed by the run command)
DEMO_STAFF: tuple[tuple[str, str, str, str], ...] = (
    ("admin", "王敏", "admin", "admin2026"),
    ("manager", "李强", "manager", "manager2026"),
    ("clerk", "陈静", "clerk", "clerk2026"),
    ("service", "刘洋", "service", "service2026"),
    ("insurer", "赵立", "insurer", "insurer2026"),
    ("supplier", "周凯", "supplier", "supplier2026"),
    ("dispatcher", "黄涛", "dispatcher", "dispatcher2026"),
)

DEMO_ACTOR = Actor("system", None, "演示数据")

EXTRA_LOADERS: list[Callable[[Session, random.Random], None]] = [load_coupons, load_orders, load_flowers, load_drivers,
                                                                 load_goods, load_claims, fill_every_state]


def _users(session: Session, rng: random.Random, n: int = 320) -> None:
    now = utcnow()
    phones: set[str] = set()
    while len(phones) < n:
        phones.add(f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}")
    rows = []
    for i, phone in enumerate(sorted(phones)):
        created = now - dt.timedelta(days=rng.randrange(1, 200), minutes=rng.randrange(1440))
        rows.append({
            "openid": f"demo-openid-{i:04d}" if rng.random() < 0.8 else None,
            "unionid": None,
            "phone": phone if rng.random() < 0.95 else None,
            "nickname": "",
            "city": rng.choice(GUANGXI_CITIES),
            "created_at": created,
            "last_login_at": min(now, created + dt.timedelta(days=rng.randrange(0, 30))),  # never after today
        })
    session.execute(insert(MpUser), rows)  # one set-based statement


class _InProcess(httpx.BaseTransport):
    """A sync httpx transport into an ASGI app in this process (``httpx.ASGITransport`` is async-only)."""

    def __init__(self, app: Any) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def run() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            return httpx.Response(response.status_code, headers=response.headers, content=await response.aread())

        return asyncio.run(run())


@contextlib.contextmanager
def simulators_in_process() -> Iterator[None]:
    """The demo loads before the server runs: while it does, the WeChat Pay and driver-platform clients talk
    to this process's own simulators (the app's ``/sim`` routes, in-process), so the demo's driver orders
    reach every step through the real flows — a fee with a remainder the user owes (awaiting payment, a
    JSAPI order opened at the simulator) and an order handed off to the platform. In the default
    one-process run without Redis the simulators' memory is this process's: the server's simulators
    start empty, so that remainder's prepay and that platform order are not known to them (with
    ``GC_REDIS_URL`` the WeChat Pay simulator shares its state and the remainder can be paid)."""
    from gc_admin.api import build_api
    from gc_admin.integrations.driver import setup as driver
    from gc_admin.integrations.wechatpay import setup as wxpay

    if not get_settings().simulators_enabled:
        yield
        return
    transport = _InProcess(build_api())
    driver.set_transport(transport)
    wxpay.set_transport(transport)
    try:
        yield
    finally:
        driver.set_transport(None)
        wxpay.set_transport(None)


DEMO_PROGRAMME = "picc_gx"  # what the insurer's demo account acts for (the coupons loader creates it)


def _staff(session: Session, *, programme_roles: bool) -> None:
    for username, name, role, password in DEMO_STAFF:
        if (role in PROGRAMME_ROLES) == programme_roles:
            create_staff(session, actor=DEMO_ACTOR, username=username, display_name=name, password=password, role=role,
                         phone=f"1380000{list(ROLE_LABELS).index(role):04d}",
                         programme_code=DEMO_PROGRAMME if programme_roles else None)


def load(session: Session, *, seed: int = 20261122) -> None:
    rng = random.Random(seed)
    _staff(session, programme_roles=False)
    _users(session, rng)
    with simulators_in_process():
        for loader in EXTRA_LOADERS:
            loader(session, rng)
    _staff(session, programme_roles=True)  # the insurer's account, once its programme exists
    record(session, actor=DEMO_ACTOR, action="system.demo_loaded", summary="载入演示数据")


def load_if_empty(*, force: bool = False) -> bool:
    """Load the demo data unless staff accounts exist already (``force`` loads anyway)."""
    with session_scope() as session:
        has_staff = session.exec(select(func.count()).select_from(StaffUser)).one() > 0
        if has_staff and not force:
            return False
        load(session)
    return True


def logins_text(url: str) -> str:
    lines = [f"gc_admin is at {url}", "Demo sign-ins (用户名 / 密码):"]
    for username, name, role, password in DEMO_STAFF:
        lines.append(f"  {ROLE_LABELS[role]:<6} {username:<11} / {password:<15} ({name})")
    return "\n".join(lines)
