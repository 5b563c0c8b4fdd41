"""An httpx client for a third-party designated-driver platform (its open API, v1).

The base URL, app key and secret come from settings (``GC_DRIVER_PLATFORM_URL`` / ``_KEY`` / ``_SECRET``);
``local`` points at this app's simulator under ``/sim/driver`` (dev/test). Every request is signed and
every answer's signature is verified (:mod:`.signing`) before it is trusted.

The platform's API, as this client speaks it:

| call | body / answer |
|---|---|
| ``POST /v1/orders`` | ``{out_order_no, pickup: {city, address, lat?, lng?}, destination: {...}, at, contact_phone, plate_no?, callback_url}`` → ``{platform_order_id, status: "pending"}``; the same ``out_order_no`` again answers the same order (idempotent) |
| ``POST /v1/orders/{platform_order_id}/cancel`` | ``{reason}`` → ``{platform_order_id, status: "cancelled"}``; ``409 ORDER_IN_SERVICE`` once the driver has arrived |
| ``GET /v1/orders/{platform_order_id}`` | ``{platform_order_id, out_order_no, status, driver?, fee_fen?}`` |

Errors are ``4xx/5xx {"code", "message"}``. Status callbacks (``POST <callback_url>``, signed the same
way): ``{event_id, platform_order_id, out_order_no, status, occurred_at, driver?: {name, phone}, fee_fen?}``
with ``status`` ∈ ``accepted`` (a driver took it: ``driver``), ``arrived``, ``in_service``, ``completed``
(``fee_fen``: the fare, int fen), ``cancelled`` (no driver found); the platform retries until it gets 200.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from gc_admin.integrations.driver import signing
from gc_admin.integrations.http import new_client

log = logging.getLogger(__name__)


class DriverPlatformError(Exception):
    """The platform refused, failed or answered something untrustworthy (English, for logs)."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status, self.code = status, code


class DriverPlatformClient:
    def __init__(self, *, base_url: str, key: str, secret: str, transport: httpx.BaseTransport | None = None,
                 timeout: float = 10.0) -> None:
        self.base_url, self.key, self.secret = base_url.rstrip("/"), key, secret
        self._http = new_client(base_url=self.base_url, transport=transport, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = signing.signed_headers(self.key, self.secret, body, target=f"{method} {path}")
        headers["Content-Type"] = "application/json"
        try:
            resp = self._http.request(method, path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DriverPlatformError(f"{method} {path}: {type(exc).__name__}", code="TRANSPORT_ERROR") from exc
        try:
            signing.verify(resp.headers, resp.content, key=self.key, secret=self.secret)
        except signing.SignatureError as exc:
            raise DriverPlatformError(f"{method} {path}: answer refused: {exc}", status=resp.status_code,
                                      code="RESPONSE_SIGNATURE_INVALID") from exc
        try:
            data = resp.json()
        except ValueError:
            raise DriverPlatformError(f"{method} {path}: answer is not JSON", status=resp.status_code,
                                      code="BAD_RESPONSE") from None
        if not isinstance(data, dict):
            raise DriverPlatformError(f"{method} {path}: answer is not an object", status=resp.status_code,
                                      code="BAD_RESPONSE")
        if resp.status_code >= 300:
            raise DriverPlatformError(f"{method} {path}: HTTP {resp.status_code} {data.get('code')}",
                                      status=resp.status_code, code=str(data.get("code") or ""))
        return data

    def create_order(self, *, out_order_no: str, pickup: dict[str, Any], destination: dict[str, Any], at: str,
                     contact_phone: str, plate_no: str | None, callback_url: str) -> dict[str, Any]:
        data = self._call("POST", "/v1/orders", {
            "out_order_no": out_order_no, "pickup": pickup, "destination": destination, "at": at,
            "contact_phone": contact_phone, "plate_no": plate_no, "callback_url": callback_url})
        if not isinstance(data.get("platform_order_id"), str) or not data["platform_order_id"]:
            raise DriverPlatformError("create_order: no platform_order_id", code="BAD_RESPONSE")
        return data

    def cancel_order(self, platform_order_id: str, *, reason: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/orders/{platform_order_id}/cancel", {"reason": reason})

    def get_order(self, platform_order_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/orders/{platform_order_id}")

