"""The business row a waited-for task finishes (a codes import, an order import, a shipments import): its
``status`` goes ``queued -> running -> done | failed``, each step one conditional ``UPDATE ... WHERE id = :id AND
status IN (...)`` whose row count says whether it moved — so a second run of the task (a retry after its worker was
killed, a late duplicate job) finds the row final and changes nothing.

The helpers take the SQLModel table (it has ``id``, ``status`` and ``created_at``); the feature keeps its own
wording (audit rows, the actor it rebuilds from the row). See :mod:`gc_admin.core.tasks` for the queue itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import update
from sqlmodel import Session, col, select

from gc_admin.core import tasks
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import DomainError, InvalidInput
from gc_admin.core.principal import Actor
from gc_admin.db import session_scope

T = TypeVar("T")

UNFINISHED = ("queued", "running")


def queue(session: Session, model: type[Any], *, actor: Actor, **fields: Any) -> int:
    """Put a new row on record ``queued`` for its task, with the uploader the task acts as (``created_by``,
    ``actor_type``, ``actor_id``, ``actor_ip``: :func:`uploader`) and the feature's ``fields``; returns its id."""
    row = model(created_by=actor.name[:64], actor_type=actor.type, actor_id=None if actor.id is None else str(actor.id),
                actor_ip=actor.ip, status="queued", created_at=utcnow(), **fields)
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


def uploader(row: Any) -> Actor:
    """Who put the row on record, and from which address (the task acts as them: its audit rows name both)."""
    return Actor(row.actor_type, row.actor_id, row.created_by, row.actor_ip)


def move(session: Session, model: type[Any], row_id: int, *, sources: tuple[str, ...] = UNFINISHED,
         **values: Any) -> bool:
    """Set ``values`` on the row if its status is one of ``sources``; whether it moved."""
    return bool(session.execute(update(model).where(col(model.id) == row_id, col(model.status).in_(sources))
                                .values(**values).execution_options(synchronize_session=False)).rowcount)


def reload(session: Session, model: type[T], row_id: int) -> T:
    """The row as the database has it now (not the session's cached copy)."""
    return session.exec(select(model).where(col(model.id) == row_id)  # type: ignore[attr-defined]
                        .execution_options(populate_existing=True)).one()


def mark_running(session: Session, model: type[Any], row_id: int) -> bool:
    """``queued -> running`` (shown as 处理中 while the task works); whether it moved."""
    return move(session, model, row_id, sources=("queued",), status="running")


def claim(session: Session, model: type[T], row_id: int) -> T | None:
    """Take a queued / running row for this unit of work — the conditional update locks it until the unit ends
    (PostgreSQL; SQLite holds its write lock), so a second run waits for the first and then finds it final.
    The row, or ``None`` when it is done or failed already."""
    if not move(session, model, row_id, status="running"):
        return None
    return reload(session, model, row_id)


def fail(session: Session, model: type[T], row_id: int, *, reason: str, code: str, then: Callable[[T], Any],
         **values: Any) -> bool:
    """``failed`` with ``reason`` / ``code`` (and ``values``) if the row was not final yet, then ``then(row)`` (the
    feature's audit line); whether it moved. In a unit of work of its own, after the task's work rolled back."""
    if not move(session, model, row_id, status="failed", error=reason[:500], error_code=code[:32], **values):
        return False
    then(reload(session, model, row_id))
    return True


def unfinished(session: Session, model: type[Any], *, older_than: dt.datetime) -> list[int]:
    """Rows still queued / running recorded before ``older_than`` (a sweep defers their task again)."""
    return list(session.exec(select(model.id).where(col(model.status).in_(UNFINISHED),
                                                    col(model.created_at) < older_than)
                             .order_by(col(model.id))).all())


