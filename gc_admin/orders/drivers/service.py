"""The driver roster (司机管理): list, add, edit; and giving a driver an order / freeing them, exactly once.

Plain functions, session first, keyword-only after; they never commit. A driver's ``status``:
``available`` (空闲, may be assigned), ``busy`` (服务中: set only by dispatch, with the order) and
``off`` (休息); ``active = False`` takes a driver off the roster without deleting their history.
Staff may set ``available`` / ``off`` and ``active`` by hand, but not while the driver serves an order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.core.clock import iso, utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.core.phone import mask_phone, normalize_phone
from gc_admin.core.principal import Actor
from gc_admin.db import Page, paginate
from gc_admin.orders.drivers.models import DRIVER_STATUSES, Driver
from gc_admin.orders.models import ServiceOrder

SETTABLE_STATUSES = ("available", "off")  # busy comes with an order only


@dataclasses.dataclass(frozen=True)
class DriverRow:
    id: int
    name: str
    phone: str
    status: str
    active: bool
    order_id: int | None
    updated_at: dt.datetime

    def to_dict(self, *, mask: bool = False) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "phone": mask_phone(self.phone) if mask else self.phone,
                "phone_masked": mask_phone(self.phone), "status": self.status,
                "status_label": DRIVER_STATUSES[self.status], "active": self.active, "order_id": self.order_id,
                "updated_at": iso(self.updated_at)}


def _row(d: Driver) -> DriverRow:
    return DriverRow(d.id or 0, d.name, d.phone, d.status, d.active, d.order_id, d.updated_at)


def _name(name: Any) -> str:
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 32:
        raise InvalidInput("请填写司机姓名（不超过 32 个字）", code="INVALID_NAME")
    return name.strip()


def _phone(phone: Any) -> str:
    out = normalize_phone(phone) if isinstance(phone, str) else None
    if out is None:
        raise InvalidInput("请填写正确的 11 位手机号", code="INVALID_PHONE")
    return out


def get_driver(session: Session, *, driver_id: int) -> Driver:
    d = session.get(Driver, driver_id, populate_existing=True)
    if d is None:
        raise NotFound("司机不存在", code="DRIVER_NOT_FOUND")
    return d


def list_drivers(session: Session, *, status: str | None = None, active: bool | None = None, q: str | None = None,
                 offset: int = 0, limit: int = 50) -> Page[DriverRow]:
    """The roster: available drivers first, then by name. ``q``: part of a name or the whole phone."""
    if status is not None and status not in DRIVER_STATUSES:
        raise InvalidInput("未知的司机状态", code="INVALID_STATUS")
    stmt = select(Driver)
    if status:
        stmt = stmt.where(col(Driver.status) == status)
    if active is not None:
        stmt = stmt.where(col(Driver.active).is_(active))
    if q and q.strip():
        term = q.strip()[:32]
        stmt = stmt.where(or_(col(Driver.name).contains(term), col(Driver.phone) == term))
    return paginate(session, stmt, order=(col(Driver.active).desc(), col(Driver.status), col(Driver.name),
                                          col(Driver.id)), offset=offset, limit=limit, row=_row)


def create_driver(session: Session, *, name: str, phone: str, actor: Actor, active: bool = True,
                  now: dt.datetime | None = None) -> Driver:
    now = now or utcnow()
    d = Driver(name=_name(name), phone=_phone(phone), status="available", active=bool(active), created_at=now,
               updated_at=now)
    try:
        with session.begin_nested():
            session.add(d)
            session.flush()
    except IntegrityError:
        raise Conflict(f"手机号 {mask_phone(d.phone)} 的司机已在名册中", code="DRIVER_EXISTS") from None
    record(session, actor=actor, action="driver.created", target_type="driver", target_id=d.id,
           summary=f"添加代驾司机 {d.name}（{mask_phone(d.phone)}）", after={"name": d.name, "active": d.active})
    return d


def update_driver(session: Session, *, driver_id: int, actor: Actor, name: str | None = None,
                  phone: str | None = None, status: str | None = None, active: bool | None = None,
                  now: dt.datetime | None = None) -> Driver:
    """Edit a driver. ``status``: available / off; neither it nor ``active=False`` while the driver is busy
    (``DRIVER_BUSY``) — the conditional UPDATE re-checks, so a dispatch landing meanwhile wins."""
    now = now or utcnow()
    d = get_driver(session, driver_id=driver_id)
    vals: dict[str, Any] = {}
    if name is not None:
        vals["name"] = _name(name)
    if phone is not None:
        vals["phone"] = _phone(phone)
    if status is not None:
        if status not in SETTABLE_STATUSES:
            raise InvalidInput("司机状态只能设为空闲或休息（服务中由派单自动设置）", code="INVALID_STATUS")
        vals["status"] = status
    if active is not None:
        vals["active"] = bool(active)
    if not vals:
        return d
    where = [col(Driver.id) == driver_id]
    if "status" in vals or vals.get("active") is False:
        where.append(col(Driver.status) != "busy")
    try:
        with session.begin_nested():
            res = session.execute(update(Driver).where(*where).values(**vals, updated_at=now)
                                  .execution_options(synchronize_session=False))
    except IntegrityError:
        raise Conflict("该手机号已被名册中另一位司机使用", code="DRIVER_EXISTS") from None
    if res.rowcount != 1:
        raise Conflict(f"{d.name}正在服务订单，完成或取消后才能改为休息或停用", code="DRIVER_BUSY")
    before = {k: getattr(d, k) for k in vals}
    d = get_driver(session, driver_id=driver_id)
    record(session, actor=actor, action="driver.updated", target_type="driver", target_id=driver_id,
           summary=f"修改代驾司机 {d.name}：" + "、".join(sorted(vals)),
           before={k: (mask_phone(v) if k == "phone" else v) for k, v in before.items()},
           after={k: (mask_phone(v) if k == "phone" else v) for k, v in vals.items()})
    return d


def take_driver(session: Session, *, driver_id: int, order_id: int, now: dt.datetime | None = None) -> Driver:
    """The driver takes ``order_id``: available -> busy, in one conditional UPDATE (of two orders given to
    one driver at once, one wins; the other is told ``DRIVER_NOT_AVAILABLE``)."""
    now = now or utcnow()
    d = get_driver(session, driver_id=driver_id)
    res = session.execute(
        update(Driver).where(col(Driver.id) == driver_id, col(Driver.status) == "available",
                             col(Driver.active).is_(True))
        .values(status="busy", order_id=order_id, updated_at=now).execution_options(synchronize_session=False))
    if res.rowcount != 1:
        d = get_driver(session, driver_id=driver_id)
        why = "已停用" if not d.active else f"当前{DRIVER_STATUSES[d.status]}"
        raise Conflict(f"司机{d.name}{why}，不能派单，请选择空闲的司机", code="DRIVER_NOT_AVAILABLE")
    return get_driver(session, driver_id=driver_id)


def free_driver(session: Session, *, order_id: int, now: dt.datetime | None = None) -> int | None:
    """The driver serving ``order_id`` (if any) is free again: busy -> available. Returns their id."""
    row = session.execute(
        update(Driver).where(col(Driver.order_id) == order_id, col(Driver.status) == "busy")
        .values(status="available", order_id=None, updated_at=now or utcnow())
        .returning(Driver.id).execution_options(synchronize_session=False)).first()
    return None if row is None else int(row[0])


LIVE_STATUSES = ("paid", "accepted", "arrived", "in_fulfilment", "awaiting_payment")  # dispatch still to do


def live_orders(session: Session, *, offset: int = 0, limit: int = 20) -> Page[ServiceOrder]:
    """Driver orders still being dispatched or served, waiting longest first (the 司机管理 dispatch panel)."""
    stmt = select(ServiceOrder).where(col(ServiceOrder.type) == "driver", col(ServiceOrder.status).in_(LIVE_STATUSES))
    return paginate(session, stmt, order=(col(ServiceOrder.paid_at), col(ServiceOrder.id)), offset=offset,
                    limit=limit)


def available_drivers(session: Session, *, limit: int = 200) -> list[Driver]:
    """Drivers who may be assigned now (active and available), by name."""
    return list(session.exec(select(Driver).where(col(Driver.status) == "available", col(Driver.active).is_(True))
                             .order_by(col(Driver.name), col(Driver.id)).limit(limit)).all())
