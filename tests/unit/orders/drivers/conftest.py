"""Fixtures of the designated-driver tests: the driver platform client and its simulator's callbacks routed
into the test's app in-process; a user with a 代驾 coupon, dispatchers and a roster."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from gc_admin.coupons import service as coupons
from gc_admin.db import session_scope
from gc_admin.integrations.driver import setup as platform
from gc_admin.integrations.driver.simulator import DriverSimState
from tests.support import InProcessTransport, staff_headers, wechat_user
from tests.unit.coupons.support import STAFF, setup_catalogue
from tests.unit.orders.drivers.support import A, PHONE


@pytest.fixture
def sim(api) -> Iterator[DriverSimState]:
    """The driver platform simulator; the client and the callbacks go through the test's app in-process."""
    transport = InProcessTransport(api.app)
    platform.set_transport(transport)
    state = platform.sim_state()  # the one the test's app mounted under /sim/driver
    state.orders.clear(), state.callbacks.clear(), state.seen_nonces.clear()

    def deliver(url: str, headers: Mapping[str, str], body: bytes) -> int:
        with httpx.Client(transport=transport) as c:
            return c.post(url, headers=dict(headers), content=body).status_code

    state.deliver = deliver
    try:
        yield state
    finally:
        platform.set_transport(None)


@pytest.fixture
def world(api, make_staff) -> dict[str, Any]:
    """A user signed in with WeChat holding a ¥30 代驾 coupon; a dispatcher, a clerk and a customer-service
    account; two drivers on the roster."""
    setup_catalogue()
    with session_scope() as s:
        coupons.create_product(s, actor=STAFF, code="dj30", name="代驾立减 30 元", kind="service_discount",
                               face_fen=3000, programme_code="picc_gx")
        coupon_id = coupons.issue_batch(s, actor=STAFF, source="staff", batch_id="dj", product_code="dj30",
                                        phones=[PHONE]).rows()[0]["coupon_ids"][0]
    for username, role in (("diao", "dispatcher"), ("diao2", "dispatcher"), ("chen", "clerk"), ("kefu", "service"),
                           ("mgr", "manager")):
        make_staff(username, role)
    heads = {u: staff_headers(api, u) for u in ("diao", "diao2", "chen", "kefu", "mgr")}
    drivers = []
    for name, phone in (("李师傅", "13700000001"), ("周师傅", "13700000002")):
        r = api.post(A + "/drivers", json={"name": name, "phone": phone}, headers=heads["diao"])
        assert r.status_code == 201, r.text
        drivers.append(r.json()["id"])
    me = wechat_user(api, "oDriver00000000000000001", PHONE)
    return {"me": me, "coupon_id": coupon_id, "drivers": drivers, **heads}


