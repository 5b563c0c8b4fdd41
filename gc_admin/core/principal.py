"""Who is acting: the audit :class:`Actor` and the signed-in staff :class:`Principal`.

Both live in ``core`` because every layer needs them (services record actors, routes and Reflex
handlers receive principals) and ``core`` imports no feature. The accounts feature builds a
``Principal`` from a session; nothing else creates one outside tests.
"""

from __future__ import annotations

import dataclasses

from gc_admin.core.errors import Forbidden

#: Roles whose accounts act for one programme only (see :meth:`Principal.programme`).
PROGRAMME_ROLES = frozenset({"insurer"})


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who is acting: a staff member, a mini-program user, a partner or the system."""

    type: str
    id: str | None = None
    name: str = ""
    ip: str | None = None


SYSTEM = Actor("system", None, "系统")


@dataclasses.dataclass(frozen=True)
class Principal:
    """The signed-in staff member, as every check sees them."""

    id: int
    username: str
    display_name: str
    role: str
    ip: str | None = None
    programme_code: str | None = None  # an insurer's programme (from the account, re-read on every request)
    supplier_code: str | None = None  # a supplier account's supplier: it sees only that supplier's goods orders

    def actor(self) -> Actor:
        return Actor("staff", str(self.id), self.display_name or self.username, self.ip)

    def programme(self) -> str | None:
        """The programme this member is confined to: ``None`` for platform staff (every programme),
        the account's programme for an insurer; an insurer account without one is refused
        (:class:`Forbidden` ``NO_PROGRAMME``) anything programme-scoped."""
        if self.role not in PROGRAMME_ROLES:
            return None
        if not self.programme_code:
            raise Forbidden("该账号尚未关联保险项目，不能查看或操作项目数据；请联系管理员在“员工与权限”中设置所属项目",
                            code="NO_PROGRAMME")
        return self.programme_code
