"""订单看板 board: filters above, one column per status (a page of cards each, its own pager), bulk
accept / complete of the selected cards, 下一单, and the hidden one-second timer of the live feed."""

from __future__ import annotations

import reflex as rx

from gc_admin.orders.kanban.service import BOARD_STATUSES
from gc_admin.orders.kanban.state import KanbanState
from gc_admin.orders.models import ORDER_STATUSES
from gc_admin.orders.state import OrdersState

SLA_COLORS = (("over", "red"), ("near", "amber"), ("ok", "gray"))
COLUMN_COLORS = {"paid": "amber", "accepted": "blue", "arrived": "cyan", "in_fulfilment": "indigo", "shipped": "teal",
                 "awaiting_payment": "orange", "after_sales": "red", "refund_requested": "orange",
                 "completed": "green", "refunded": "purple", "cancelled": "gray", "created": "gray"}


def _filters() -> rx.Component:
    s = KanbanState
    return rx.form(
        rx.hstack(
            rx.select.root(
                rx.select.trigger(width="8rem", data_testid="board-type"),
                rx.select.content(rx.select.item("全部类型", value="all"),
                                  rx.foreach(s.types, lambda t: rx.select.item(t["label"], value=t["value"]))),
                value=s.type_f, on_change=s.set_type),
            rx.select.root(
                rx.select.trigger(width="8rem", data_testid="board-assignee"),
                rx.select.content(rx.select.item("全部处理人", value="all"), rx.select.item("我认领的", value="me"),
                                  rx.select.item("无人认领", value="none")),
                value=s.assignee_f, on_change=s.set_assignee),
            rx.select.root(
                rx.select.trigger(width="8rem", data_testid="board-sla"),
                rx.select.content(rx.select.item("全部时效", value="all"), rx.select.item("即将超时", value="near"),
                                  rx.select.item("已超时", value="over")),
                value=s.sla_f, on_change=s.set_sla),
            rx.input(placeholder="城市", value=s.city_f, on_change=s.set_city, width="7rem", data_testid="board-city"),
            rx.input(type="date", value=s.date_from, on_change=s.set_date_from, width="9rem", title="下单日期起"),
            rx.input(type="date", value=s.date_to, on_change=s.set_date_to, width="9rem", title="下单日期止"),
            rx.input(placeholder="订单号 / 手机号", value=s.q, on_change=s.set_q, width="12rem",
                     data_testid="board-q"),
            rx.button("查询", type="submit", variant="soft", data_testid="board-search"),
            rx.button("清除", type="button", variant="ghost", on_click=s.clear_filters),
            rx.spacer(),
            rx.cond(s.can_act, rx.hstack(
                rx.button("批量接单", rx.cond(s.selected.length() > 0, rx.fragment("（", s.selected.length(), "）")),
                          on_click=s.bulk("accept"), variant="soft", disabled=s.selected.length() == 0,
                          loading=s.busy, data_testid="bulk-accept"),
                rx.button("批量完成", on_click=s.bulk("complete"), variant="soft", color_scheme="green",
                          disabled=s.selected.length() == 0, loading=s.busy, data_testid="bulk-complete"),
                rx.button(rx.icon("hand", size=16), "下一单", on_click=s.next_order, data_testid="next-order"),
                spacing="2")),
            spacing="2", wrap="wrap", width="100%", align="center",
        ),
        on_submit=s.search, reset_on_submit=False,
    )


