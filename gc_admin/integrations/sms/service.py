"""Sending SMS through the configured provider, recording each message first."""

from __future__ import annotations

import dataclasses
import logging

from sqlalchemy import func
from sqlmodel import Session, col, select

from gc_admin.config import get_settings
from gc_admin.core.clock import utcnow
from gc_admin.core.sorting import order_by
from gc_admin.integrations.sms.base import SECRET_PARAMS, SmsError, SmsSender, render
from gc_admin.integrations.sms.models import SmsMessage

log = logging.getLogger(__name__)

# the channel (``sms_message.provider``) as staff read it
PROVIDER_LABELS = {"outbox": "站内记录（未真实发送）", "aliyun": "阿里云短信", "tencent": "腾讯云短信"}


class OutboxSender:
    """Dev/demo sender: delivers nothing; the recorded row *is* the message."""

    name = "outbox"

    def send(self, *, phone: str, template: str, params: dict[str, str]):  # noqa: ARG002
        from gc_admin.integrations.sms.base import SendResult

        return SendResult(provider_ref="outbox")


_sender_override: SmsSender | None = None


def set_sender(sender: SmsSender | None) -> None:
    """Replace the configured sender (tests)."""
    global _sender_override
    _sender_override = sender


def get_sender() -> SmsSender:
    """The sender for ``GC_SMS_PROVIDER``."""
    if _sender_override is not None:
        return _sender_override
    s = get_settings()
    if s.sms_provider == "aliyun":
        from gc_admin.integrations.sms.aliyun import AliyunSmsSender

        v = s.sms_aliyun
        return AliyunSmsSender(access_key_id=v.key_id, access_key_secret=v.key_secret, sign_name=v.sign_name,
                               templates=v.templates, endpoint=v.endpoint)
    if s.sms_provider == "tencent":
        from gc_admin.integrations.sms.tencent import TencentSmsSender

        v = s.sms_tencent
        return TencentSmsSender(secret_id=v.key_id, secret_key=v.key_secret, sdk_app_id=v.app_id,
                                sign_name=v.sign_name, templates=v.templates, region=v.region, endpoint=v.endpoint)
    return OutboxSender()


def send_sms(session: Session, *, phone: str, template: str, params: dict[str, str]) -> SmsMessage:
    """Record the message, then send it; the row ends ``recorded``/``sent`` or ``failed``.

    Never raises for a provider failure: the caller reads ``status`` and decides (and must
    commit, so that the failure stays on record).
    """
    settings = get_settings()
    sender = get_sender()
    shown = dict(params)
    if settings.env == "prod":
        shown.update({k: "******" for k in SECRET_PARAMS if k in shown})
    msg = SmsMessage(
        phone=phone, template=template, content=render(template, shown), provider=sender.name,
        status="pending", created_at=utcnow(),
    )
    session.add(msg)
    session.flush()
    try:
        result = sender.send(phone=phone, template=template, params=params)
    except SmsError as exc:
        log.warning("sms %s to message id=%s failed: %s", template, msg.id, exc)
        msg.status, msg.error = "failed", str(exc)[:200]
    else:
        msg.status = "recorded" if sender.name == "outbox" else "sent"
        msg.provider_ref = result.provider_ref[:64]
        msg.sent_at = utcnow()
    session.add(msg)
    session.flush()
    return msg


@dataclasses.dataclass(frozen=True)
class OutboxPage:
    rows: list[SmsMessage]
    total: int


OUTBOX_SORT_KEYS = {"created_at": col(SmsMessage.created_at), "phone": col(SmsMessage.phone),
                    "provider": col(SmsMessage.provider), "status": col(SmsMessage.status)}


def list_outbox(session: Session, *, phone: str = "", sort: str | None = None, offset: int = 0,
                limit: int = 50) -> OutboxPage:
    """Recorded messages, newest first (or by ``sort``: :data:`OUTBOX_SORT_KEYS`)."""
    q = select(SmsMessage)
    digits = "".join(ch for ch in phone if ch.isdigit())[:11]  # never pass e.g. a NUL byte to the database
    if digits:
        q = q.where(col(SmsMessage.phone).contains(digits))
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    order = order_by(sort, OUTBOX_SORT_KEYS, tie=col(SmsMessage.id), default=[col(SmsMessage.id).desc()])
    rows = session.exec(q.order_by(*order).offset(max(offset, 0)).limit(min(max(limit, 1), 200))).all()
    return OutboxPage(list(rows), int(total))


def count_since(session: Session, since) -> int:
    return int(session.exec(select(func.count()).select_from(SmsMessage).where(col(SmsMessage.created_at) >= since)).one())
