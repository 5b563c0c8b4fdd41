"""鲜花配送: the bouquet catalogue and its photos, delivery slots, and booking a slot for an order.

Plain functions, session first, keyword-only after; they never commit and raise typed ``DomainError``s
with Chinese messages.

Catalogue: a bouquet has a code (kept as typed — ``Rose-11`` stays ``Rose-11`` — and unique without
regard to case, as every lookup is), a name, a price in fen, an optional description, ``active`` (only
active ones are on the menu and can be ordered) and ``sort`` (menu order, then code). Every change is
audited with before/after.

Photos: an upload passes :func:`gc_admin.core.uploads.check_image` (type by content, byte and pixel
limits, full decode, re-encoded) and is stored under ``GC_UPLOAD_DIR/bouquets/<sha256>.<ext>`` — outside
every public path, named by its content, so replacing a photo never overwrites a file another request
is reading and the URL changes with the picture (``?v=`` the hash: cacheable for ever). It is served by
``GET /api/v1/mp/bouquets/{code}/image``.

Slots (:func:`day_slots`): hourly, Asia/Shanghai, from ``GC_FLOWER_OPEN`` to ``GC_FLOWER_CLOSE``; a slot is
offered only if it starts at least ``GC_FLOWER_LEAD_MINUTES`` from now and within ``GC_FLOWER_DAYS_AHEAD``
days; each city's slot takes ``GC_FLOWER_SLOT_CAPACITY`` live orders. "Live": every flower order in the
slot except cancelled and refunded ones, and unpaid ones past their payment deadline (the expiry job
cancels those), so a cancellation or a refund frees its place with no bookkeeping of its own.
:func:`book_slot` runs in the order's creating transaction: it serialises the units of work booking that
city's slot (:func:`gc_admin.db.lock_keys`: the write lock on SQLite, an advisory lock on PostgreSQL),
counts again and writes the ``flower_delivery`` row — two users taking the last place at once: one wins,
the other is told the slot is full.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from sqlalchemy import and_, func, not_, or_
from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.config import FlowerSettings, get_settings
from gc_admin.core.clock import SHANGHAI, iso, utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.core.money import format_fen
from gc_admin.core.principal import Actor
from gc_admin.core.photos import PhotoStore, StoredImage, photo_change
from gc_admin.db import Page, insert_first, lock_keys, paginate
from gc_admin.orders.flowers.models import BOUQUET_NOTE, Bouquet, FlowerDelivery
from gc_admin.orders.models import ServiceOrder

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{1,31}$")
EDITABLE = ("name", "description", "price_fen", "active", "sort")
PRICE_MAX_FEN = 100_000  # ¥1,000: no bouquet on the menu costs more
FREED = ("cancelled", "refunded")  # orders in these states hold no slot


def _bad(message: str, code: str = "INVALID_BOUQUET") -> InvalidInput:
    return InvalidInput(message, code=code)


# --- the catalogue -------------------------------------------------------------------------------

def _code_is(code: str):
    return func.lower(col(Bouquet.code)) == (code or "").strip().lower()


def get_bouquet(session: Session, *, code: str) -> Bouquet:
    """The bouquet with ``code`` (any case), or ``BOUQUET_NOT_FOUND``."""
    bouquet = session.exec(select(Bouquet).where(_code_is(code))).first()
    if bouquet is None:
        raise NotFound("花束不存在", code="BOUQUET_NOT_FOUND")
    return bouquet


def _clean(changes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in changes.items():
        if field in ("name", "description"):
            if not isinstance(value, str):
                raise _bad("花束名称和说明需为文字")
            value = " ".join(value.split())
            if field == "name" and not 1 <= len(value) <= 64:
                raise _bad("花束名称不能为空，且不超过 64 个字")
            if field == "description" and len(value) > 200:
                raise _bad("花束说明不超过 200 个字")
        elif field == "price_fen":
            if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= PRICE_MAX_FEN:
                raise _bad(f"价格需在 ¥1.00 至 {format_fen(PRICE_MAX_FEN)} 之间（以分为单位的整数）", "INVALID_PRICE")
        elif field == "active":
            if not isinstance(value, bool):
                raise _bad("是否上架需为 是 / 否")
        elif field == "sort":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9999:
                raise _bad("排序需为 0–9999 的整数")
        out[field] = value
    return out


def _snapshot(b: Bouquet) -> dict[str, Any]:
    return {"code": b.code, **{f: getattr(b, f) for f in EDITABLE}, "image_sha256": b.image_sha256}


def create_bouquet(session: Session, *, actor: Actor, code: str, name: str, price_fen: int, description: str = "",
                   active: bool = True, sort: int = 0, now: dt.datetime | None = None) -> Bouquet:
    """A new bouquet (no photo yet: :func:`set_image`). ``BOUQUET_EXISTS`` if the code is taken in any case."""
    code = (code or "").strip()
    if not CODE_RE.match(code):
        raise _bad("花束编码需 2–32 位，以字母或数字开头，只含字母、数字、_ 或 -", "INVALID_BOUQUET_CODE")
    fields = _clean({"name": name, "description": description, "price_fen": price_fen, "active": active,
                     "sort": sort})
    now = now or utcnow()
    bouquet = Bouquet(code=code, created_at=now, updated_at=now, **fields)

    def taken() -> None:
        existing = session.exec(select(Bouquet.code).where(_code_is(code))).first()
        if existing is not None:
            raise Conflict(f"花束编码 {existing} 已存在", code="BOUQUET_EXISTS")

    insert_first(session, bouquet, taken=taken)
    record(session, actor=actor, action="bouquet.created", target_type="bouquet", target_id=bouquet.id,
           summary=f"新建花束 {bouquet.name}（{code}），{format_fen(bouquet.price_fen)}"
                   + ("" if bouquet.active else "，未上架"), after=_snapshot(bouquet))
    return bouquet


def update_bouquet(session: Session, *, actor: Actor, code: str, now: dt.datetime | None = None,
                   **changes: Any) -> Bouquet:
    """Change a bouquet's name, description, price, ``active`` or ``sort``; audited with what changed.
    A new price applies to orders placed from now on (an order keeps the price it was placed at)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise _bad(f"不能修改的字段：{'、'.join(sorted(unknown))}", "FIELD_NOT_EDITABLE")
    bouquet = get_bouquet(session, code=code)
    before = _snapshot(bouquet)
    for field, value in _clean(changes).items():
        setattr(bouquet, field, value)
    after = _snapshot(bouquet)
    changed = {k: v for k, v in before.items() if after[k] != v}
    if not changed:
        return bouquet
    bouquet.updated_at = now or utcnow()
    session.add(bouquet)
    session.flush()
    labels = {"name": "名称", "description": "说明", "price_fen": "价格", "active": "上架", "sort": "排序"}
    record(session, actor=actor, action="bouquet.updated", target_type="bouquet", target_id=bouquet.id,
           summary=f"修改花束 {bouquet.name}（{bouquet.code}）：{'、'.join(labels[k] for k in changed)}",
           before=changed, after={k: after[k] for k in changed})
    return bouquet


