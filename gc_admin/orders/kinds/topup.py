"""话费充值: a mobile phone top-up of a fixed face value (:data:`TOPUP_FACES`), done by a clerk once paid.

Body: ``details = {"mobile": 11-digit number, "face_fen": 5000 | 10000}`` (integers only: ``5000.0``
is refused). A platform ``service_discount`` coupon fits it.

Staff: the clerk tops the number up by hand (Alipay / WeChat) and marks it ``complete`` with the
provider's reference (``provider_ref``, shown to the user in ``fulfilment``), or ``fail`` with a
reason, which refunds the order in full automatically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from gc_admin.core.errors import InvalidInput
from gc_admin.core.money import format_fen
from gc_admin.core.phone import mask_phone, normalize_phone
from gc_admin.orders.kinds.base import ActionOutcome, Kind, Line, Lines, OrderDraft, refuse_unknown, text_field
from gc_admin.users.models import MpUser

TOPUP_FACES = (5_000, 10_000)  # ¥50, ¥100


def lines(session: Session, user: MpUser, d: OrderDraft) -> Lines:
    mobile = normalize_phone(str(d.details.get("mobile", "")))
    if mobile is None:
        raise InvalidInput("请输入正确的 11 位充值手机号", code="INVALID_MOBILE")
    face = d.details.get("face_fen")
    if type(face) is not int or face not in TOPUP_FACES:  # 5000.0 == 5000: no floats
        raise InvalidInput("充值面额只能是 50 元或 100 元", code="INVALID_FACE")
    refuse_unknown(d.details, {"mobile", "face_fen"}, what="未知的充值字段")
    line = Line(f"topup{face // 100}", f"话费充值 {face // 100} 元", 1, face)
    return Lines((line,), {"mobile": mobile, "face_fen": face})


def details_text(details: Mapping[str, Any]) -> str:
    """``充值号码 138****5678 · 面额 ¥50.00`` (the number masked)."""
    parts: list[str] = []
    if details.get("mobile"):
        parts.append(f"充值号码 {mask_phone(str(details['mobile']))}")
    face = details.get("face_fen")
    if isinstance(face, int) and not isinstance(face, bool):
        parts.append(f"面额 {format_fen(face)}")
    return " · ".join(parts)


def on_action(session: Session, *, order: Any, action: str, fields: Mapping[str, Any], actor: Any,
              now: Any) -> ActionOutcome | None:
    """complete: the provider's reference is required (the user sees it); fail: an optional one is kept."""
    if action == "complete":
        ref = text_field(fields, "provider_ref", "充值平台的交易单号", max_len=64)
        return ActionOutcome(fulfilment={"provider_ref": ref}, note=f"充值单号 {ref}")
    if action == "fail":
        ref = text_field(fields, "provider_ref", "充值平台的交易单号", max_len=64, required=False)
        return ActionOutcome(fulfilment={"failed": True, **({"provider_ref": ref} if ref else {})})
    return None


KIND = Kind("topup", lines=lines, coupon_fits=("service_discount",), details_text=details_text,
            actions=("accept", "fulfil", "complete", "fail", "after_sales", "resolve", "cancel"),
            action_fields={"complete": ("provider_ref",), "fail": ("provider_ref",)}, on_action=on_action)
