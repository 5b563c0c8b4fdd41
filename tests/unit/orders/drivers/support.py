"""Helpers of the designated-driver tests: bookings and staff actions over HTTP (fixtures: conftest.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gc_admin.core.clock import SHANGHAI, utcnow

A = "/api/v1/admin"
PHONE = "13812345678"


def at(hours: float = 2) -> str:
    """A booking time ``hours`` from now, ISO-8601 in Shanghai time."""
    return (utcnow() + dt.timedelta(hours=hours)).astimezone(SHANGHAI).isoformat(timespec="seconds")


def booking(**changes: Any) -> dict[str, Any]:
    body = {"pickup": {"city": "南宁市", "address": "青秀区民族大道 100 号", "lat": 22.817, "lng": 108.366},
            "destination": {"city": "南宁市", "address": "西乡塘区大学东路 188 号"}, "at": at(),
            "contact_phone": "138 1234 5678", "plate_no": "桂a·12345"}
    body.update(changes)
    return body


def book(api, me, *, coupon_id: int | None = None, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "driver", "driver": booking(**changes)}
    if coupon_id:
        body["coupon_id"] = coupon_id
    r = api.post("/api/v1/mp/orders", json=body, headers=me)
    assert r.status_code == 201, r.text
    return r.json()


def act(api, headers, order_id: int, action: str, **fields: Any):
    return api.post(f"{A}/orders/{order_id}/actions/{action}", json=fields, headers=headers)


def ok(resp) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    return resp.json()
