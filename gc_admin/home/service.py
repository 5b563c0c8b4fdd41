"""工作台 figures, per role: each figure belongs to a dashboard section and is shown only to the roles
that may use that section (``core.roles``), computed within what the role may see there:

- 注册用户 (用户), 在岗员工 (员工与权限), 今日操作 (操作日志), 今日短信 (短信记录): platform-wide, for
  the roles of those sections;
- 今日发券 (发券): platform-wide for platform staff; for an insurer, its programme's products only,
  plus its programme's coupons by state (累计 / 未使用 / 已使用);
- 待接单订单 (订单看板): within the role's order scope (a dispatcher counts driver orders); a supplier
  account linked to its supplier gets 待发货订单 instead: its paid goods orders waiting to be shipped.

An insurer without a programme and a supplier get no figures, only a note saying why. Plain
functions, no commits (DESIGN.md §2); the page (``gc_admin.home.page``) only formats.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlmodel import Session

from gc_admin.accounts.service import count_enabled_staff
from gc_admin.audit.service import count_since as audit_since
from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.core.errors import DomainError
from gc_admin.core.principal import Principal
from gc_admin.core.roles import may
from gc_admin.coupons import service as coupons
from gc_admin.integrations.sms.service import count_since as sms_since
from gc_admin.orders import service as orders
from gc_admin.users.service import count_users

EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class FigureDef:
    key: str
    label: str
    icon: str  # a lucide icon name (the page renders every definition statically)


FIGURES: tuple[FigureDef, ...] = (
    FigureDef("users", "注册用户", "users"),
    FigureDef("staff", "在岗员工", "id-card"),
    FigureDef("audit", "今日操作", "scroll-text"),
    FigureDef("sms", "今日短信", "message-square"),
    FigureDef("issued", "今日发券（张）", "send"),
    FigureDef("orders", "待接单订单", "clipboard-list"),
    FigureDef("to_ship", "待发货订单", "truck"),
    FigureDef("programme_total", "本项目累计发券（张）", "ticket"),
    FigureDef("programme_available", "本项目未使用", "hourglass"),
    FigureDef("programme_used", "本项目已使用", "circle-check"),
)

NO_FIGURES = "您的角色在工作台暂无可显示的统计数据。"


@dataclasses.dataclass(frozen=True)
class HomeFigures:
    values: dict[str, int]  # figure key -> value, only the figures this member may see
    note: str = ""  # shown above the figures (whose figures they are, or why there are none)


def local_midnight(now: dt.datetime | None = None) -> dt.datetime:
    """Today's start in Asia/Shanghai, as a UTC instant."""
    local = (now or utcnow()).astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    return local.astimezone(dt.timezone.utc)


def home_figures(session: Session, *, principal: Principal, now: dt.datetime | None = None) -> HomeFigures:
    """The figures ``principal`` may see on the 工作台, and a note."""
    role = principal.role
    today = local_midnight(now)
    values: dict[str, int] = {}
    note = ""
    if may(role, "users"):
        values["users"] = count_users(session)
    if may(role, "staff"):
        values["staff"] = count_enabled_staff(session)
    if may(role, "audit"):
        values["audit"] = audit_since(session, today)
    if may(role, "sms"):
        values["sms"] = sms_since(session, today)
    if may(role, "issuance"):
        try:
            programme = principal.programme()
        except DomainError as exc:  # an insurer without a programme: none of its figures
            note = exc.message
        else:
            values["issued"] = coupons.coupons_issued_since(session, since=today, programme_code=programme)
            if programme is not None:
                counts = coupons.programme_coupon_counts(session, programme_code=programme, now=now)
                values.update(programme_total=counts["total"], programme_available=counts["available"],
                              programme_used=counts["used"])
                note = f"以下为「{coupons.get_programme(session, programme).name}」项目的数据。"
    if may(role, "orders"):
        scope = orders.scope_for(role, supplier_code=principal.supplier_code)
        if scope.supplier is not None:
            values["to_ship"] = orders.unseen_paid_orders_count(session, since=EPOCH, types=scope.types,
                                                                supplier=scope.supplier)
            note = "待发货订单请在「订单看板」逐单发货，或在「订单导入与批量发货」上传发货表。"
        elif scope.visible:
            values["orders"] = orders.unseen_paid_orders_count(session, since=EPOCH, types=scope.types)
    if not values and not note:
        note = NO_FIGURES
    return HomeFigures(values, note)
