"""Tables of the shell that belong to no feature: the run log of background tasks, the bytes tasks read."""

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
