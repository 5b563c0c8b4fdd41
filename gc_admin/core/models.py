"""Tables of the shell that belong to no feature: the run log of background tasks, the bytes tasks read, the
exports staff asked for."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, LargeBinary
from sqlmodel import Field, SQLModel

from gc_admin.core.types import utc_field


class TaskRun(SQLModel, table=True):
    """One attempt of one background task (:mod:`gc_admin.core.tasks`): written when it starts
    (``running``) and when it ends (``succeeded`` / ``failed``); an attempt whose worker died is
    marked ``interrupted`` when the job's next attempt starts. ``GET /admin/jobs`` shows the last
    run of each periodic task from here."""

    __tablename__ = "task_run"

    id: int | None = Field(default=None, primary_key=True)
    task: str = Field(max_length=64, index=True)
    job_id: int | None = Field(default=None, index=True)  # procrastinate_jobs.id (in-process: the in-memory id)
    attempt: int = 0  # 0 = first try
    status: str = Field(max_length=16, index=True)  # running | succeeded | failed | interrupted
    worker: str = Field(default="", max_length=64)  # host:pid
    started_at: dt.datetime = utc_field(index=True)
    finished_at: dt.datetime | None = utc_field(default=None, nullable=True)
    result: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    error: str = Field(default="", max_length=500)


class TaskFile(SQLModel, table=True):
    """Bytes a task needs that must not travel in its arguments (an uploaded file, a list of phones): written
    by the request in the unit of work that defers the task, read by whichever host's worker runs it, and
    deleted by the task's final unit of work (:func:`gc_admin.core.tasks.store_file`). ``key`` is the task's
    natural key (``import:<id>``), so a task finds its bytes from the id it was given."""

    __tablename__ = "task_file"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    data: bytes = Field(sa_type=LargeBinary)
    created_at: dt.datetime = utc_field(index=True)


class ExportJob(SQLModel, table=True):
    """One Excel export a staff member asked for (:mod:`gc_admin.core.export_jobs`), built by the
    ``exports.build`` task: ``queued`` / ``running`` until it is ``done`` (``rows``, ``filename``; the bytes in
    ``task_file`` under ``export:<id>`` until downloaded once or an hour old) or ``failed`` (``error``,
    ``error_code``, ``error_status``). The asker is recorded whole — user id, role, name, supplier and programme —
    because the task re-applies that role's scope and masking: the filters never decide what a role may see."""

    __tablename__ = "export_job"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    filters: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    digest: str = Field(max_length=64)  # kind + filters + the asker's scope: the same click reuses a recent export
    actor_id: int = Field(index=True)  # staff_user.id: only they may read or download it
    actor_role: str = Field(max_length=16)
    actor_name: str = Field(default="", max_length=64)
    supplier_code: str | None = Field(default=None, max_length=32)
    programme_code: str | None = Field(default=None, max_length=32)
    status: str = Field(default="queued", max_length=16, index=True)  # queued | running | done | failed
    rows: int = 0
    filename: str = Field(default="", max_length=255)
    error: str | None = Field(default=None, max_length=500)
    error_code: str | None = Field(default=None, max_length=32)
    error_status: int | None = None  # the refusal's HTTP status (422, 403, 500)
    created_at: dt.datetime = utc_field(index=True)
    finished_at: dt.datetime | None = utc_field(default=None, nullable=True)
    downloaded_at: dt.datetime | None = utc_field(default=None, nullable=True)
