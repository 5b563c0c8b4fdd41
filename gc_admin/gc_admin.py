"""The Reflex app: mounts the HTTP API and registers the pages. Wiring only."""

from __future__ import annotations

import reflex as rx

from gc_admin.accounts.page import login_page, staff_management
from gc_admin.accounts.state import StaffState
from gc_admin.api import build_api, with_security_headers
from gc_admin.audit.page import audit_page
from gc_admin.audit.state import AuditState
from gc_admin.config import get_settings
from gc_admin.core.logs import configure as configure_logs
from gc_admin.claims.page import claims_page
from gc_admin.claims.state import ClaimsState
from gc_admin.core.roles import SECTION_BY_KEY
from gc_admin.customers.page import users_page
from gc_admin.customers.state import UsersState
from gc_admin.coupons.issuance.page import issuance_page
from gc_admin.coupons.issuance.state import IssuanceState
from gc_admin.coupons.stock.page import stock_page
from gc_admin.coupons.stock.state import StockState
from gc_admin.home.page import home_page
from gc_admin.home.state import HomeState
from gc_admin.integrations.sms.page import sms_page
from gc_admin.integrations.sms.state import SmsState
import gc_admin.orders.badge  # noqa: F401  (registers the 订单看板 badge in the sidebar)
from gc_admin.orders.flowers.page import flowers_page
from gc_admin.orders.flowers.state import FlowersState
from gc_admin.orders.drivers.page import drivers_page
from gc_admin.orders.drivers.state import DriversState
from gc_admin.orders.page import orders_page
from gc_admin.orders.imports.page import order_imports_page
from gc_admin.orders.imports.state import OrderImportsState
from gc_admin.orders.suppliers.page import goods_page
from gc_admin.orders.suppliers.state import GoodsState
from gc_admin.orders.kanban.state import KanbanState
from gc_admin.partners.page import partners_page
from gc_admin.partners.state import PartnersState
from gc_admin.payments.page import ledger_page
from gc_admin.payments.state import LedgerState
from gc_admin.ui.auth import AuthState
from gc_admin.ui.connection import connection_overlay
from gc_admin.ui.layout import head_links, toaster
from gc_admin.ui.placeholders import PLANNED, make_placeholder

configure_logs(fmt=get_settings().log_format)
app = rx.App(api_transformer=[build_api(), with_security_headers], head_components=head_links(), toaster=toaster())
# Reflex's English connection toaster -> ours, which says in Chinese why there is no connection.
app.app_wraps[(5, "Overlay")] = lambda stateful: connection_overlay() if stateful else None


async def _tasks_in_process() -> None:
    """SQLite: the task queue runs in this process; PostgreSQL: returns at once (``gc_admin worker`` runs it)."""
    import gc_admin.tasks  # noqa: F401  (registers every task)
    from gc_admin.core.tasks import run_in_process

    await run_in_process()


app.register_lifespan_task(_tasks_in_process)


def _add(section: str, component, load=None) -> None:
    s = SECTION_BY_KEY[section]
    on_load = [AuthState.guard(section)] + ([load] if load is not None else [])
    app.add_page(component, route=s.route, title=f"{s.label} · 滚财权益后台", on_load=on_load)


app.add_page(login_page, route="/login", title="登录 · 滚财权益后台", on_load=AuthState.login_page_load)
_add("home", home_page, HomeState.load)
_add("stock", stock_page, StockState.load)
_add("issuance", issuance_page, IssuanceState.load)
_add("orders", orders_page, KanbanState.load)
_add("flowers", flowers_page, FlowersState.load)
_add("goods", goods_page, GoodsState.load)
_add("drivers", drivers_page, DriversState.load)
app.add_page(order_imports_page, route="/orders/imports", title="订单导入与批量发货 · 滚财权益后台",
             on_load=[AuthState.guard("orders"), OrderImportsState.load])
_add("ledger", ledger_page, LedgerState.load)
_add("claims", claims_page, ClaimsState.load)
_add("staff", staff_management, StaffState.load)
_add("users", users_page, UsersState.load)
_add("partners", partners_page, PartnersState.load)
_add("audit", audit_page, AuditState.load)
_add("sms", sms_page, SmsState.load)
for _key in PLANNED:
    _add(_key, make_placeholder(_key))
