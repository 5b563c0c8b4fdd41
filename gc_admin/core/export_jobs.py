"""Excel exports as tasks: a list's export is an ``export_job`` row built by the ``exports.build`` task.

A large workbook (up to :data:`gc_admin.core.exports.EXPORT_LIMIT` rows) is built by ``python -m gc_admin worker``
(PostgreSQL; in-process on SQLite), not by the web worker that took the click. It lives in ``core`` because the
list pages' shared export handler (:mod:`gc_admin.ui.paging`, which may import no feature) goes through it; the
``GET /admin/exports/{id}`` routes are :mod:`gc_admin.exports.api`.

**Builders.** Each feature registers what it exports — :func:`register_export` ``(kind, title, build, section=)``,
next to its ``*_frame`` service function (``gc_admin/tasks.py`` lists them all, so a worker knows every kind).
``build(session, who, filters) -> pl.DataFrame``: ``who`` is the asker as a :class:`Principal` rebuilt from the
export row (user id, role, name, supplier, programme), ``filters`` the JSON the page sent. A builder re-validates
its filters (:class:`Filters`) and takes the role's scope and masking from ``who`` only — a supplier's orders
export holds its own orders whatever the filters say.

**The flow** (:func:`export`, :func:`export_file`; API and pages alike): check the role may use the kind's
section, put the export on record ``queued`` and defer ``exports.build`` (key ``export:<id>``, the id its only
argument) in one unit of work, then :func:`gc_admin.core.tasks.wait_for` it up to ``wait_seconds``. Done: the
bytes are handed over once (:func:`take_file` drops them); not done yet: the row as it stands (the page says
"still being built", the API answers 202 and ``GET /admin/exports/{id}`` / ``.../file`` give it later). The same
asker clicking the same export again within :data:`REUSE_MINUTES` gets the export already under way (or done and
not downloaded) instead of a second one.

**The task** (:func:`run_export`) is safe to run twice: it builds the frame and the workbook in a read-only unit
of work (no write lock held on SQLite while it builds), then in one short unit moves the row to ``done`` with a
conditional ``UPDATE ... WHERE status IN ('queued', 'running')`` and, only if that moved it, stores the bytes — a
second run finds the row final and stores nothing. A builder's refusal (a :class:`DomainError`: a bad filter, an
insurer without a programme) goes on record ``failed`` with its code; anything else is our fault: ``failed`` with
``EXPORT_ERROR`` (500), via :func:`gc_admin.core.tasks.run_recorded`.

**Housekeeping** (:func:`sweep`, the periodic ``exports.sweep``): exports still unfinished after 2 minutes are
deferred again (a job lost with SQLite's in-memory queue), and export files older than :data:`KEEP_MINUTES` are
dropped (the row stays: the file answers 410 ``EXPORT_GONE``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import polars as pl
from sqlalchemy import delete as sa_delete
from sqlalchemy import update
from sqlmodel import Session, col, select

from gc_admin.core import task_rows, tasks
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import DomainError, Forbidden, InvalidInput, NotFound
from gc_admin.core.exports import filename as export_filename
from gc_admin.core.exports import xlsx_bytes
from gc_admin.core.models import ExportJob, TaskFile
from gc_admin.core.principal import Principal
from gc_admin.core.roles import may
from gc_admin.db import session_scope

log = logging.getLogger("gc_admin.exports")

EXPORT_TASK = "exports.build"
UNFINISHED = task_rows.UNFINISHED
REUSE_MINUTES = 10  # the same click again within this reuses the export under way
KEEP_MINUTES = 60  # an export's file is dropped this long after it was built (or at its one download)
CRASHED = "导出出错，请稍后重试或联系管理员"
PENDING = "导出较大，仍在生成，请稍后再点导出"

Builder = Callable[[Session, Principal, dict[str, Any]], pl.DataFrame]


class ExportCrashed(DomainError):
    """The export broke on something that is not the asker's fault (our bug)."""

    status = 500
    code = "EXPORT_ERROR"


class ExportNotReady(DomainError):
    status = 409
    code = "EXPORT_NOT_READY"


class ExportGone(DomainError):
    status = 410
    code = "EXPORT_GONE"