BOUQUET_SORT = (col(Bouquet.sort), func.lower(col(Bouquet.code)), col(Bouquet.id))


def list_bouquets(session: Session, *, active: bool | None = None, q: str = "", offset: int = 0,
                  limit: int = 50) -> Page[Bouquet]:
    """The catalogue in menu order (``sort``, then code), filtered by ``active`` and a name / code search."""
    stmt = select(Bouquet)
    if active is not None:
        stmt = stmt.where(col(Bouquet.active).is_(active))
    term = (q or "").strip()[:32]
    if term:
        like = f"%{term}%"
        stmt = stmt.where(or_(col(Bouquet.name).like(like), col(Bouquet.code).like(like)))
    return paginate(session, stmt, order=BOUQUET_SORT, offset=offset, limit=limit)


def menu(session: Session) -> list[Bouquet]:
    """What the mini-program offers: active bouquets with a photo, in menu order."""
    stmt = select(Bouquet).where(col(Bouquet.active).is_(True), col(Bouquet.image_sha256).is_not(None))
    return list(session.exec(stmt.order_by(*BOUQUET_SORT)).all())


def image_url(b: Bouquet) -> str | None:
    """Where the mini-program loads the photo (the hash in the query: a new photo is a new URL)."""
    if not b.image_sha256:
        return None
    return f"/api/v1/mp/bouquets/{b.code}/image?v={b.image_sha256[:12]}"


def bouquet_dict(b: Bouquet) -> dict[str, Any]:
    """API shape: ``{code, name, price_fen, image_url, note, ...}`` (API.md "bouquets")."""
    return {"code": b.code, "name": b.name, "description": b.description, "price_fen": b.price_fen,
            "image_url": image_url(b), "note": BOUQUET_NOTE, "active": b.active, "sort": b.sort,
            "image_width": b.image_width, "image_height": b.image_height, "updated_at": iso(b.updated_at)}


# --- photos --------------------------------------------------------------------------------------

PHOTOS = PhotoStore("bouquets")  # private photo storage: never under a static or public path


def set_image(session: Session, *, actor: Actor, code: str, data: bytes, now: dt.datetime | None = None) -> Bouquet:
    """Check an uploaded photo (:func:`check_image`: refused files raise ``UPLOAD_*`` and store nothing),
    store it, and make it the bouquet's photo; audited."""
    bouquet = get_bouquet(session, code=code)
    _image, before = PHOTOS.attach(session, bouquet, data, now=now or utcnow())
    record(session, actor=actor, action="bouquet.image_set", target_type="bouquet", target_id=bouquet.id,
           **photo_change(_image, before, f"花束 {bouquet.name}（{bouquet.code}）"))
    return bouquet


def bouquet_image(session: Session, *, code: str) -> StoredImage:
    """The stored photo of a bouquet, or ``BOUQUET_IMAGE_NOT_FOUND``."""
    bouquet = get_bouquet(session, code=code)
    return PHOTOS.stored(bouquet.image_sha256, bouquet.image_type,
                         missing=NotFound("该花束还没有照片", code="BOUQUET_IMAGE_NOT_FOUND"))


