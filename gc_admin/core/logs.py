"""Logging for the running app: one line per record, JSON in production, with the request id.

- :func:`configure` gives the ``gc_admin`` logger its one handler (``GC_LOG_FORMAT``: ``json`` in prod, plain
  text in dev/test). A JSON line is ``{"ts", "level", "logger", "msg", "request_id", "worker", "exc"?}``.
- :class:`RequestContext` (ASGI, outermost) takes the caller's ``X-Request-Id`` (a proxy's or a client's,
  when it is a short token) or makes one, keeps it for every record logged while the request runs, answers
  with it in ``X-Request-Id`` and logs one line per HTTP request: method, path (never the query string: it
  may carry a phone), status and duration.
- :class:`Redact` masks what must never be in a log even if a message carried it by mistake: mainland
  mobile numbers (``138****5678``), bearer tokens, JWT-shaped strings and PostgreSQL's ``DETAIL`` line (a
  constraint error quotes the row's values there; SQLAlchemy's own part names no value: ``hide_parameters``). The first defence is not to log
  them at all (codes, tokens, redemption codes are never formatted into messages); this is the second.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import re
import socket
import sys
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("gc_request_id", default="")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# PostgreSQL's DETAIL line of a constraint error quotes the row's values ("Key (code)=(...) already exists")
_PG_DETAIL = re.compile(r"(?m)^(DETAIL:\s*).*$")
_handler_name = "gc_admin.logs"


_HOST = socket.gethostname()


def worker_id() -> str:
    """A stable id of this process: host name and pid (what health answers as ``worker``). Read each time:
    Granian forks its workers from a supervisor that has already imported the app."""
    return f"{_HOST}:{os.getpid()}"


def request_id() -> str:
    """The id of the request being served ('' outside one)."""
    return _request_id.get()


def redact(text: str) -> str:
    text = _PG_DETAIL.sub(r"\1[redacted]", text)
    text = _PHONE.sub(r"\1****\2", text)
    text = _BEARER.sub(r"\1[redacted]", text)
    return _JWT.sub("[redacted]", text)


_base_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args, **kwargs) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.request_id = _request_id.get()
    return record


if getattr(_base_factory, "__name__", "") != _record_with_request_id.__name__:  # a re-import keeps one
    logging.setLogRecordFactory(_record_with_request_id)


class Redact(logging.Filter):
    """Mask phones and tokens in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logged as it is
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or None,
            "worker": worker_id(),
        }
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        return redact(super().formatException(ei))


def configure(*, fmt: str, level: str | int = "INFO", stream=None) -> None:
    """Give the ``gc_admin`` logger its handler (idempotent: a second call replaces the first)."""
    logger = logging.getLogger("gc_admin")
    for old in [h for h in logger.handlers if h.get_name() == _handler_name]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_handler_name)
    handler.addFilter(Redact())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)


access_log = logging.getLogger("gc_admin.access")


class RequestContext:
    """ASGI middleware: the request id (in and out) and one access line per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = given if _VALID_ID.match(given) else uuid.uuid4().hex
        token = _request_id.set(rid)
        start, status = time.perf_counter(), 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-Id", rid)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id if scope["type"] == "http" else send)
        finally:
            if scope["type"] == "http":
                access_log.info("%s %s %s %.1fms", scope.get("method", ""), scope.get("path", ""), status or 500,
                                (time.perf_counter() - start) * 1000)
            _request_id.reset(token)
