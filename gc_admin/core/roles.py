"""Staff roles and the dashboard sections each may use (SPEC.md §2, DESIGN.md §3).

This table is the single source of truth: the sidebar shows a section only to its roles,
every page checks it on load, and every event handler and admin API route checks it again
on the server.
"""

from __future__ import annotations

import dataclasses
import enum


class Role(str, enum.Enum):
    admin = "admin"
    manager = "manager"
    clerk = "clerk"
    service = "service"
    insurer = "insurer"
    supplier = "supplier"
    dispatcher = "dispatcher"


ROLE_LABELS: dict[str, str] = {
    "admin": "管理员",
    "manager": "经理",
    "clerk": "内勤",
    "service": "客服",
    "insurer": "人保",
    "supplier": "供货商",
    "dispatcher": "代驾调度",
}

ALL_ROLES = frozenset(r.value for r in Role)


@dataclasses.dataclass(frozen=True)
class Section:
    key: str
    label: str
    route: str
    icon: str
    roles: frozenset[str]


def _r(*roles: str) -> frozenset[str]:
    return frozenset(roles)


SECTIONS: tuple[Section, ...] = (
    Section("home", "工作台", "/", "layout-dashboard", ALL_ROLES),
    Section("stock", "券库存", "/stock", "boxes", _r("admin", "manager", "clerk")),
    Section("issuance", "发券", "/issuance", "send", _r("admin", "manager", "clerk", "insurer")),
    Section("orders", "订单看板", "/orders", "clipboard-list", _r("admin", "manager", "clerk", "service", "supplier", "dispatcher")),
    Section("flowers", "鲜花管理", "/flowers", "flower", _r("admin", "manager", "clerk")),
    Section("goods", "商品管理", "/goods", "package", _r("admin", "manager", "clerk", "supplier")),
    Section("drivers", "司机管理", "/drivers", "car", _r("admin", "manager", "dispatcher")),
    Section("claims", "返现审核", "/claims", "badge-check", _r("admin", "manager", "clerk")),
    Section("settlement", "结算报表", "/settlement", "chart-column", _r("admin", "manager", "insurer")),
    Section("ledger", "流水与对账", "/ledger", "receipt-text", _r("admin", "manager")),
    Section("users", "用户", "/users", "users", _r("admin", "manager", "clerk", "service")),
    Section("staff", "员工与权限", "/staff", "shield", _r("admin")),
    Section("partners", "合作方接口", "/partners", "key-round", _r("admin")),
    Section("audit", "操作日志", "/audit", "scroll-text", _r("admin", "manager")),
    Section("sms", "短信记录", "/sms", "message-square", _r("admin", "manager")),
)

SECTION_BY_KEY: dict[str, Section] = {s.key: s for s in SECTIONS}


def sections_for(role: str | None) -> list[Section]:
    """The sections ``role`` may use, in sidebar order."""
    if not role:
        return []
    return [s for s in SECTIONS if role in s.roles]


def may(role: str | None, section: str) -> bool:
    """Whether ``role`` may use ``section`` (unknown sections: nobody)."""
    s = SECTION_BY_KEY.get(section)
    return bool(role) and s is not None and role in s.roles
