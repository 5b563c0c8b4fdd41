"""Sending SMS through the configured provider, recording each message first.

Two readers of what was sent: staff (短信记录, ``GET /api/v1/admin/sms/outbox``) get
:func:`list_outbox`, where every secret parameter (a login code) is masked whatever the
environment — the code is for the user, not for staff; the phone's own side (the dev/test
simulator ``/sim/sms/_inbox``, tests) gets :func:`messages_to`, whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import re
import string

from sqlalchemy import func
from sqlmodel import Session, col, select

from gc_admin.config import get_settings
from gc_admin.core.clock import utcnow
from gc_admin.core.sorting import order_by
from gc_admin.db import Page, paginate
from gc_admin.integrations.sms.base import SECRET_PARAMS, TEMPLATES, SmsError, SmsSender, render
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


MASK = "******"
HIDDEN = "（内容含验证码，已隐藏）"


@functools.cache
def _template_re(template: str) -> tuple[re.Pattern[str], tuple[bool, ...]] | None:
    """A pattern matching ``template``'s rendered text, one group per parameter, and which are secret."""
    if template not in TEMPLATES:
        return None
    text, _ = TEMPLATES[template]
    pattern, secret = "", []
    for literal, field, _spec, _conv in string.Formatter().parse(text):
        pattern += re.escape(literal)
        if field is not None:
            pattern += "(.*?)"
            secret.append(field in SECRET_PARAMS)
    return re.compile(pattern, re.DOTALL), tuple(secret)


def staff_text(template: str, content: str) -> str:
    """A message as staff may read it: every secret parameter (login code) replaced by ``******``.
    A message that should hold a secret but does not match its template is hidden entirely."""
    compiled = _template_re(template)
    if compiled is None:
        return content
    pattern, secret = compiled
    if not any(secret):
        return content
    m = pattern.fullmatch(content)
    if m is None:
        return HIDDEN
    out, at = [], 0
    for i, flag in enumerate(secret, start=1):
        if flag:
            out += [content[at:m.start(i)], MASK]
            at = m.end(i)
    out.append(content[at:])
    return "".join(out)


@dataclasses.dataclass(frozen=True)
class OutboxRow:
    """A recorded message as staff see it (:func:`staff_text`)."""

    id: int
    phone: str
    template: str
    content: str
    provider: str
    status: str
    created_at: dt.datetime


OUTBOX_SORT_KEYS = {"created_at": col(SmsMessage.created_at), "phone": col(SmsMessage.phone),
                    "provider": col(SmsMessage.provider), "status": col(SmsMessage.status)}


def list_outbox(session: Session, *, phone: str = "", sort: str | None = None, offset: int = 0,
                limit: int = 50) -> Page[OutboxRow]:
    """Recorded messages, newest first (or by ``sort``: :data:`OUTBOX_SORT_KEYS`), for staff: login
    codes masked (:func:`staff_text`)."""
    q = select(SmsMessage)
    digits = "".join(ch for ch in phone if ch.isdigit())[:11]  # never pass e.g. a NUL byte to the database
    if digits:
        q = q.where(col(SmsMessage.phone).contains(digits))
    order = order_by(sort, OUTBOX_SORT_KEYS, tie=col(SmsMessage.id), default=[col(SmsMessage.id).desc()])
    return paginate(session, q, order=order, offset=offset, limit=limit,
                    row=lambda m: OutboxRow(m.id or 0, m.phone, m.template, staff_text(m.template, m.content),
                                            m.provider, m.status, m.created_at))


def messages_to(session: Session, *, phone: str, limit: int = 10) -> list[SmsMessage]:
    """What ``phone`` received, newest first, whole: the phone's side of the outbox (the dev/test
    simulator ``/sim/sms/_inbox`` and tests play the user reading their SMS). Never for staff."""
    return list(session.exec(select(SmsMessage).where(SmsMessage.phone == phone)
                             .order_by(col(SmsMessage.id).desc()).limit(min(max(limit, 1), 50))).all())


def count_since(session: Session, since) -> int:
    return int(session.exec(select(func.count()).select_from(SmsMessage).where(col(SmsMessage.created_at) >= since)).one())
