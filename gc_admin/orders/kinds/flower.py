"""鲜花配送: a bouquet from the catalogue delivered to a recipient in one of the 14 Guangxi cities, in an
hourly slot (:mod:`gc_admin.orders.flowers.service`).

Body (API.md): ``flower: {bouquet_code, recipient_name, recipient_phone, city, district?, address,
slot_start, greeting?}``. Refused at quote and at order alike: an unknown or inactive bouquet, a city
outside the 14 (the message names them all), a slot that is past, too soon, off the hour, outside opening
hours or full. The slot is booked in the order's own transaction (:func:`~gc_admin.orders.flowers.service.book_slot`),
so a full slot found at that moment rolls the order back. A platform ``service_discount`` coupon fits it
(鲜花立减 30: ¥150 → ¥120).

Clerk (:data:`ACTIONS`): ``accept`` with the Meituan shop's name, phone and ETA (stored in ``fulfilment``,
which the user sees), ``fulfil`` when the shop has delivered (``delivered_at``; the ETA may be corrected),
``complete``; the user may ``confirm`` receipt instead. No shop can deliver: ``after_sales``, then a full
refund (the coupon comes back, the slot is freed).

The order's ``details`` keep what the user asked for (the recipient's phone whole: the clerk needs it
to place the order with the shop); the staff panel's one-line reading masks it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from gc_admin.core.clock import SHANGHAI
from gc_admin.core.errors import Conflict, InvalidInput
from gc_admin.core.phone import mask_phone, normalize_phone
from gc_admin.core.regions import OUTSIDE_AREA, guangxi_city
from gc_admin.orders.flowers import service as flowers
from gc_admin.orders.flowers.models import BOUQUET_NOTE
from gc_admin.orders.kinds.base import ActionOutcome, Kind, Line, Lines, OrderDraft, refuse_unknown, text_field
from gc_admin.orders.models import ServiceOrder
from gc_admin.users.models import MpUser

FIELDS = ("bouquet_code", "recipient_name", "recipient_phone", "city", "district", "address", "slot_start",
          "greeting")
REQUIRED = {"bouquet_code": "花束", "recipient_name": "收花人姓名", "recipient_phone": "收花人手机号", "city": "城市",
            "address": "详细地址", "slot_start": "配送时段"}


def _bad(message: str, code: str = "INVALID_ORDER") -> InvalidInput:
    return InvalidInput(message, code=code)


def _text(d: Mapping[str, Any], key: str, label: str, *, hi: int, lo: int = 1) -> str:
    value = d.get(key)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _bad(f"{label}需为文字")
    value = " ".join(value.split())
    if len(value) < lo:
        raise _bad(f"请填写{label}" if not value else f"{label}至少 {lo} 个字")
    if len(value) > hi:
        raise _bad(f"{label}不超过 {hi} 个字")
    return value


def _slot_start(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        start = value
    else:
        try:
            start = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise _bad("配送时段格式不正确，请从可选时段中选择", "SLOT_INVALID") from None
    if start.tzinfo is None:
        raise _bad("配送时段需带时区，例如 2026-12-02T10:00:00+08:00", "SLOT_INVALID")
    return start


def lines(session: Session, user: MpUser, d: OrderDraft) -> Lines:
    f = d.details
    refuse_unknown(f, FIELDS, what="未知的鲜花订单字段")
    missing = [label for key, label in REQUIRED.items() if f.get(key) in (None, "")]
    if missing:
        raise _bad(f"请填写{'、'.join(missing)}")
    city = guangxi_city(f.get("city"))
    if city is None:
        raise InvalidInput(f"抱歉，该地址不在鲜花配送范围内：{OUTSIDE_AREA}", code="CITY_NOT_SERVED")
    bouquet = flowers.get_bouquet(session, code=_text(f, "bouquet_code", "花束编码", hi=32))
    if not bouquet.active:
        raise Conflict(f"花束“{bouquet.name}”已下架，请选择其他花束", code="BOUQUET_INACTIVE")
    phone = normalize_phone(str(f.get("recipient_phone", "")))
    if phone is None:
        raise _bad("请输入正确的 11 位收花人手机号", "INVALID_PHONE")
    start = flowers.check_slot(session, city=city, start=_slot_start(f.get("slot_start")))
    details: dict[str, Any] = {
        "bouquet_code": bouquet.code, "bouquet_name": bouquet.name,
        "recipient_name": _text(f, "recipient_name", "收花人姓名", hi=32), "recipient_phone": phone,
        "city": city, "district": _text(f, "district", "区县", hi=32, lo=0),
        "address": _text(f, "address", "详细地址", hi=120, lo=2),
        "slot_start": start.astimezone(SHANGHAI).isoformat(),
        "slot_end": (start + dt.timedelta(hours=1)).astimezone(SHANGHAI).isoformat(),
        "greeting": _text(f, "greeting", "贺卡留言", hi=100, lo=0), "note": BOUQUET_NOTE,
    }
    return Lines((Line(bouquet.code, bouquet.name, 1, bouquet.price_fen),), details)


def on_created(session: Session, *, order: ServiceOrder, quote: Any, now: dt.datetime) -> None:
    """Hold the slot (locked, counted again): a slot that filled up since the quote rolls the order back."""
    d = quote.details
    bouquet = flowers.get_bouquet(session, code=d["bouquet_code"])
    assert bouquet.id is not None
    flowers.book_slot(session, order=order, bouquet_id=bouquet.id, city=d["city"],
                      start=dt.datetime.fromisoformat(d["slot_start"]), now=now)


# --- the clerk's moves -------------------------------------------------------------------------------

_SHOP_PHONE = re.compile(r"^(?:1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8}(?:-[0-9]{1,6})?|[0-9]{7,8})$")


def _shop_phone(fields: Mapping[str, Any]) -> str:
    raw = fields.get("shop_phone")
    text = "".join(str(raw or "").split()).replace("－", "-")
    if not text:
        raise InvalidInput("请填写花店电话", code="FIELD_REQUIRED")
    if not _SHOP_PHONE.match(text):
        raise InvalidInput("花店电话格式不正确：手机号或带区号的座机，例如 0771-5551234", code="INVALID_FIELD")
    return text


def parse_eta(value: Any, *, slot_start: str | None, now: dt.datetime) -> dt.datetime:
    """The shop's estimated delivery time: ISO-8601 with offset, ``YYYY-MM-DD HH:MM`` or ``HH:MM`` (Asia/Shanghai;
    ``HH:MM`` on the delivery slot's day). Not in the past, not more than 3 days after the slot."""
    text = str(value or "").strip()
    if not text:
        raise InvalidInput("请填写预计送达时间", code="FIELD_REQUIRED")
    slot = dt.datetime.fromisoformat(slot_start).astimezone(SHANGHAI) if slot_start else now.astimezone(SHANGHAI)
    try:
        if re.fullmatch(r"[0-9]{1,2}:[0-9]{2}", text):
            hh, mm = (int(x) for x in text.split(":"))
            eta = dt.datetime.combine(slot.date(), dt.time(hh, mm), tzinfo=SHANGHAI)
        else:
            eta = dt.datetime.fromisoformat(text)
            if eta.tzinfo is None:
                eta = eta.replace(tzinfo=SHANGHAI)
    except ValueError:
        raise InvalidInput("预计送达时间格式不正确，例如 14:30 或 2026-12-02 14:30", code="INVALID_FIELD") from None
    if eta < now - dt.timedelta(minutes=5):
        raise InvalidInput("预计送达时间不能早于现在", code="INVALID_FIELD")
    if eta > slot + dt.timedelta(days=3):
        raise InvalidInput("预计送达时间距配送时段过远，请核对", code="INVALID_FIELD")
    return eta.astimezone(SHANGHAI)


