"""The SMS sender interface and the message templates.

A sender delivers one templated message to one phone and reports the provider's id for it.
``outbox`` (dev/demo) delivers nothing: the message is only recorded in the ``sms_message``
table, shown at /sms and ``GET /api/v1/admin/sms/outbox``. ``aliyun`` and ``tencent`` call the
vendors' real HTTP APIs with their request signatures (see ``aliyun.py`` / ``tencent.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

# Template name -> (Chinese text shown in the outbox, parameter names in vendor order).
TEMPLATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "login_code": ("【滚财车主权益】您的登录验证码为 {code}，5 分钟内有效，请勿告诉他人。", ("code",)),
    "new_order": ("【滚财车主权益】新订单 {order_no}（{order_type}），请及时处理。", ("order_no", "order_type")),
}

# Parameters whose values are secrets: kept out of logs and masked in non-dev outboxes.
SECRET_PARAMS = frozenset({"code"})


class SmsError(Exception):
    """A vendor refused or failed to send (English, for logs)."""


@dataclasses.dataclass(frozen=True)
class SendResult:
    provider_ref: str  # the vendor's id of the message (BizId / SerialNo), or the outbox id


class SmsSender(Protocol):
    name: str

    def send(self, *, phone: str, template: str, params: dict[str, str]) -> SendResult:
        """Deliver ``template`` with ``params`` to ``phone`` (11 digits) or raise :class:`SmsError`."""
        ...


def render(template: str, params: dict[str, str]) -> str:
    text, names = TEMPLATES[template]
    missing = [n for n in names if n not in params]
    if missing:
        raise KeyError(f"template {template} misses params {missing}")
    return text.format(**params)
