"""The periodic jobs: what each does, once, in one unit of work. :mod:`gc_admin.tasks` runs them as
periodic tasks on the task queue (:mod:`gc_admin.core.tasks`: procrastinate on PostgreSQL, once per
period however many workers run; in-process on SQLite); ``python -m gc_admin jobs`` runs each once.

Every job is safe to run on several workers at once, to repeat and to die half-way: each is a
set-based, conditional update (``UPDATE ... WHERE state = ... RETURNING``) in one transaction, so a
run killed before its commit changed nothing and the retry does it all, and a run repeated after its
commit finds nothing left to change. A job that fails is retried with backoff; it never stops the others.

| job | every | what |
|---|---|---|
| coupons.expiry | 1 h | discard stock under its minimum validity (弃票), expire unused coupons past their date |
| coupons.unfinished | 1 min | defer again code imports and issuance batches still unfinished after 2 minutes (a job lost with SQLite's in-memory queue) |
| exports.sweep | 1 min | defer again Excel exports still unfinished after 2 minutes; drop export files older than an hour (never downloaded) |
| orders.unfinished | 1 min | defer again third-party order imports and shipments imports (批量发货) still unfinished after 2 minutes (a job lost with SQLite's in-memory queue) |
| orders.expire_unpaid | 1 min | cancel orders unpaid after GC_ORDER_UNPAID_MINUTES, releasing their stock and coupons once |
| orders.notices | 1 min | send the "new order" SMS to the clerks on duty (outbox, one per order); also deferred by a paid order |
| orders.goods_auto_confirm | 1 h | complete goods orders shipped 10 days ago that the user did not confirm |
| payments.refunds | 5 min | re-send refunds that never reached WeChat Pay, query the ones still processing |
| claims.ocr | 1 min | read cashback receipts not read yet (OCR; leased per image, so workers never read one twice); also deferred by a submission |
| claims.payouts | 2 min | resume cashback payouts left unfinished (a worker died, a timeout): query Alipay first, never a second transfer |
| tasks.prune | daily 03:00 | forget task runs and finished queue jobs older than 30 days, and the 订单看板's change feed (``order_change``) older than a day |
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from gc_admin.db import session_scope

log = logging.getLogger("gc_admin.jobs")


@dataclasses.dataclass(frozen=True)
class Job:
    name: str
    cron: str  # procrastinate's cron (minute hour day month weekday)
    every: str  # the same, for people
    title: str
    run: Callable[[Any], Any]  # takes a session, returns something printable


def _coupon_expiry(session) -> Any:
    from gc_admin.coupons.stock.service import run_expiry

    r = run_expiry(session)
    return {"discarded": r.discarded, "expired_coupons": r.expired_coupons, "loss_cost_fen": r.discarded_cost_fen}


def _coupon_unfinished(session) -> Any:
    from gc_admin.coupons.issuance.flows import resume_batches
    from gc_admin.coupons.stock.flows import resume_imports

    return {"imports": resume_imports(session)["deferred"], "batches": resume_batches(session)}


def _orders_unfinished(session) -> Any:
    from gc_admin.orders.imports.flows import resume_imports
    from gc_admin.orders.suppliers.flows import resume_shipments

    return {"imports": resume_imports(session)["deferred"], "shipments": resume_shipments(session)}


def _exports_sweep(session) -> Any:
    from gc_admin.core.export_jobs import sweep

    return sweep(session)


def _expire_unpaid(session) -> Any:
    from gc_admin.orders.flows import cancel_expired_unpaid

    return cancel_expired_unpaid(session)


def _order_notices(session) -> Any:
    from gc_admin.orders.service import send_order_notices

    return {"sent": send_order_notices(session)}


def _refunds(session) -> Any:
    from gc_admin.orders.refunds import retry_pending_refunds

    return retry_pending_refunds(session)


def _prune(session) -> Any:
    from gc_admin.core.tasks import prune
    from gc_admin.orders.service import prune_changes

    return {**prune(session), "order_changes": prune_changes(session)}


def _goods_auto_confirm(session) -> Any:
    from gc_admin.orders.kinds.goods import auto_confirm_shipped

    return auto_confirm_shipped(session)


def _claims_ocr(session) -> Any:  # noqa: ARG001 - OCR opens its own short units (no transaction while reading)
    from gc_admin.claims.ocr import process_pending

    return process_pending()


def _claims_payouts(session) -> Any:  # noqa: ARG001 - each payout in its own units; Alipay asked outside them
    from gc_admin.claims.payout import resume_unfinished

    return resume_unfinished()


JOBS: list[Job] = [
    Job("coupons.expiry", "0 * * * *", "每小时", "券到期：弃票与过期券", _coupon_expiry),
    Job("coupons.unfinished", "* * * * *", "每分钟", "续办未完成的券码导入与批量发券", _coupon_unfinished),
    Job("orders.unfinished", "* * * * *", "每分钟", "续办未完成的第三方订单导入与批量发货", _orders_unfinished),
    Job("exports.sweep", "* * * * *", "每分钟", "续办未完成的导出、清理 1 小时前的导出文件", _exports_sweep),
    Job("orders.expire_unpaid", "* * * * *", "每分钟", "超时未支付订单自动取消", _expire_unpaid),
    Job("orders.notices", "* * * * *", "每分钟", "新订单短信通知值班内勤", _order_notices),
    Job("payments.refunds", "*/5 * * * *", "每 5 分钟", "补发未送达的退款、查询处理中的退款", _refunds),
    Job("orders.goods_auto_confirm", "30 * * * *", "每小时", "发货 10 天未确认的实物订单自动确认收货", _goods_auto_confirm),
    Job("claims.ocr", "* * * * *", "每分钟", "识别返现小票（OCR）", _claims_ocr),
    Job("claims.payouts", "*/2 * * * *", "每 2 分钟", "续办未完成的返现打款（先查询支付宝，绝不重复转账）", _claims_payouts),
    Job("tasks.prune", "0 19 * * *", "每天 03:00", "清理 30 天前的任务记录、1 天前的看板变更记录", _prune),  # 19:00 UTC = 03:00 Shanghai
]


def run_once(job: Job) -> Any:
    """One run of ``job`` in its own unit of work."""
    with session_scope() as session:
        return job.run(session)