# --- a file applied by a task the request waits for ------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FileTask:
    """An uploaded file applied to its business row by task ``name`` (the order import, the shipments import):
    the sequence both share, written once.

    - :meth:`submit` (the request): the row put on record ``queued`` (``queue(session)`` returns its id), the
      file's bytes in ``task_file`` under :meth:`key` and the task deferred with the id only (``import_id``) —
      one unit of work; then :func:`~gc_admin.core.tasks.wait_for` the row to be final. The row (``queued`` /
      ``running`` when the wait ran out), or its failure raised (``details.import_id``).
    - :meth:`run` (the task body): ``queued -> running``, then in ONE unit of work the claim, ``apply(session, row,
      data)`` and the bytes dropped — a run killed half-way left nothing, a later run finds the row final. A
      ``refused`` error (the file's fault) or a crash (``crashed``, logged) rolls that back and goes on record
      ``failed`` (``fail(session, row_id, reason, code)``) with the bytes dropped (:func:`tasks.run_recorded`).
    - :meth:`resume` (a periodic sweep): defer again the rows left unfinished (a job lost).
    """

    name: str
    prefix: str  # the key: "<prefix>:<row id>"
    model: type[Any]
    crashed: type[DomainError]  # a 500 whose ``code`` is put on record
    crashed_message: str
    what: str  # for the logs, e.g. "order import"
    logger: logging.Logger

    def key(self, row_id: int) -> str:
        return f"{self.prefix}:{row_id}"

    def submit(self, *, queue: Callable[[Session], int], data: bytes, wait_seconds: float | None = None) -> Any:
        with session_scope() as s:
            row_id = queue(s)
            tasks.store_file(s, key=self.key(row_id), data=data)
            tasks.defer(self.name, key=self.key(row_id), session=s, import_id=row_id)
        rec = tasks.wait_for(lambda: self._final(row_id), timeout=wait_seconds)
        if rec is None:
            with session_scope() as s:
                return self.read(s, row_id)
        if rec.status == "failed":
            details = {"import_id": row_id}
            if rec.error_code == self.crashed.code:
                raise self.crashed(rec.error or self.crashed_message, details=details)
            raise InvalidInput(rec.error or "", code=rec.error_code or "FILE_REJECTED", details=details)
        return rec

    def read(self, session: Session, row_id: int) -> Any:
        return session.exec(select(self.model).where(col(self.model.id) == row_id)
                            .execution_options(populate_existing=True)).one()

    def _final(self, row_id: int) -> Any:
        with session_scope() as s:
            rec = self.read(s, row_id)
        return rec if rec.status not in UNFINISHED else None

    def run(self, row_id: int, *, claim: Callable[[Session, int], T | None], apply: Callable[[Session, T, bytes], None],
            fail: Callable[[Session, int, str, str], Any],
            refused: type[Exception] | tuple[type[Exception], ...] = InvalidInput) -> Any:
        """The task body (see the class); returns the row as it ends."""
        key = self.key(row_id)
        with session_scope() as s:
            mark_running(s, self.model, row_id)

        def work() -> None:
            with session_scope() as s:
                claimed = claim(s, row_id)
                if claimed is not None:
                    data = tasks.load_file(s, key=key)
                    if data is None:  # cannot happen while the row is not final (the bytes go with that change)
                        raise RuntimeError(f"{self.what} {row_id}: its file is gone")
                    apply(s, claimed, data)
                    tasks.drop_file(s, key=key)

        def failed(reason: str, code: str) -> None:
            with session_scope() as s:
                fail(s, row_id, reason, code)
                tasks.drop_file(s, key=key)

        tasks.run_recorded(work, fail=failed, what=f"{self.what} {row_id}", crashed=(self.crashed_message, self.crashed.code),
                           refused=refused, logger=self.logger)
        with session_scope() as s:
            return self.read(s, row_id)

    def resume(self, session: Session, *, minutes: int = 2) -> int:
        """Defer again the rows still unfinished after ``minutes`` — their job was lost (SQLite's in-memory queue
        across a restart) or is still running (then the new job waits for the key's lock and finds the row
        final); how many."""
        ids = unfinished(session, self.model, older_than=utcnow() - dt.timedelta(minutes=minutes))
        return tasks.defer_again(self.name, ids, key=self.key, arg="import_id", session=session)