# --- slots ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Slot:
    start: dt.datetime  # aware, Asia/Shanghai
    end: dt.datetime
    available: int  # places left (0: full)

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "available": self.available}


def _settings() -> FlowerSettings:
    return get_settings().flowers


def _live(now: dt.datetime):
    """Orders that hold their slot: not cancelled / refunded, nor unpaid past their payment deadline."""
    return and_(col(ServiceOrder.status).not_in(FREED),
                not_(and_(col(ServiceOrder.status) == "created", col(ServiceOrder.pay_expires_at) <= now)))


def booked(session: Session, *, city: str, starts: list[dt.datetime], now: dt.datetime) -> dict[dt.datetime, int]:
    """Live orders per slot start (UTC) in ``city``, for the given starts."""
    if not starts:
        return {}
    rows = session.exec(
        select(FlowerDelivery.slot_start, func.count())
        .join(ServiceOrder, col(ServiceOrder.id) == col(FlowerDelivery.order_id))
        .where(col(FlowerDelivery.city) == city, col(FlowerDelivery.slot_start).in_(starts), _live(now))
        .group_by(col(FlowerDelivery.slot_start))).all()
    return {start.astimezone(dt.timezone.utc): int(n) for start, n in rows}


def bookable_days(now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """The first and last Shanghai dates slots are offered for."""
    today = (now or utcnow()).astimezone(SHANGHAI).date()
    return today, today + dt.timedelta(days=_settings().days_ahead)


def day_slots(session: Session, *, city: str, day: dt.date, now: dt.datetime | None = None) -> list[Slot]:
    """The slots of ``day`` in ``city`` that can still be booked (future, past the lead time, inside
    opening hours and the booking window), with the places left in each."""
    now = now or utcnow()
    cfg = _settings()
    first, last = bookable_days(now)
    if not first <= day <= last:
        return []
    earliest = now + dt.timedelta(minutes=cfg.lead_minutes)
    starts = [dt.datetime.combine(day, dt.time(h), tzinfo=SHANGHAI) for h in range(cfg.open_hour, cfg.close_hour)]
    starts = [s for s in starts if s >= earliest]
    counts = booked(session, city=city, starts=[s.astimezone(dt.timezone.utc) for s in starts], now=now)
    return [Slot(s, s + dt.timedelta(hours=1),
                 max(0, cfg.slot_capacity - counts.get(s.astimezone(dt.timezone.utc), 0))) for s in starts]


def check_slot(session: Session, *, city: str, start: dt.datetime, now: dt.datetime | None = None) -> dt.datetime:
    """``start`` (aware) as the UTC start of a bookable slot with a place left; otherwise a Chinese refusal:
    ``SLOT_INVALID`` (not on the hour / outside opening hours / past / too soon / too far) or ``SLOT_FULL``."""
    now = now or utcnow()
    cfg = _settings()
    if start.tzinfo is None:
        raise InvalidInput("配送时段需带时区，例如 2026-12-02T10:00:00+08:00", code="SLOT_INVALID")
    local = start.astimezone(SHANGHAI)
    hours = f"{cfg.open_hour:02d}:00–{cfg.close_hour:02d}:00"
    if local.minute or local.second or local.microsecond or not cfg.open_hour <= local.hour < cfg.close_hour:
        raise InvalidInput(f"配送时段需为 {hours} 之间的整点时段", code="SLOT_INVALID")
    if start <= now:
        raise InvalidInput("该配送时段已过，请选择之后的时段", code="SLOT_INVALID")
    if start < now + dt.timedelta(minutes=cfg.lead_minutes):
        lead = f"{cfg.lead_minutes // 60} 小时" if cfg.lead_minutes % 60 == 0 else f"{cfg.lead_minutes} 分钟"
        raise InvalidInput(f"鲜花需至少提前 {lead}预订，请选择更晚的时段", code="SLOT_INVALID")
    if local.date() > bookable_days(now)[1]:
        raise InvalidInput(f"只能预订 {cfg.days_ahead} 天内的配送时段", code="SLOT_INVALID")
    utc_start = start.astimezone(dt.timezone.utc)
    if booked(session, city=city, starts=[utc_start], now=now).get(utc_start, 0) >= cfg.slot_capacity:
        raise Conflict(f"{local:%m月%d日 %H:00} 的配送时段已约满，请选择其他时段", code="SLOT_FULL")
    return utc_start


def book_slot(session: Session, *, order: ServiceOrder, bouquet_id: int, city: str, start: dt.datetime,
              now: dt.datetime | None = None) -> FlowerDelivery:
    """In the order's creating transaction: lock the city's slot, count again and hold a place (the
    ``flower_delivery`` row). Raises what :func:`check_slot` raises — the whole order rolls back."""
    now = now or utcnow()
    assert order.id is not None
    utc_start = start.astimezone(dt.timezone.utc)
    lock_keys(session, f"flower_slot:{city}:{utc_start.isoformat()}")
    check_slot(session, city=city, start=utc_start, now=now)
    row = FlowerDelivery(order_id=order.id, bouquet_id=bouquet_id, city=city, slot_start=utc_start, created_at=now)
    session.add(row)
    session.flush()
    return row