@dataclasses.dataclass(frozen=True)
class ExportKind:
    """One exportable list: ``kind`` (its key), ``title`` (Chinese: the sheet, the file name, the toast),
    ``section`` (the roles that may export it: :func:`gc_admin.core.roles.may`), ``build`` (see the module) and
    ``filename(now)`` (default ``<title>-<local time>.xlsx``)."""

    kind: str
    title: str
    section: str
    build: Builder
    filename: Callable[[dt.datetime], str] | None = None

    def file_name(self, now: dt.datetime) -> str:
        return self.filename(now) if self.filename else export_filename(self.title, now=now)


KINDS: dict[str, ExportKind] = {}


def register_export(kind: str, title: str, build: Builder, *, section: str,
                    filename: Callable[[dt.datetime], str] | None = None) -> ExportKind:
    """Add an exportable list to :data:`KINDS` (again with the same builder: a no-op)."""
    known = KINDS.get(kind)
    if known is not None:
        if known.build is not build:
            raise ValueError(f"export {kind} is registered twice")
        return known
    KINDS[kind] = spec = ExportKind(kind, title, section, build, filename)
    return spec


def kind_of(kind: str) -> ExportKind:
    spec = KINDS.get(kind)
    if spec is None:
        raise InvalidInput("不支持导出该列表", code="EXPORT_KIND_UNKNOWN")
    return spec


def export_key(export_id: int) -> str:
    return f"export:{export_id}"


# --- the filters a builder reads --------------------------------------------------------------------------

class Filters:
    """A builder's view of the JSON filters the page sent: each getter checks the type and bounds of one key and
    refuses anything else (:class:`InvalidInput` ``INVALID_EXPORT_FILTER``); keys a builder does not ask for are
    never read (a ``supplier`` in the filters decides nothing)."""

    def __init__(self, raw: dict[str, Any] | None) -> None:
        self.raw = raw if isinstance(raw, dict) else {}

    @staticmethod
    def _bad(key: str) -> InvalidInput:
        return InvalidInput(f"导出条件不正确（{key}），请刷新页面后重试", code="INVALID_EXPORT_FILTER")

    def text(self, key: str, *, limit: int = 64) -> str | None:
        """A string (trimmed; empty: ``None``) of at most ``limit`` characters."""
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > limit:
            raise self._bad(key)
        return value.strip() or None

    def number(self, key: str) -> int | None:
        """A positive integer id."""
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31 - 1:
            raise self._bad(key)
        return value

    def time(self, key: str) -> dt.datetime | None:
        """An aware datetime sent as ISO text (a local day's start, converted by the page)."""
        value = self.text(key, limit=40)
        if value is None:
            return None
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise self._bad(key) from None
        if parsed.tzinfo is None:
            raise self._bad(key)
        return parsed


def _jsonable(filters: dict[str, Any]) -> dict[str, Any]:
    """The filters as JSON values (datetimes and dates as ISO text), sorted: what the row and the digest keep."""
    def default(value: Any) -> Any:
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        if isinstance(value, tuple | set | frozenset):
            return sorted(value) if isinstance(value, set | frozenset) else list(value)
        raise TypeError(f"export filter of type {type(value).__name__}")

    return json.loads(json.dumps(filters or {}, default=default, sort_keys=True))


