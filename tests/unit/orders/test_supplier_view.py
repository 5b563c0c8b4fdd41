"""The supplier's view: signed in, its 工作台 counts its goods orders waiting to be shipped (待发货订单), the
sidebar badge of 订单看板 counts the same, and the board links to 订单导入与批量发货 for the roles that may
use it (not for a dispatcher)."""

from __future__ import annotations

import pytest

from gc_admin.core.principal import Principal
from gc_admin.db import session_scope
from gc_admin.home.service import home_figures
from gc_admin.orders.badge import OrdersBadgeState, waiting_count
from gc_admin.orders.kanban.state import KanbanState
from tests.support import run, sign_in, state_of
from tests.unit.orders.goods_support import goods_world, paid_goods_order

pytestmark = pytest.mark.usefixtures("any_db")


def _paid(api, phone: str, code: str) -> int:
    return paid_goods_order(api, phone, code, openid_prefix="oSupView")


def _principal(role: str, supplier_code: str | None = None) -> Principal:
    return Principal(id=1, username="x", display_name="x", role=role, supplier_code=supplier_code)


def test_the_supplier_counts_its_orders_to_ship(api, make_staff) -> None:
    goods_world(make_staff)
    make_staff("daijia", "dispatcher")
    _paid(api, "13812340201", "mug")
    _paid(api, "13812340202", "mug")
    _paid(api, "13812340203", "aroma1")
    with session_scope() as s:
        assert home_figures(s, principal=_principal("supplier", "taoci")).values == {"to_ship": 2}
        assert home_figures(s, principal=_principal("supplier", "xiangfen")).values == {"to_ship": 1}
        assert "发货表" in home_figures(s, principal=_principal("supplier", "taoci")).note
        assert waiting_count(s, role="supplier", supplier_code="taoci") == 2
        assert waiting_count(s, role="supplier", supplier_code=None) == 0  # unlinked: sees no orders
        assert waiting_count(s, role="clerk") == 3

    async def scenario():
        badge = await state_of(OrdersBadgeState, sign_in("sup2"))
        await badge.tick()
        assert badge.count == 2
        links = {}
        for who in ("sup2", "chen", "kefu", "daijia"):
            board = await state_of(KanbanState, sign_in(who))
            await board.load()
            links[who] = board.imports_link
        assert links == {"sup2": True, "chen": True, "kefu": True, "daijia": False}
        board = await state_of(KanbanState, sign_in("sup2"))
        await board.load()
        assert not board.can_act  # no 下一单 / bulk buttons: a supplier ships its orders, one by one or by sheet
        assert [c["type"] for c in board.cards["paid"]] == ["goods", "goods"]
        assert {c["a1"] for c in board.cards["paid"]} == {"ship"}

    run(scenario())
