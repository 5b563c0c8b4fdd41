"""代驾: the user books a designated driver; the fee is settled when the service ends.

Body (``POST /mp/orders`` with ``type: "driver"``): ``driver: {pickup: {city, address, lat?, lng?},
destination: {...}, at, contact_phone, plate_no?}``, optionally ``coupon_id`` (a 代驾 ``service_discount``
coupon). ``at`` is ISO-8601 with offset, in the future and at most :data:`MAX_DAYS_AHEAD` days ahead;
``contact_phone`` a mainland mobile; ``plate_no`` a mainland plate (``桂A12345``, new-energy ``桂AD12345``).
Points and stored value are refused: nothing is charged at booking.

Booking is free: the order's list price is 0, so it is paid at once (no WeChat Pay) and waits for
dispatch (``paid``: 待派单); the coupon is used on it at booking (and given back if it is cancelled).
The fee is set at completion (:mod:`gc_admin.orders.drivers.dispatch`): the coupon covers up to its face,
the user pays the rest by WeChat Pay in the mini-program (``awaiting_payment``). The user must be
signed in with WeChat to book, so that the remainder can be paid.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from gc_admin.core.clock import SHANGHAI, fmt_local, utcnow
from gc_admin.core.errors import Conflict, InvalidInput
from gc_admin.core.phone import mask_phone, normalize_phone
from gc_admin.orders.drivers import dispatch
from gc_admin.orders.kinds.base import Kind, Line, Lines, OrderDraft, refuse_unknown
from gc_admin.users.models import MpUser

MAX_DAYS_AHEAD = 30
FIELDS = ("pickup", "destination", "at", "contact_phone", "plate_no")
PLACE_FIELDS = ("city", "address", "lat", "lng")
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# province + issuing letter + 5 characters (the last may be 挂/学/警/港/澳), or 6 for a new-energy plate
PLATE_RE = re.compile(rf"^[{_PROVINCES}][A-HJ-NP-Z](?:[A-HJ-NP-Z0-9]{{4}}[A-HJ-NP-Z0-9挂学警港澳]|[DF][A-HJ-NP-Z0-9]{{5}}"
                      rf"|[A-HJ-NP-Z0-9]{{5}}[DF])$")


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, code="INVALID_ORDER")


def _place(value: Any, label: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(f"请填写{label}（城市和详细地址）")
    refuse_unknown(value, PLACE_FIELDS, what=f"{label}有未知字段")
    city, address = value.get("city"), value.get("address")
    if not isinstance(city, str) or not 1 <= len(city.strip()) <= 16:
        raise _bad(f"请填写{label}所在城市")
    if not isinstance(address, str) or not 2 <= len(address.strip()) <= 200:
        raise _bad(f"请填写{label}的详细地址（2–200 个字）")
    out: dict[str, Any] = {"city": city.strip(), "address": address.strip()}
    for key, lo, hi in (("lat", -90, 90), ("lng", -180, 180)):
        v = value.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise _bad(f"{label}的坐标不正确")
        out[key] = float(v)
    return out


def parse_at(value: Any, *, now: dt.datetime) -> dt.datetime:
    """The booked time: ISO-8601 with an offset, after ``now``, at most :data:`MAX_DAYS_AHEAD` days ahead."""
    try:
        at = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise _bad("请选择代驾时间（ISO-8601，带时区，例如 2026-12-01T20:30:00+08:00）")
    if at <= now:
        raise _bad("代驾时间需晚于现在")
    if at > now + dt.timedelta(days=MAX_DAYS_AHEAD):
        raise _bad(f"只能预约 {MAX_DAYS_AHEAD} 天内的代驾")
    return at


def normalize_plate(value: Any) -> str | None:
    """``桂a·12345`` -> ``桂A12345``; ``None`` / empty -> ``None``; anything else not a plate: ``INVALID_PLATE``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    plate = re.sub(r"[\s·•\-]", "", value).upper() if isinstance(value, str) else ""
    if not PLATE_RE.match(plate):
        raise InvalidInput("车牌号格式不正确（例如 桂A12345 或新能源 桂AD12345）", code="INVALID_PLATE")
    return plate


def lines(session: Session, user: MpUser, d: OrderDraft) -> Lines:
    details = d.details
    refuse_unknown(details, FIELDS, what="未知的代驾字段")
    if d.points or d.use_stored_value:
        raise _bad("代驾费用在服务完成后结算，下单时不能使用积分或储值卡")
    if not user.openid:
        raise Conflict("请使用微信登录小程序后再预约代驾（服务完成后可能需补付车费）", code="WECHAT_LOGIN_REQUIRED")
    pickup = _place(details.get("pickup"), "出发地")
    destination = _place(details.get("destination"), "目的地")
    at = parse_at(details.get("at"), now=utcnow())
    phone = normalize_phone(details.get("contact_phone")) if isinstance(details.get("contact_phone"), str) else None
    if phone is None:
        raise InvalidInput("请填写正确的 11 位联系手机号", code="INVALID_MOBILE")
    line = Line("driver", "代驾服务（费用在服务完成后结算）", 1, 0)
    return Lines((line,), {"pickup": pickup, "destination": destination, "at": at.astimezone(SHANGHAI).isoformat(),
                           "contact_phone": phone, "plate_no": normalize_plate(details.get("plate_no"))})


def details_text(details: Mapping[str, Any]) -> str:
    """``南宁 民族大道 100 号 → 南宁 青秀万达 · 12-01 20:30 · 联系 138****5678 · 桂A12345``."""
    def place(p: Any) -> str:
        return f"{p.get('city', '')} {p.get('address', '')}".strip() if isinstance(p, Mapping) else ""

    parts = [f"{place(details.get('pickup'))} → {place(details.get('destination'))}"]
    if isinstance(details.get("at"), str):
        try:
            parts.append(fmt_local(dt.datetime.fromisoformat(details["at"]))[5:])
        except ValueError:
            pass
    if details.get("contact_phone"):
        parts.append(f"联系 {mask_phone(str(details['contact_phone']))}")
    if details.get("plate_no"):
        parts.append(str(details["plate_no"]))
    return " · ".join(p for p in parts if p.strip(" →"))


KIND = Kind("driver", lines=lines, coupon_fits=("service_discount",), details_text=details_text,
            actions=dispatch.ACTIONS, action_fields=dispatch.ACTION_FIELDS, on_action=dispatch.on_action,
            cancel_paid=dispatch.cancel_paid)