def digest(kind: str, filters: dict[str, Any], principal: Principal) -> str:
    """Who asked for which list with which filters, in the asker's scope: two equal clicks have one digest."""
    body = json.dumps([kind, filters, principal.role, principal.supplier_code, principal.programme_code],
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


# --- the export row (no commits: the caller owns the unit of work) ---------------------------------------------

def queue_export(session: Session, *, kind: str, principal: Principal, filters: dict[str, Any]) -> int:
    """Put an export on record ``queued`` for the ``exports.build`` task; returns its id."""
    clean = _jsonable(filters)
    rec = ExportJob(kind=kind, filters=clean, digest=digest(kind, clean, principal), actor_id=principal.id,
                    actor_role=principal.role, actor_name=(principal.display_name or principal.username)[:64],
                    supplier_code=principal.supplier_code, programme_code=principal.programme_code,
                    status="queued", created_at=utcnow())
    session.add(rec)
    session.flush()
    assert rec.id is not None
    return rec.id


def reusable_export(session: Session, *, kind: str, principal: Principal, filters: dict[str, Any],
                    now: dt.datetime | None = None) -> int | None:
    """The asker's newest export of this kind and these filters from the last :data:`REUSE_MINUTES` that is under
    way, or done and not downloaded yet (its file kept); ``None``: a new export is needed."""
    since = (now or utcnow()) - dt.timedelta(minutes=REUSE_MINUTES)
    stmt = (select(ExportJob.id, ExportJob.status, ExportJob.downloaded_at)
            .where(col(ExportJob.actor_id) == principal.id, col(ExportJob.kind) == kind,
                   col(ExportJob.digest) == digest(kind, _jsonable(filters), principal),
                   col(ExportJob.created_at) >= since, col(ExportJob.status).in_((*UNFINISHED, "done")))
            .order_by(col(ExportJob.id).desc()).limit(1))
    row = session.exec(stmt).first()
    if row is None or (row[1] == "done" and row[2] is not None):
        return None
    return int(row[0])


def _load(session: Session, export_id: int) -> ExportJob | None:
    return session.exec(select(ExportJob).where(col(ExportJob.id) == export_id)
                        .execution_options(populate_existing=True)).first()


def get_export(session: Session, *, export_id: int, user_id: int | None = None) -> ExportJob:
    """The export; with ``user_id`` only if that staff member asked for it (anyone else: the same 404)."""
    rec = _load(session, export_id)
    if rec is None or (user_id is not None and rec.actor_id != user_id):
        raise NotFound("导出记录不存在", code="EXPORT_NOT_FOUND")
    return rec


def refusal(rec: ExportJob) -> DomainError:
    """A failed export's error, as the asker sees it."""
    if rec.error_code == ExportCrashed.code:
        return ExportCrashed(rec.error or CRASHED, details={"export_id": rec.id})
    exc = DomainError(rec.error or "导出失败", code=rec.error_code or "EXPORT_FAILED", details={"export_id": rec.id})
    exc.status = rec.error_status or 422
    return exc


def take_file(session: Session, *, export_id: int, user_id: int) -> tuple[ExportJob, bytes]:
    """The asker's finished export and its bytes, handed over once: the file is dropped in this unit of work
    (a second download, or one after :data:`KEEP_MINUTES`: ``EXPORT_GONE``; not built yet: ``EXPORT_NOT_READY``;
    failed: its refusal)."""
    rec = get_export(session, export_id=export_id, user_id=user_id)
    if rec.status in UNFINISHED:
        raise ExportNotReady(PENDING, details={"export_id": export_id, "status": rec.status})
    if rec.status == "failed":
        raise refusal(rec)
    gone = ExportGone("导出文件已下载过或已过期，请重新导出", details={"export_id": export_id})
    # the one download wins the conditional update; a second one at the same moment finds it taken
    took = session.execute(update(ExportJob).where(col(ExportJob.id) == export_id, col(ExportJob.downloaded_at).is_(None))
                           .values(downloaded_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    data = tasks.load_file(session, key=export_key(export_id)) if took else None
    if data is None:
        raise gone
    tasks.drop_file(session, key=export_key(export_id))
    return rec, data


def sweep(session: Session, *, now: dt.datetime | None = None, minutes: int = 2) -> dict[str, int]:
    """Housekeeping (periodic ``exports.sweep``): defer again the exports still unfinished after ``minutes`` (their
    job lost, or still running: then the new job waits for the key's lock and finds the export final), and drop
    the export files older than :data:`KEEP_MINUTES` (nobody downloaded them)."""
    now = now or utcnow()
    ids = task_rows.unfinished(session, ExportJob, older_than=now - dt.timedelta(minutes=minutes))
    deferred = tasks.defer_again(EXPORT_TASK, ids, key=export_key, arg="export_id", session=session)
    dropped = session.execute(sa_delete(TaskFile).where(col(TaskFile.key).startswith("export:"),
                                                        col(TaskFile.created_at) < now - dt.timedelta(minutes=KEEP_MINUTES))
                              .execution_options(synchronize_session=False)).rowcount
    return {"deferred": deferred, "files_dropped": int(dropped or 0)}


# --- the task --------------------------------------------------------------------------------------------

def asker(rec: ExportJob) -> Principal:
    """The staff member who asked, as recorded on the row: the scope the builder applies."""
    return Principal(id=rec.actor_id, username="", display_name=rec.actor_name, role=rec.actor_role,
                     programme_code=rec.programme_code, supplier_code=rec.supplier_code)


def run_export(*, export_id: int) -> dict[str, Any]:
    """``exports.build``: build the export of ``export_id`` and keep its bytes; safe to run again (see the module)."""
    with session_scope() as s:
        task_rows.move(s, ExportJob, export_id, status="running")
    refused: dict[str, int] = {}

    def work() -> None:
        with session_scope() as s:  # reads only: no write lock held while the frame is built
            rec = _load(s, export_id)
            if rec is None or rec.status not in UNFINISHED:
                return
            spec = KINDS.get(rec.kind)
            if spec is None:
                raise RuntimeError(f"export {export_id}: unknown kind {rec.kind!r}")
            who = asker(rec)
            try:
                if not may(who.role, spec.section):
                    raise Forbidden("没有权限导出该列表", code="FORBIDDEN")
                frame = spec.build(s, who, dict(rec.filters or {}))
            except DomainError as exc:
                refused["status"] = exc.status
                raise
        data = xlsx_bytes(frame, sheet=spec.title)
        now = utcnow()
        with session_scope() as s:  # one unit: done and the bytes, or neither
            if task_rows.move(s, ExportJob, export_id, status="done", rows=frame.height,
                              filename=spec.file_name(now)[:255], finished_at=now):
                tasks.store_file(s, key=export_key(export_id), data=data)

    def fail(reason: str, code: str) -> None:
        with session_scope() as s:
            task_rows.move(s, ExportJob, export_id, status="failed", error=reason[:500], error_code=code[:32],
                           finished_at=utcnow(), error_status=refused.get("status", ExportCrashed.status))

    tasks.run_recorded(work, fail=fail, what=f"export {export_id}", crashed=(CRASHED, ExportCrashed.code),
                       refused=DomainError, logger=log)
    with session_scope() as s:
        rec = _load(s, export_id)
        return {"export_id": export_id, "status": rec.status if rec else "missing", "rows": rec.rows if rec else 0}


EXPORT = tasks.register(tasks.TaskDef(EXPORT_TASK, run_export, title="生成导出文件", retries=3, queue=tasks.WAITED))


# --- the flow (API and pages) ------------------------------------------------------------------------------

def _final(export_id: int) -> ExportJob | None:
    with session_scope() as s:
        rec = _load(s, export_id)
    return rec if rec is not None and rec.status in ("done", "failed") else None


def export(kind: str, *, principal: Principal, filters: dict[str, Any],
           wait_seconds: float | None = None) -> ExportJob:
    """Export ``kind`` with ``filters`` for ``principal`` through the ``exports.build`` task (or reuse the same
    export under way); the row, ``done`` or still ``queued`` / ``running`` after ``wait_seconds`` (default
    ``GC_TASKS_WAIT_SECONDS``); a failed export raises its refusal (with ``details.export_id``)."""
    spec = kind_of(kind)
    if not may(principal.role, spec.section):
        raise Forbidden("没有权限导出该列表", code="FORBIDDEN")
    with session_scope() as s:
        export_id = reusable_export(s, kind=kind, principal=principal, filters=filters)
        if export_id is None:
            export_id = queue_export(s, kind=kind, principal=principal, filters=filters)
            tasks.defer(EXPORT_TASK, key=export_key(export_id), session=s, export_id=export_id)
    rec = tasks.wait_for(lambda: _final(export_id), timeout=wait_seconds)
    if rec is None:
        with session_scope() as s:
            return get_export(s, export_id=export_id)
    if rec.status == "failed":
        raise refusal(rec)
    return rec


def export_file(kind: str, *, principal: Principal, filters: dict[str, Any],
                wait_seconds: float | None = None) -> tuple[ExportJob, bytes | None]:
    """:func:`export`, then the bytes if it is done (handed over once: :func:`take_file`); ``None`` while not."""
    rec = export(kind, principal=principal, filters=filters, wait_seconds=wait_seconds)
    if rec.status != "done":
        return rec, None
    assert rec.id is not None
    with session_scope() as s:
        return take_file(s, export_id=rec.id, user_id=principal.id)


def download(export_id: int, *, principal: Principal) -> tuple[ExportJob, bytes]:
    """``GET /admin/exports/{id}/file``: the asker's finished export, once."""
    with session_scope() as s:
        return take_file(s, export_id=export_id, user_id=principal.id)
