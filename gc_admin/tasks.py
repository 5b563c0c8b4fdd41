"""The one registry of background tasks (wiring), and the jobs page's API.

The queue itself — :func:`~gc_admin.core.tasks.defer`, retries, locks, the worker — is
:mod:`gc_admin.core.tasks` (procrastinate on PostgreSQL, in-process on SQLite). This module says
which tasks exist. **A feature registers its task here**, one :class:`~gc_admin.core.tasks.TaskDef`
per kind of work, its body a function of the feature taking keyword arguments (JSON values) and
opening its own units of work; the feature's code then defers it by name with a natural key::

    # here
    register(TaskDef("coupons.import", _import_codes, title="导入券码", retries=3))
    # in coupons/stock/flows.py (imports only core)
    tasks.defer("coupons.import", key=f"import:{import_id}", session=s, import_id=import_id)

A body must be safe to run again (a retry after a crash runs it again): work through a row claimed by
a conditional update, as every body below does. A periodic task is a :class:`TaskDef` with a ``cron``.

| task | when | key |
|---|---|---|
| coupons.expiry, orders.expire_unpaid, orders.notices, payments.refunds | periodic (:data:`gc_admin.jobs.JOBS`) | its name |
| orders.notices | also deferred when an order is paid (the clerks' "new order" SMS) | ``orders.notices`` |
| payments.refund_send | a refund WeChat Pay did not take yet, retried with backoff | ``refund:<out_refund_no>`` |
| claims.ocr | also deferred with each new claim (committed with it) | ``claims.ocr`` |
| claims.payout_query | a cashback payout whose result Alipay left unknown, retried with backoff | ``payout:<out_biz_no>`` |
| coupons.import | a codes file uploaded (API, 券库存 page); its bytes in ``task_file``; the request waits for it | ``import:<id>`` |
| coupons.issue_batch | a batch issuance (admin and partner APIs, 发券 page); phones in ``task_file``; the request waits; a failed batch sent again is retried | ``batch:<batch row id>`` (the row of the caller's batch_id) |
| coupons.unfinished | periodic: imports and batches left unfinished (a job lost) deferred again | its name |
| orders.import | a third-party order sheet applied (API, 订单导入 page; not the preview); its bytes in ``task_file``; the request waits for it | ``orders-import:<id>`` |
| orders.ship_import | a shipment sheet applied (批量发货: API, 订单导入与批量发货 page; not the preview); its bytes in ``task_file``; ships as the uploader in their scope (a supplier: its own orders); the request waits for it | ``shipments-import:<id>`` |
| orders.unfinished | periodic: order imports and shipments imports left unfinished (a job lost) deferred again | its name |
| exports.build | an Excel export asked for (every list page's 导出, ``GET /admin/ledger.xlsx``); the request waits for it; its bytes go in ``task_file`` until downloaded once | ``export:<export_job id>`` |
| exports.sweep | periodic: exports left unfinished deferred again, export files older than an hour dropped | its name |

The tasks a request waits for run on their own queue (``queue=tasks.WAITED``: with no worker alive the
waiting request runs that queue only). A task the request waits for is registered next to the flow that defers it (``coupons.stock.flows.IMPORT``,
``coupons.issuance.flows.ISSUE``, ``orders.imports.flows.IMPORT``, ``orders.suppliers.flows.SHIP``, ``core.export_jobs.EXPORT``),
so any process that defers and waits (a script, a test) knows it; it is imported here like every other.

What ``exports.build`` can build is the registry of export builders (:func:`gc_admin.core.export_jobs.register_export`),
each registered next to its feature's ``*_frame``; :data:`EXPORTS` below imports every one, so a worker knows them all:

| kind | list | section |
|---|---|---|
| orders | 订单看板 (the role's scope: a dispatcher's driver orders, a supplier's own) | orders |
| audit | 操作日志 | audit |
| users | 用户 (phones masked) | users |
| issuances | 发券批次 (an insurer: its programme's) | issuance |
| stock_codes | 券码 (codes and phones masked) | stock |
| ledger | 流水 | ledger |
"""

from __future__ import annotations

import importlib
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from gc_admin.accounts.deps import require_staff
from gc_admin.audit.service import AUDIT_EXPORT, record
from gc_admin.config import get_settings
from gc_admin.core import export_jobs
from gc_admin.core.errors import NotFound
from gc_admin.core.principal import Principal
from gc_admin.core.tasks import REGISTRY, TaskDef, defer, in_process, periodic_status, register
from gc_admin.coupons.issuance import flows as issuance_flows
from gc_admin.coupons.issuance.service import ISSUANCES_EXPORT
from gc_admin.coupons.stock import flows as stock_flows
from gc_admin.coupons.stock.service import STOCK_CODES_EXPORT
from gc_admin.db import session_scope
from gc_admin.jobs import JOBS, Job, run_once
from gc_admin.orders.imports import flows as order_import_flows
from gc_admin.orders.service import ORDERS_EXPORT
from gc_admin.orders.suppliers import flows as shipment_flows
from gc_admin.payments.ledger import LEDGER_EXPORT
from gc_admin.users.service import USERS_EXPORT


