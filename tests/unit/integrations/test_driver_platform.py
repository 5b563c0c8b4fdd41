"""The driver platform client against its simulator, in-process: signed requests both ways, idempotent
orders, refused keys and forged answers, and signed status callbacks a receiver can verify."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI

from gc_admin.integrations.driver import signing
from gc_admin.integrations.driver.client import DriverPlatformClient, DriverPlatformError
from gc_admin.integrations.driver.simulator import DriverSimState, SimError, advance, build_driver_simulator
from tests.support import InProcessTransport

KEY, SECRET = "k-test", "s-test-secret"
ORDER = {"out_order_no": "GC202612010000000001", "pickup": {"city": "南宁", "address": "民族大道 1 号"},
         "destination": {"city": "南宁", "address": "大学东路 2 号"}, "at": "2026-12-01T20:00:00+08:00",
         "contact_phone": "13812345678", "plate_no": None, "callback_url": "http://app.test/api/v1/driver/x/callback"}


@pytest.fixture
def world():
    state = DriverSimState(key=KEY, secret=SECRET)
    got: list[tuple[str, dict, bytes]] = []
    state.deliver = lambda url, headers, body: got.append((url, dict(headers), body)) or 200
    app = FastAPI()
    app.include_router(build_driver_simulator(state), prefix="/sim/driver")
    transport = InProcessTransport(app)

    def client(key: str = KEY, secret: str = SECRET) -> DriverPlatformClient:
        return DriverPlatformClient(base_url="http://sim.test/sim/driver", key=key, secret=secret, transport=transport)

    return state, client, got


def test_orders_are_signed_idempotent_and_their_callbacks_verify(world) -> None:
    state, client, got = world
    c = client()
    first = c.create_order(**ORDER)
    assert first["status"] == "pending" and first["platform_order_id"].startswith("DJ")
    assert c.create_order(**ORDER)["platform_order_id"] == first["platform_order_id"]  # same out_order_no
    assert len(state.orders) == 1
    pid = first["platform_order_id"]
    cb = advance(state, pid, "accepted")
    url, headers, body = got[-1]
    assert url == ORDER["callback_url"] and cb.payload["driver"]["name"]
    signing.verify(headers, body, key=KEY, secret=SECRET)  # the receiver's check passes
    with pytest.raises(signing.SignatureError):
        signing.verify(headers, body.replace(b"accepted", b"completed"), key=KEY, secret=SECRET)
    with pytest.raises(SimError):
        advance(state, pid, "completed", fee_fen=100)  # not from accepted
    assert c.get_order(pid)["driver"] == cb.payload["driver"]
    advance(state, pid, "arrived")
    with pytest.raises(DriverPlatformError) as e:
        c.cancel_order(pid, reason="x")
    assert (e.value.status, e.value.code) == (409, "ORDER_IN_SERVICE")


def test_a_wrong_key_or_secret_is_refused(world) -> None:
    state, client, _ = world
    for c in (client(key="other"), client(secret="wrong")):
        with pytest.raises(DriverPlatformError) as e:
            c.create_order(**ORDER)
        assert e.value.status == 401  # refused (and, with the wrong secret, its answer cannot be verified either)
    assert state.orders == {}
    assert client().create_order(**ORDER)["status"] == "pending"


def test_an_answer_that_is_not_signed_by_the_platform_is_not_trusted() -> None:
    def forged(request: httpx.Request) -> httpx.Response:
        body = json.dumps({"platform_order_id": "DJX", "status": "pending"}).encode()
        return httpx.Response(200, content=body, headers=signing.signed_headers(KEY, "attacker", body))

    c = DriverPlatformClient(base_url="http://sim.test", key=KEY, secret=SECRET, transport=httpx.MockTransport(forged))
    with pytest.raises(DriverPlatformError) as e:
        c.create_order(**ORDER)
    assert e.value.code == "RESPONSE_SIGNATURE_INVALID"
