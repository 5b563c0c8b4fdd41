"""A local stand-in for the designated-driver platform (dev/test only; mounted under ``/sim/driver``).

It speaks the API of :mod:`gc_admin.integrations.driver.client`: verifies every request's signature,
timestamp and key (``401 {"code": "SIGN_ERROR"}``), validates bodies (``400 PARAM_ERROR``), keeps
orders (``out_order_no`` idempotent), signs every answer, and plays the platform's life of an order:
``pending`` → ``accepted`` (a driver with name and phone) → ``arrived`` → ``in_service`` →
``completed`` (with the fare), or ``cancelled`` before arrival. Each step sends a **signed** status
callback with a fresh ``event_id`` and nonce to the order's ``callback_url`` through ``state.deliver``
(default: an httpx POST), so tests can deliver in-process, replay, tamper with or reorder callbacks;
every callback is kept in ``state.callbacks``.

Test/dev helper (not part of the platform, unsigned): ``POST /_advance {platform_order_id, status,
fee_fen?}`` moves a simulated order one step and sends its callback; the same is :func:`advance`.
One process keeps its own state (like the other simulators).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gc_admin.integrations.driver import signing
from gc_admin.integrations.simio import Deliver, http_deliver

log = logging.getLogger(__name__)

NEXT: dict[str, tuple[str, ...]] = {  # the platform's own order life
    "pending": ("accepted", "cancelled"),
    "accepted": ("arrived", "cancelled"),
    "arrived": ("in_service",),
    "in_service": ("completed",),
}
SIM_DRIVERS = (("赵师傅", "13700001111"), ("钱师傅", "13700002222"), ("孙师傅", "13700003333"))


@dataclasses.dataclass
class SimDriverOrder:
    platform_order_id: str
    out_order_no: str
    callback_url: str
    request: dict[str, Any]
    status: str = "pending"
    driver: dict[str, str] | None = None
    fee_fen: int | None = None


@dataclasses.dataclass
class SimCallback:
    url: str
    headers: dict[str, str]
    body: bytes
    status: int  # HTTP status our app answered (0: delivery raised)

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclasses.dataclass
class DriverSimState:
    key: str
    secret: str
    orders: dict[str, SimDriverOrder] = dataclasses.field(default_factory=dict)
    callbacks: list[SimCallback] = dataclasses.field(default_factory=list)
    deliver: Deliver = http_deliver
    seen_nonces: set[str] = dataclasses.field(default_factory=set)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def by_out_order_no(self, out_order_no: str) -> SimDriverOrder | None:
        return next((o for o in self.orders.values() if o.out_order_no == out_order_no), None)


class SimError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _signed(state: DriverSimState, status: int, payload: dict[str, Any]) -> Response:
    body = _dumps(payload)
    return Response(body, status_code=status, media_type="application/json",
                    headers=signing.signed_headers(state.key, state.secret, body))


def order_json(o: SimDriverOrder) -> dict[str, Any]:
    out: dict[str, Any] = {"platform_order_id": o.platform_order_id, "out_order_no": o.out_order_no,
                           "status": o.status}
    if o.driver:
        out["driver"] = o.driver
    if o.fee_fen is not None:
        out["fee_fen"] = o.fee_fen
    return out


def make_callback(state: DriverSimState, payload: Mapping[str, Any], *, timestamp: int | None = None,
                  nonce: str | None = None, secret: str | None = None) -> tuple[dict[str, str], bytes]:
    """A callback as the platform signs it: ``(headers, body)`` (``secret``: sign with another, a forgery)."""
    body = _dumps(dict(payload))
    headers = signing.signed_headers(state.key, secret or state.secret, body, timestamp=timestamp, nonce=nonce)
    return {**headers, "Content-Type": "application/json"}, body


def advance(state: DriverSimState, platform_order_id: str, status: str, *, fee_fen: int | None = None,
            deliver: bool = True) -> SimCallback:
    """Move a simulated order to ``status`` (one of :data:`NEXT`'s steps) and send its signed callback."""
    with state.lock:
        o = state.orders.get(platform_order_id)
        if o is None:
            raise SimError(404, "ORDER_NOT_EXIST", "no such order")
        if status not in NEXT.get(o.status, ()):
            raise SimError(409, "INVALID_STATUS", f"cannot go from {o.status} to {status}")
        if status == "completed":
            if isinstance(fee_fen, bool) or not isinstance(fee_fen, int) or fee_fen < 0:
                raise SimError(400, "PARAM_ERROR", "fee_fen (int fen >= 0) is required to complete")
            o.fee_fen = fee_fen
        if status == "accepted":
            name, phone = SIM_DRIVERS[secrets.randbelow(len(SIM_DRIVERS))]
            o.driver = {"name": name, "phone": phone}
        o.status = status
        payload: dict[str, Any] = {
            "event_id": "ev" + secrets.token_hex(12), "platform_order_id": o.platform_order_id,
            "out_order_no": o.out_order_no, "status": status,
            "occurred_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        if status == "accepted":
            payload["driver"] = o.driver
        if status == "completed":
            payload["fee_fen"] = o.fee_fen
    headers, body = make_callback(state, payload)
    code = 0
    if deliver:
        try:
            code = state.deliver(o.callback_url, headers, body)
        except Exception as exc:  # noqa: BLE001 - a platform retries; the simulator records the failure
            log.warning("driver simulator: callback delivery failed: %s", type(exc).__name__)
    cb = SimCallback(o.callback_url, headers, body, code)
    state.callbacks.append(cb)
    log.info("driver simulator: %s %s callback, HTTP %s", o.platform_order_id, status, code)
    return cb


def _place(v: Any, name: str) -> dict[str, Any]:
    if not isinstance(v, dict) or not isinstance(v.get("city"), str) or not isinstance(v.get("address"), str):
        raise SimError(400, "PARAM_ERROR", f"{name} needs city and address")
    return v


def _create(state: DriverSimState, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    out_no, callback_url = data.get("out_order_no"), data.get("callback_url")
    if not isinstance(out_no, str) or not 6 <= len(out_no) <= 32:
        raise SimError(400, "PARAM_ERROR", "out_order_no must be 6-32 characters")
    if not isinstance(callback_url, str) or not callback_url.startswith(("http://", "https://")):
        raise SimError(400, "PARAM_ERROR", "callback_url must be an http(s) URL")
    _place(data.get("pickup"), "pickup")
    _place(data.get("destination"), "destination")
    if not isinstance(data.get("at"), str) or not isinstance(data.get("contact_phone"), str):
        raise SimError(400, "PARAM_ERROR", "at and contact_phone are required")
    with state.lock:
        existing = state.by_out_order_no(out_no)
        if existing is not None:
            return 200, order_json(existing)
        o = SimDriverOrder("DJ" + secrets.token_hex(8).upper(), out_no, callback_url, data)
        state.orders[o.platform_order_id] = o
    return 200, order_json(o)


def build_driver_simulator(state: DriverSimState) -> APIRouter:
    router = APIRouter(tags=["simulators"])

    async def call(request: Request, handler: Callable[[], tuple[int, dict[str, Any]]], body: bytes) -> Response:
        path = request.url.path
        target = f"{request.method} {path[path.index('/v1/'):]}"
        try:
            nonce = signing.verify(request.headers, body, key=state.key, secret=state.secret, target=target)
            with state.lock:
                if nonce in state.seen_nonces:
                    raise SimError(401, "SIGN_ERROR", "nonce already used")
                state.seen_nonces.add(nonce)
            status, payload = handler()
        except signing.SignatureError as exc:
            return _signed(state, 401, {"code": "SIGN_ERROR", "message": str(exc)})
        except SimError as err:
            return _signed(state, err.status, {"code": err.code, "message": err.message})
        return _signed(state, status, payload)

    def _json(body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise SimError(400, "PARAM_ERROR", "body is not JSON") from None
        if not isinstance(data, dict):
            raise SimError(400, "PARAM_ERROR", "body is not an object")
        return data

    def _order(oid: str) -> SimDriverOrder:
        o = state.orders.get(oid)
        if o is None:
            raise SimError(404, "ORDER_NOT_EXIST", "no such order")
        return o

    def _cancel(oid: str) -> tuple[int, dict[str, Any]]:
        with state.lock:
            o = _order(oid)
            if o.status in ("arrived", "in_service", "completed"):
                raise SimError(409, "ORDER_IN_SERVICE", f"order is {o.status}")
            o.status = "cancelled"
        return 200, order_json(o)

    @router.post("/v1/orders", include_in_schema=False)
    async def create(request: Request) -> Response:
        body = await request.body()
        return await call(request, lambda: _create(state, _json(body)), body)

    @router.post("/v1/orders/{platform_order_id}/cancel", include_in_schema=False)
    async def cancel(platform_order_id: str, request: Request) -> Response:
        body = await request.body()
        return await call(request, lambda: _cancel(platform_order_id), body)

    @router.get("/v1/orders/{platform_order_id}", include_in_schema=False)
    async def query(platform_order_id: str, request: Request) -> Response:
        return await call(request, lambda: (200, order_json(_order(platform_order_id))), b"")

    @router.post("/_advance", include_in_schema=False)
    async def advance_route(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        data = await request.json()
        try:
            cb = await run_in_threadpool(advance, state, str(data.get("platform_order_id")), str(data.get("status")),
                                         fee_fen=data.get("fee_fen"))
        except SimError as err:
            return Response(_dumps({"code": err.code, "message": err.message}), status_code=err.status,
                            media_type="application/json")
        return Response(_dumps({"callback_status": cb.status, "event": cb.payload}), media_type="application/json")

    return router