class RefundStillPending(RuntimeError):
    """WeChat Pay did not take the refund yet (unreachable): the task is retried later."""


def _periodic(job: Job) -> TaskDef:
    return TaskDef(job.name, lambda: run_once(job), title=job.title, cron=job.cron, every=job.every, retries=3)


def send_refund(*, refund_id: int) -> dict[str, Any]:
    """payments.refund_send: ask WeChat Pay for a recorded refund (same ``out_refund_no`` every time).
    Still pending (WeChat unreachable) raises, so the queue retries with backoff; a refusal is recorded
    as failed and not retried; processing / succeeded end the task (the notify or the sweep settles it)."""
    from gc_admin.orders import refunds

    try:
        refund = refunds.send_refund_now(refund_id=refund_id)
    except refunds.RefundRefused:
        return {"refund_id": refund_id, "status": "failed"}
    if refund.status == "pending":
        raise RefundStillPending(f"refund {refund.out_refund_no} not taken by WeChat Pay yet")
    return {"refund_id": refund_id, "status": refund.status}


for _job in JOBS:
    register(_periodic(_job))
register(TaskDef("payments.refund_send", send_refund, title="发送退款到微信支付", retries=6, backoff_seconds=4))


def query_claim_payout(*, payout_id: int) -> dict[str, Any]:
    """claims.payout_query: see :func:`gc_admin.claims.payout.query_unknown` (raises while still unknown)."""
    from gc_admin.claims.payout import query_unknown

    return query_unknown(payout_id=payout_id)


register(TaskDef("claims.payout_query", query_claim_payout, title="查询结果未知的返现打款", retries=6, backoff_seconds=4))
register(stock_flows.IMPORT)  # (registered by their modules already: the same definitions)
register(issuance_flows.ISSUE)
register(order_import_flows.IMPORT)
register(shipment_flows.SHIP)
register(export_jobs.EXPORT)
EXPORTS = [export_jobs.register_export(e.kind, e.title, e.build, section=e.section, filename=e.filename)
           for e in (ORDERS_EXPORT, AUDIT_EXPORT, USERS_EXPORT, ISSUANCES_EXPORT, STOCK_CODES_EXPORT, LEDGER_EXPORT)]

# Test/dev only: extra task modules to import (e.g. a task that blocks on a flag, to kill a worker mid-task).
if get_settings().env != "prod":
    for _module in filter(None, (m.strip() for m in get_settings().tasks_extra_modules.split(","))):
        importlib.import_module(_module)


# --- GET /admin/jobs, POST /admin/jobs/{name}/run ------------------------------------------------------

router = APIRouter(prefix="/admin/jobs", tags=["admin: jobs"])


class JobRunOut(BaseModel):
    status: str
    started_at: Any
    finished_at: Any | None
    result: dict[str, Any] | None
    error: str
    worker: str
    attempt: int


class JobOut(BaseModel):
    name: str
    title: str
    every: str
    cron: str
    last_run: JobRunOut | None
    next_run_at: Any
    waiting: int


class JobsOut(BaseModel):
    items: list[JobOut]


class RunOut(BaseModel):
    name: str
    job_id: int | None
    queued: bool  # false: a run of this job was already waiting; it does the work (nothing deferred twice)


@router.get("", response_model=JobsOut, summary="定时任务：上次运行、结果、下次运行、排队数")
def list_jobs(_: Principal = Depends(require_staff("ledger"))):
    with session_scope() as s:
        return JobsOut(items=[JobOut(**j) for j in periodic_status(s)])


@router.post("/{name}/run", response_model=RunOut, status_code=202,
             summary="立即运行一次定时任务（已在排队时不重复排队）")
def run_job(name: str, principal: Principal = Depends(require_staff("ledger"))):
    defn = REGISTRY.get(name)
    if defn is None or not defn.cron:
        raise NotFound("没有这个定时任务", code="JOB_NOT_FOUND")
    with session_scope() as s:  # PostgreSQL: the job is deferred in the same unit of work as the audit row
        job_id = None if in_process() else defer(name, key=name, session=s)
        record(s, actor=principal.actor(), action="job.run_requested", target_type="job", target_id=name,
               summary=f"手动运行定时任务「{defn.title}」", after={"job_id": job_id})
    if in_process():
        job_id = defer(name, key=name)
    return RunOut(name=name, job_id=job_id, queued=job_id is not None)
