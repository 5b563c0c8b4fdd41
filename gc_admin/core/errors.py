"""Typed domain errors: an English code for machines and logs, a Chinese message for people.

Services raise these; the API turns them into ``{"error": {"code", "message"}}`` with the
status below, and the dashboard shows ``message`` in a toast or inline.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status: int = 400
    code: str = "BAD_REQUEST"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        # A refusal never commits the unit of work it ends. A record that must outlive a refusal is
        # written by the caller's choice in a unit of work of its own (a failed sign-in, a wrong
        # SMS-code try: db.separate_unit; a refused import file: coupons.stock.flows).

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class InvalidInput(DomainError):
    status = 422
    code = "INVALID_INPUT"


class Unauthorized(DomainError):
    status = 401
    code = "UNAUTHORIZED"


class Forbidden(DomainError):
    status = 403
    code = "FORBIDDEN"


class NotFound(DomainError):
    status = 404
    code = "NOT_FOUND"


class Conflict(DomainError):
    status = 409
    code = "CONFLICT"


class RateLimited(DomainError):
    status = 429
    code = "RATE_LIMITED"


class UpstreamError(DomainError):
    """A third party (WeChat, SMS provider, payment provider) failed or answered badly."""

    status = 502
    code = "UPSTREAM_ERROR"