def _card(c: rx.Var) -> rx.Component:
    s = KanbanState
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.cond(c["bulk"] == "1", rx.checkbox(checked=s.selected.contains(c["id"]),
                                                      on_change=lambda _v: s.toggle(c["id"]),
                                                      data_testid="card-select")),
                rx.badge(c["type_label"], variant="soft", size="1"),
                # the amount is money: it never shrinks; a long order no. gives way (ellipsis, full on hover)
                rx.link(c["order_no"], on_click=OrdersState.open_order(c["id"]), size="1", weight="medium",
                        data_testid="card-open", cursor="pointer", title=c["order_no"], min_width="0",
                        overflow="hidden", text_overflow="ellipsis", white_space="nowrap"),
                rx.spacer(),
                rx.text(c["amount"], size="2", weight="bold", font_variant_numeric="tabular-nums", flex_shrink="0",
                        white_space="nowrap", data_testid="card-amount"),
                width="100%", align="center", spacing="1",
            ),
            rx.text(c["essentials"], size="1", color_scheme="gray", trim="both"),
            rx.hstack(
                rx.text(c["phone"], size="1"),
                rx.cond(c["city"] != "", rx.text(c["city"], size="1", color_scheme="gray")),
                rx.spacer(),
                rx.cond(c["sla"] != "", rx.hstack(
                    rx.icon("timer", size=12),
                    rx.text(c["sla"], size="1", weight=rx.cond(c["sla_level"] == "over", "bold", "regular")),
                    color=rx.color(rx.match(c["sla_level"], *SLA_COLORS, "gray"), 11), spacing="1", align="center",
                    data_testid="card-sla", data_level=c["sla_level"])),
                width="100%", align="center",
            ),
            rx.hstack(
                rx.cond(c["assignee"] != "",
                        rx.badge(rx.icon("user", size=12), c["assignee"],
                                 color_scheme=rx.match(c["claim"], ("mine", "green"), ("other", "orange"), "gray"),
                                 variant="soft", size="1", data_testid="card-assignee"),
                        rx.text("无人认领", size="1", color_scheme="gray")),
                rx.spacer(),
                rx.cond(c["claimable"] == "1", rx.button("认领", size="1", variant="outline",
                                                         on_click=s.claim(c["id"]), data_testid="card-claim")),
                rx.cond(c["claim"] == "mine", rx.button("放弃", size="1", variant="ghost", color_scheme="gray",
                                                        on_click=s.release(c["id"]), data_testid="card-release")),
                rx.cond(c["a1"] != "", rx.button(c["a1_label"], size="1", on_click=OrdersState.open_action(
                    c["id"], c["a1"]), data_testid="card-action-" + c["a1"])),
                rx.cond(c["a2"] != "", rx.button(c["a2_label"], size="1", variant="soft", on_click=OrdersState.open_action(
                    c["id"], c["a2"]), data_testid="card-action-" + c["a2"])),
                width="100%", align="center", spacing="1", wrap="wrap",
            ),
            spacing="1", width="100%",
        ),
        size="1", width="100%", data_testid="card", data_order_no=c["order_no"], data_status=c["status"],
    )


def _column(status: str) -> rx.Component:
    s = KanbanState
    meta = s.cols[status]
    return rx.vstack(
        rx.hstack(
            rx.badge(ORDER_STATUSES[status], color_scheme=COLUMN_COLORS[status], variant="soft"),
            rx.text(meta["count"], size="1", color_scheme="gray", data_testid=f"column-count-{status}"),
            rx.spacer(),
            rx.icon_button(rx.icon("chevron-left", size=14), size="1", variant="ghost", disabled=meta["prev"] != "1",
                           on_click=s.page(status, -1), aria_label="上一页"),
            rx.icon_button(rx.icon("chevron-right", size=14), size="1", variant="ghost", disabled=meta["next"] != "1",
                           on_click=s.page(status, 1), aria_label="下一页", data_testid=f"column-next-{status}"),
            width="100%", align="center",
        ),
        rx.foreach(s.cards[status], _card),
        min_width="17rem", max_width="17rem", spacing="2", padding="0.5rem", border_radius="8px",
        background=rx.color("gray", 2), data_testid=f"column-{status}", align="stretch",
    )


def kanban_board() -> rx.Component:
    s = KanbanState
    return rx.vstack(
        rx.moment(interval=1000, format="HH:mm:ss", on_change=s.tick, display="none"),
        _filters(),
        rx.box(rx.hstack(*[rx.cond(s.shown.contains(st), _column(st)) for st in BOARD_STATUSES], spacing="3",
                         align="start"),
               overflow_x="auto", width="100%", padding_bottom="0.5rem"),
        width="100%", spacing="3",
    )
