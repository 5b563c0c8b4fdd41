"""``POST /api/v1/driver/{platform}/callback``: a driver platform's signed status callback, applied once.

Checked in this order, each refusal changing nothing:

1. the platform is the configured one (else 404);
2. the signature, the app key and the timestamp window (:mod:`gc_admin.integrations.driver.signing`;
   401 ``SIGN_ERROR`` / ``TIMESTAMP_EXPIRED``);
3. the nonce has not been seen from this platform (``UNIQUE (platform, nonce)``; 409 ``REPLAY``): a
   captured request played again inside the window is refused (a platform re-signs each retry; a nonce
   is remembered only once its callback committed, so a retry after a failed delivery is not refused);
4. the body: ``event_id``, ``status`` and the order it names (``out_order_no`` of a driver order
   handed to this platform, with the same ``platform_order_id``; 400 / 404);
5. the event is new (``UNIQUE (platform, event_id)``): a redelivery of an event already applied is
   answered 200 ``{"code": "OK", "duplicate": true}`` and changes nothing.

Then, in the same transaction as the ``driver_callback`` row, with the order locked (``FOR UPDATE`` on
PostgreSQL, the write lock on SQLite): a status after the order's last platform status
(:data:`~gc_admin.orders.drivers.dispatch.PLATFORM_STEPS`) is applied — forward jumps included, a lost
``arrived`` does not block ``in_service`` — and one at or before it is **ignored** (out of order:
recorded, answered 200 so the platform stops retrying, nothing changes). ``completed`` settles the fee
exactly as the dispatcher's ``set_fee`` does. A status the order's own state refuses (staff moved it to
after-sales meanwhile) is ignored the same way, its partial work rolled back. ``cancelled`` (the platform found no driver) leaves the
order ``accepted`` with ``platform_status: cancelled`` so the dispatcher assigns an own driver.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from gc_admin.core.bulk import dialect
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import DomainError
from gc_admin.core.principal import Actor
from gc_admin.db import lock_for_write
from gc_admin.integrations.driver import setup as platform
from gc_admin.integrations.driver import signing
from gc_admin.orders.drivers.dispatch import PLATFORM_STEPS, settle
from gc_admin.orders.drivers.models import DriverCallback
from gc_admin.orders.models import ServiceOrder
from gc_admin.orders.service import add_event, mark_stale, transition
from gc_admin.payments.ledger import dialect_insert

log = logging.getLogger(__name__)

STATUSES = (*PLATFORM_STEPS[1:], "cancelled")
_MOVES = {"arrived": "arrive", "in_service": "start"}  # platform step -> order transition


def _answer(status: int, code: str, message: str = "", **extra: Any) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "message": message, **extra}


def _locked_order(session: Session, order_no: str) -> ServiceOrder | None:
    lock_for_write(session)
    q = select(ServiceOrder).where(col(ServiceOrder.order_no) == order_no, col(ServiceOrder.type) == "driver")
    if dialect(session) == "postgresql":
        q = q.with_for_update()
    return session.exec(q.execution_options(populate_existing=True)).first()


def _fulfil(session: Session, order_id: int, changes: Mapping[str, Any], now: dt.datetime) -> None:
    order = session.get(ServiceOrder, order_id, populate_existing=True)
    assert order is not None
    session.execute(update(ServiceOrder).where(col(ServiceOrder.id) == order_id)
                    .values(fulfilment={**(order.fulfilment or {}), **changes}, updated_at=now)
                    .execution_options(synchronize_session=False))
    mark_stale(session, order_id)


def _apply(session: Session, *, order: ServiceOrder, status: str, data: Mapping[str, Any], actor: Actor,
           now: dt.datetime) -> str:
    """Apply one new platform status to a locked order; returns ``applied`` or ``ignored`` (+ why)."""
    assert order.id is not None
    f = order.fulfilment or {}
    last = str(f.get("platform_status") or "pending")
    if last == "cancelled" or last not in PLATFORM_STEPS:
        return "ignored:order no longer with the platform"
    if status == "cancelled":
        if last not in ("pending", "accepted"):
            return "ignored:cancel after arrival"
        _fulfil(session, order.id, {"platform_status": "cancelled"}, now)
        add_event(session, order_id=order.id, action="platform_cancelled", actor=actor,
                  reason="第三方平台未能派出司机，请重新派单", now=now)
        return "applied"
    if PLATFORM_STEPS.index(status) <= PLATFORM_STEPS.index(last):
        return f"ignored:out of order ({status} after {last})"
    fee = data.get("fee_fen")
    if status == "completed" and (isinstance(fee, bool) or not isinstance(fee, int) or fee < 0):
        return "ignored:completed without fee_fen"
    for step in PLATFORM_STEPS[PLATFORM_STEPS.index(last) + 1:PLATFORM_STEPS.index(status) + 1]:
        if step == "accepted":
            driver = data.get("driver") if status == "accepted" and isinstance(data.get("driver"), Mapping) else {}
            _fulfil(session, order.id, {"platform_status": "accepted",
                                        "driver_name": str(driver.get("name") or "")[:32] or None,
                                        "driver_phone": str(driver.get("phone") or "")[:20] or None}, now)
            add_event(session, order_id=order.id, action="platform_accepted", actor=actor,
                      reason=f"平台司机 {driver.get('name') or ''} 已接单".replace("  ", " "), now=now)
        elif step in _MOVES:
            _fulfil(session, order.id, {"platform_status": step}, now)
            transition(session, order_id=order.id, action=_MOVES[step], actor=actor, reason="第三方平台回传", now=now)
        else:  # completed: the fee, settled like the dispatcher's set_fee
            current = session.get(ServiceOrder, order.id, populate_existing=True)
            assert current is not None
            out = settle(session, order=current, fee_fen=int(fee), now=now)
            values = {**out.values, "fulfilment": {**(current.fulfilment or {}), **out.fulfilment,
                                                   "platform_status": "completed"}}
            transition(session, order_id=order.id, action="set_fee", actor=actor, reason=out.note, now=now,
                       values=values, target=out.target)
    return "applied"


def handle_callback(session: Session, *, platform_code: str, headers: Mapping[str, str], body: bytes,
                    now: dt.datetime | None = None) -> tuple[int, dict[str, Any]]:
    """Verify and apply one callback (see the module docstring): ``(HTTP status, JSON answer)``."""
    now = now or utcnow()
    if platform_code != platform.platform_code():
        return _answer(404, "UNKNOWN_PLATFORM", "unknown platform")
    _url, _code, key, secret = platform.settings_tuple()
    try:
        nonce = signing.verify(headers, body, key=key, secret=secret, now=now.timestamp())
    except signing.SignatureError as exc:
        log.warning("driver callback from %s refused: %s", platform_code, exc)
        return _answer(401, "SIGN_ERROR" if exc.code == "BAD_SIGNATURE" else "TIMESTAMP_EXPIRED", str(exc))
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return _answer(400, "PARAM_ERROR", "body is not a JSON object")
    event_id, status = data.get("event_id"), data.get("status")
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 64 or status not in STATUSES:
        return _answer(400, "PARAM_ERROR", "event_id / status missing or unknown")
    seen = session.exec(select(DriverCallback.event_id, DriverCallback.nonce).where(
        col(DriverCallback.platform) == platform_code,
        (col(DriverCallback.nonce) == nonce) | (col(DriverCallback.event_id) == event_id))).all()
    if any(n == nonce for _, n in seen):
        log.warning("driver callback from %s: nonce replayed (event %s)", platform_code, event_id)
        return _answer(409, "REPLAY", "nonce already used")
    if seen:
        return _answer(200, "OK", duplicate=True)
    order = _locked_order(session, str(data.get("out_order_no") or ""))
    f = (order.fulfilment or {}) if order is not None else {}
    if order is None or f.get("platform") != platform_code or f.get("platform_order_id") != data.get(
            "platform_order_id"):
        return _answer(404, "ORDER_NOT_EXIST", "no such order handed to this platform")
    assert order.id is not None
    inserted = session.execute(dialect_insert(session)(DriverCallback).values(
        platform=platform_code, event_id=event_id, nonce=nonce, order_id=order.id, status=status, outcome="ignored",
        reason="", received_at=now).on_conflict_do_nothing().returning(DriverCallback.id)).scalar_one_or_none()
    if inserted is None:  # the same event or nonce committed meanwhile by a concurrent delivery
        return _answer(200, "OK", duplicate=True)
    actor = Actor("system", platform_code, f"代驾平台 {platform_code}")
    try:
        with session.begin_nested():  # a move the order's state refuses leaves nothing half-applied
            result = _apply(session, order=order, status=status, data=data, actor=actor, now=now)
    except DomainError as exc:  # e.g. staff moved the order to after-sales meanwhile: recorded, not retried
        result = f"ignored:{exc.code}: {exc.message}"
    outcome, _, why = result.partition(":")
    session.execute(update(DriverCallback).where(col(DriverCallback.id) == inserted)
                    .values(outcome=outcome, reason=why[:200]).execution_options(synchronize_session=False))
    session.flush()
    log.info("driver callback %s/%s for %s: %s %s", platform_code, event_id, order.order_no, status, result)
    return _answer(200, "OK", outcome=outcome)
