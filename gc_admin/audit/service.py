"""Writing and reading the audit log."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import polars as pl
from sqlalchemy import func, insert
from sqlmodel import Session, col, select

from gc_admin.audit.models import AuditLog
from gc_admin.core.clock import fmt_local, utcnow
from gc_admin.core.export_jobs import Filters, register_export
from gc_admin.core.exports import EXPORT_LIMIT
from gc_admin.core.principal import SYSTEM as SYSTEM  # re-exported for the services that record actors
from gc_admin.core.principal import Actor as Actor
from gc_admin.core.sorting import order_by
from gc_admin.db import Page, paginate

ACTION_LABELS: dict[str, str] = {
    "staff.login": "员工登录",
    "staff.login_failed": "员工登录失败",
    "staff.logout": "员工退出",
    "staff.created": "创建员工",
    "staff.role_changed": "变更角色",
    "staff.programme_changed": "变更所属项目",
    "staff.password_reset": "重置密码",
    "staff.disabled": "停用账号",
    "staff.enabled": "启用账号",
    "user.login": "用户登录",
    "user.phone_bound": "用户绑定手机号",
    "sms.sent": "发送短信",
    "partner.key_created": "创建合作方密钥",
    "programme.created": "创建项目",
    "product.created": "新建券种",
    "product.updated": "修改券种",
    "stock.imported": "导入券码",
    "stock.import_failed": "导入失败",
    "stock.discarded": "临期弃票",
    "stock.code_revealed": "查看完整券码",
    "coupon.issued": "发券",
    "coupon.revealed": "使用兑换码",
    "coupon.re_revealed": "再次查看兑换码",
    "coupon.reserved": "锁定券",
    "coupon.consumed": "核销券",
    "coupon.released": "释放券",
    "coupon.expired": "券过期",
    "coupon.claimed": "券归属用户",
    "orders.imported": "导入第三方订单",
    "orders.import_failed": "第三方订单导入失败",
    "orders.shipments_import_failed": "批量发货失败",
    "order.created": "创建订单",
    "order.pay": "订单支付",
    "order.accept": "接单",
    "order.fulfil": "开始履约",
    "order.complete": "订单完成",
    "order.confirm": "用户确认收货",
    "order.cancel": "取消订单",
    "order.after_sales": "转售后",
    "order.resolve": "售后完结",
    "order.request_refund": "申请退款",
    "payment.anomaly": "支付异常",
    "payment.reconciled": "支付对账补记",
    "refund.requested": "发起退款",
    "refund.succeeded": "退款成功",
    "refund.failed": "退款失败",
    "points.granted": "发放积分",
    "stored_value.loaded": "储值充值",
    "partner.key_revoked": "吊销合作方密钥",
    "system.demo_loaded": "载入演示数据",
}
ACTOR_TYPES: dict[str, str] = {"staff": "员工", "user": "用户", "partner": "合作方", "system": "系统"}
# what an audit row is about, as a person reads it (the page keeps the code beside it, smaller)
TARGET_TYPES: dict[str, str] = {
    "bouquet": "鲜花款式",
    "claim": "返现申请",
    "coupon": "券",
    "driver": "代驾司机",
    "goods": "实物商品",
    "issuance_batch": "发券批次",
    "job": "定时任务",
    "mp_user": "用户",
    "order_import": "订单导入",
    "order_source": "订单来源",
    "partner_key": "合作方密钥",
    "product": "券种",
    "programme": "权益项目",
    "reconciliation_run": "对账记录",
    "service_order": "订单",
    "shipment_import": "批量发货",
    "staff": "员工",
    "stock_code": "券码",
    "stock_import": "券码导入",
    "supplier": "供货商",
}
_TARGET_BY_LABEL = {label: key for key, label in TARGET_TYPES.items()}


def target_label(target_type: str | None, target_id: str | None) -> str:
    """``券码导入 #437`` for ``stock_import`` / ``437``; an unknown type shows as it is; nothing: ``—``."""
    if not target_type and not target_id:
        return "—"
    label = TARGET_TYPES.get(target_type or "", target_type or "")
    return f"{label} #{target_id}".strip() if target_id else label


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def entry(
    *,
    actor: Actor,
    action: str,
    target_type: str | None = None,
    target_id: Any = None,
    summary: str = "",
    before: Any = None,
    after: Any = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The column values of one audit row (what :func:`record` adds; :func:`record_many` inserts a list).

    Callers must never pass secrets (passwords, whole codes, card numbers) in before/after.
    """
    return {
        "at": at or utcnow(),
        "actor_type": actor.type,
        "actor_id": None if actor.id is None else str(actor.id),
        "actor_name": actor.name[:64],
        "action": action,
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id),
        "summary": summary[:500],
        "before": _dump(before),
        "after": _dump(after),
        "ip": actor.ip,
    }


def record(session: Session, *, actor: Actor, action: str, **fields: Any) -> AuditLog:
    """Append one audit row in the caller's transaction (it commits or rolls back with it); ``fields``:
    the rest of :func:`entry`'s (target, summary, before / after).

    Callers must never pass secrets (passwords, whole codes, card numbers) in before/after.
    """
    row = AuditLog(**entry(actor=actor, action=action, **fields))
    session.add(row)
    session.flush()
    return row


_INSERT = insert(AuditLog.__table__)


def record_many(session: Session, entries: list[dict[str, Any]]) -> None:
    """Append the audit rows of one unit of work (each made by :func:`entry`) in one ``INSERT``
    (``executemany``), in the caller's transaction — a request that changes several things writes its
    rows in one round trip instead of one ORM flush each."""
    if entries:
        session.connection().execute(_INSERT, entries)


AUDIT_SORT_KEYS = {"at": col(AuditLog.at), "actor": col(AuditLog.actor_name), "action": col(AuditLog.action),
                   "target": col(AuditLog.target_type), "ip": col(AuditLog.ip)}


def _audit_query(*, action: str | None, actor: str | None, target: str | None, since: dt.datetime | None,
                 until: dt.datetime | None):
    q = select(AuditLog)
    if action:
        q = q.where(col(AuditLog.action).startswith(action))
    if actor:
        q = q.where((col(AuditLog.actor_name).contains(actor)) | (col(AuditLog.actor_id) == actor))
    if target:
        target_type = _TARGET_BY_LABEL.get(target, target)  # 订单 finds service_order rows
        q = q.where((col(AuditLog.target_id) == target) | (col(AuditLog.target_type) == target_type))
    if since:
        q = q.where(col(AuditLog.at) >= since)
    if until:
        q = q.where(col(AuditLog.at) < until)
    return q


def _audit_order(sort: str | None) -> list:
    return order_by(sort, AUDIT_SORT_KEYS, tie=col(AuditLog.id), default=[col(AuditLog.id).desc()])


def list_audit(
    session: Session,
    *,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    sort: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[AuditLog]:
    """A filtered page of the log, newest first (or by ``sort``: :data:`AUDIT_SORT_KEYS`), with the total."""
    q = _audit_query(action=action, actor=actor, target=target, since=since, until=until)
    return paginate(session, q, order=_audit_order(sort), offset=offset, limit=limit)


def audit_frame(session: Session, *, action: str | None = None, actor: str | None = None, target: str | None = None,
                since: dt.datetime | None = None, until: dt.datetime | None = None,
                sort: str | None = None) -> pl.DataFrame:
    """Every row matching the filters (up to the export limit), in the list's order, labelled in Chinese."""
    q = _audit_query(action=action, actor=actor, target=target, since=since, until=until)
    rows = session.exec(q.order_by(*_audit_order(sort)).limit(EXPORT_LIMIT)).all()
    return pl.DataFrame({
        "日志ID": pl.Series([r.id for r in rows], dtype=pl.Int64),
        "时间": [fmt_local(r.at, seconds=True) for r in rows],
        "操作人类型": [ACTOR_TYPES.get(r.actor_type, r.actor_type) for r in rows],
        "操作人": [r.actor_name or r.actor_id or "" for r in rows],
        "操作": [ACTION_LABELS.get(r.action, r.action) for r in rows],
        "操作代码": [r.action for r in rows],
        "对象": [target_label(r.target_type, r.target_id) for r in rows],
        "对象类型代码": [r.target_type or "" for r in rows],
        "说明": [r.summary for r in rows],
        "IP": [r.ip or "" for r in rows],
    })


def export_audit(session: Session, who: Any, filters: dict[str, Any]) -> pl.DataFrame:  # noqa: ARG001 - one scope
    """The ``audit`` export (``exports.build``): :func:`audit_frame` of the page's filters."""
    f = Filters(filters)
    return audit_frame(session, action=f.text("action", limit=64), actor=f.text("actor", limit=64),
                       target=f.text("target", limit=64), since=f.time("since"), until=f.time("until"),
                       sort=f.text("sort", limit=32))


AUDIT_EXPORT = register_export("audit", "操作日志", export_audit, section="audit")


def count_since(session: Session, since: dt.datetime) -> int:
    return int(session.exec(select(func.count()).select_from(AuditLog).where(col(AuditLog.at) >= since)).one())
