"""FastAPI dependency: the staff allowed to see money — the ledger, refunds, reconciliation.

Admin and manager (the "settlement" section's platform roles; the insurer sees its statements
elsewhere, not the user payment ledger). Used by the payments routes and by the orders routes
that act on refunds for them (``/admin/refunds/{id}/sync``).
"""

from __future__ import annotations

from fastapi import Depends

from gc_admin.accounts.deps import require_staff
from gc_admin.core.errors import Forbidden
from gc_admin.core.principal import Principal

MONEY_ROLES = ("admin", "manager")


def money_staff(p: Principal = Depends(require_staff("settlement"))) -> Principal:
    if p.role not in MONEY_ROLES:
        raise Forbidden("只有管理员和经理可以查看流水与对账", code="FORBIDDEN")
    return p