def on_action(session: Session, *, order: ServiceOrder, action: str, fields: Mapping[str, Any], actor: Any,
              now: dt.datetime) -> ActionOutcome | None:
    """accept: the Meituan shop's name and phone and its estimated delivery time (the user sees them);
    fulfil: the shop delivered (Meituan's tracking) — recorded with its time; an ETA may be corrected."""
    details = order.details or {}
    if action == "accept":
        shop = text_field(fields, "shop_name", "花店名称", max_len=64)
        phone = _shop_phone(fields)
        eta = parse_eta(fields.get("eta"), slot_start=details.get("slot_start"), now=now)
        return ActionOutcome(fulfilment={"shop_name": shop, "shop_phone": phone, "eta": eta.isoformat()},
                             note=f"美团花店 {shop}（{phone}），预计 {eta:%m-%d %H:%M} 送达")
    if action == "fulfil":
        out: dict[str, Any] = {"delivered_at": now.astimezone(SHANGHAI).isoformat(timespec="minutes")}
        if fields.get("eta"):
            out["eta"] = parse_eta(fields.get("eta"), slot_start=details.get("slot_start"), now=now).isoformat()
        return ActionOutcome(fulfilment=out, note="花店已送达")
    return None


def details_text(details: Mapping[str, Any]) -> str:
    """``红玫瑰 11 枝 · 南宁 青秀区 · 12-02 10:00 · 收花人 张* 138****5678`` (the phone masked)."""
    parts: list[str] = []
    if details.get("bouquet_name"):
        parts.append(str(details["bouquet_name"]))
    where = " ".join(str(details[k]) for k in ("city", "district") if details.get(k))
    if where:
        parts.append(where)
    if details.get("slot_start"):
        try:
            parts.append(f"{dt.datetime.fromisoformat(details['slot_start']).astimezone(SHANGHAI):%m-%d %H:00}")
        except ValueError:
            pass
    if details.get("recipient_phone"):
        name = str(details.get("recipient_name") or "")
        parts.append(f"收花人 {name[:1] + '*' * (len(name) - 1) if name else ''} "
                     f"{mask_phone(str(details['recipient_phone']))}".replace("  ", " "))
    return " · ".join(parts)


#: the clerk's moves: accept (shop, phone, ETA) → fulfil (delivered) → complete; the user may confirm receipt
#: instead; no shop → after_sales, then refund; an unpaid order is cancelled
ACTIONS = ("accept", "fulfil", "complete", "cancel", "after_sales", "resolve")
ACTION_FIELDS = {"accept": ("shop_name", "shop_phone", "eta"), "fulfil": ("eta",)}

KIND = Kind("flower", lines=lines, coupon_fits=("service_discount",), on_created=on_created,
            details_text=details_text, actions=ACTIONS, action_fields=ACTION_FIELDS, on_action=on_action)
