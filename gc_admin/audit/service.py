"""Writing and reading the audit log."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from gc_admin.audit.models import AuditLog
from gc_admin.core.clock import utcnow

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
}


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who is acting: a staff member, a mini-program user, a partner or the system."""

    type: str
    id: str | None = None
    name: str = ""
    ip: str | None = None


SYSTEM = Actor("system", None, "系统")


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    target_type: str | None = None,
    target_id: Any = None,
    summary: str = "",
    before: Any = None,
    after: Any = None,
) -> AuditLog:
    """Append one audit row in the caller's transaction (it commits or rolls back with it).

    Callers must never pass secrets (passwords, whole codes, card numbers) in before/after.
    """
    row = AuditLog(
        at=utcnow(),
        actor_type=actor.type,
        actor_id=None if actor.id is None else str(actor.id),
        actor_name=actor.name[:64],
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        summary=summary[:500],
        before=_dump(before),
        after=_dump(after),
        ip=actor.ip,
    )
    session.add(row)
    session.flush()
    return row


@dataclasses.dataclass(frozen=True)
class AuditPage:
    rows: list[AuditLog]
    total: int


def list_audit(
    session: Session,
    *,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> AuditPage:
    """A filtered page of the log, newest first, with the total count."""
    q = select(AuditLog)
    if action:
        q = q.where(col(AuditLog.action).startswith(action))
    if actor:
        q = q.where((col(AuditLog.actor_name).contains(actor)) | (col(AuditLog.actor_id) == actor))
    if target:
        q = q.where((col(AuditLog.target_id) == target) | (col(AuditLog.target_type) == target))
    if since:
        q = q.where(col(AuditLog.at) >= since)
    if until:
        q = q.where(col(AuditLog.at) < until)
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    rows = session.exec(q.order_by(col(AuditLog.id).desc()).offset(max(offset, 0)).limit(min(max(limit, 1), 200))).all()
    return AuditPage(rows=list(rows), total=int(total))


def count_since(session: Session, since: dt.datetime) -> int:
    return int(session.exec(select(func.count()).select_from(AuditLog).where(col(AuditLog.at) >= since)).one())
