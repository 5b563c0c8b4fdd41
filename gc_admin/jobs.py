"""Periodic jobs: run inside the app (a lifespan task on every worker) or once from the CLI.

Every job is safe to run on several workers at once and to repeat: each is a set-based,
conditional update (``UPDATE ... WHERE state = ... RETURNING``), so two workers running the same
job at the same moment change each row once. A job that fails is logged and retried at its next
tick; it never stops the others.

| job | every | what |
|---|---|---|
| coupons.expiry | 1 h | discard stock under its minimum validity (弃票), expire unused coupons past their date |
| orders.expire_unpaid | 1 min | cancel orders unpaid after GC_ORDER_UNPAID_MINUTES, releasing their stock and coupons once |
| orders.notices | 1 min | send the "new order" SMS to the clerks on duty (outbox, one per order) |
| orders.goods_auto_confirm | 1 h | complete goods orders shipped 10 days ago that the user did not confirm |
| payments.refunds | 5 min | re-send refunds that never reached WeChat Pay, query the ones still processing |

Later features add theirs to :data:`JOBS`. ``python -m gc_admin jobs`` runs each once (for cron).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from gc_admin.db import session_scope

log = logging.getLogger("gc_admin.jobs")


@dataclasses.dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    run: Callable[[Any], Any]  # takes a session, returns something printable


def _coupon_expiry(session) -> Any:
    from gc_admin.coupons.stock.service import run_expiry

    r = run_expiry(session)
    return {"discarded": r.discarded, "expired_coupons": r.expired_coupons, "loss_cost_fen": r.discarded_cost_fen}


def _expire_unpaid(session) -> Any:
    from gc_admin.orders.flows import cancel_expired_unpaid

    return cancel_expired_unpaid(session)


def _order_notices(session) -> Any:
    from gc_admin.orders.service import send_order_notices

    return {"sent": send_order_notices(session)}


def _refunds(session) -> Any:
    from gc_admin.orders.flows import retry_pending_refunds

    return retry_pending_refunds(session)


def _goods_auto_confirm(session) -> Any:
    from gc_admin.orders.kinds.goods import auto_confirm_shipped

    return auto_confirm_shipped(session)


JOBS: list[Job] = [
    Job("coupons.expiry", 3600, _coupon_expiry),
    Job("orders.expire_unpaid", 60, _expire_unpaid),
    Job("orders.notices", 60, _order_notices),
    Job("payments.refunds", 300, _refunds),
    Job("orders.goods_auto_confirm", 3600, _goods_auto_confirm),
]


def run_once(job: Job) -> Any:
    """One run of ``job`` in its own unit of work."""
    with session_scope() as session:
        return job.run(session)


async def run_forever(jobs: list[Job] | None = None, *, tick: float = 5.0) -> None:
    """Run each job at its interval until cancelled (the app's lifespan task)."""
    jobs = list(JOBS if jobs is None else jobs)
    last: dict[str, float] = {}
    while True:
        now = time.monotonic()
        for job in jobs:
            if now - last.get(job.name, -job.every_seconds) >= job.every_seconds:
                last[job.name] = now
                try:
                    result = await asyncio.to_thread(run_once, job)
                    log.info("job %s: %s", job.name, result)
                except Exception:  # noqa: BLE001 - a failing job must not stop the others
                    log.exception("job %s failed", job.name)
        await asyncio.sleep(tick)
