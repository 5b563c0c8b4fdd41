"""Small building blocks for lists and forms."""

from __future__ import annotations

import dataclasses
from typing import Any

import reflex as rx


def stat_card(label: str, value: Any, icon: str, testid: str) -> rx.Component:
    return rx.card(
        rx.hstack(
            rx.icon(icon, size=28, color=rx.color("accent", 10)),
            rx.vstack(
                rx.text(label, size="2", color_scheme="gray"),
                rx.text(value, size="6", weight="bold", data_testid=testid),
                spacing="0",
            ),
            align="center",
            spacing="4",
        ),
        min_width="12rem",
    )


def pager(total: Any, page: Any, pages: Any, prev_event: Any, next_event: Any) -> rx.Component:
    """``共 N 条 · 第 p / P 页`` with previous/next buttons."""
    return rx.hstack(
        rx.text("共 ", total, " 条", size="2", color_scheme="gray", data_testid="total"),
        rx.spacer(),
        rx.button("上一页", size="1", variant="soft", on_click=prev_event, disabled=page <= 1),
        rx.text(page, " / ", pages, size="2"),
        rx.button("下一页", size="1", variant="soft", on_click=next_event, disabled=page >= pages),
        align="center",
        width="100%",
        padding_top="0.75rem",
    )


def list_pager(state: Any) -> rx.Component:
    """The :func:`pager` of a :class:`gc_admin.ui.paging.PagedMixin` state."""
    return pager(state.total, state.page, state.pages, state.prev_page, state.next_page)


def list_table(state: Any, head: rx.Component, row: Any, empty: rx.Component, **props: Any) -> rx.Component:
    """A list's table (``state.rows``, one ``row(var)`` each, or ``empty``) and, below it, its pager."""
    return rx.fragment(
        rx.table.root(head, rx.table.body(rx.cond(state.rows.length() > 0, rx.foreach(state.rows, row), empty)),
                      width="100%", variant="surface", **props),
        list_pager(state),
    )


def filter_select(value: Any, on_change: Any, all_label: str, options: Any, **trigger: Any) -> rx.Component:
    """A list filter: ``all_label`` (value ``all``), then the options — a ``{key: label}`` mapping, or the
    items themselves (an ``rx.foreach`` over state rows)."""
    items = [options] if isinstance(options, rx.Component) else [
        rx.select.item(label, value=key) for key, label in options.items()]
    return rx.select.root(
        rx.select.trigger(placeholder=all_label, **trigger),
        rx.select.content(rx.select.item(all_label, value="all"), *items),
        value=value, on_change=on_change,
    )


def filter_bar(state: Any, *controls: rx.Component, export_testid: str = "", reset: bool = False,
               search_testid: str = "") -> rx.Component:
    """The filters above a list: its controls, 查询 (the form's submit: back to page 1), 重置
    (``state.clear_filters``) if asked, and at the right :func:`export_button`."""
    return rx.form(
        rx.hstack(
            *controls,
            rx.button(rx.icon("search", size=14), "查询", type="submit", variant="soft",
                      **({"data_testid": search_testid} if search_testid else {})),
            *([rx.button("重置", type="button", variant="ghost", color_scheme="gray", on_click=state.clear_filters)]
              if reset else []),
            *([rx.spacer(), export_button(state, export_testid)] if export_testid else []),
            align="center", wrap="wrap", spacing="2", width="100%",
        ),
        on_submit=lambda _form: state.search(),
        reset_on_submit=False,
        width="100%",
    )


def figure(label: str, value: Any, testid: str, color: str = "") -> rx.Component:
    """One labelled figure of a result card (导入报告, 对账结果): the label small, the number big."""
    return rx.vstack(
        rx.text(label, size="1", color_scheme="gray"),
        rx.text(value, size="5", weight="bold", data_testid=testid, **({"color_scheme": color} if color else {})),
        spacing="0", min_width="7rem",
    )


def result_card(shown: Any, head: tuple[rx.Component, ...], figures: tuple[rx.Component, ...], *details: rx.Component,
                testid: str) -> rx.Component:
    """The card a job's result shows in once there is one (导入报告, 对账结果): its heading line (icon, title,
    then what follows an ``rx.spacer()`` at the right), its :func:`figure` row, then the details."""
    return rx.cond(shown, rx.card(
        rx.vstack(
            rx.hstack(*head, align="center", width="100%"),
            rx.hstack(*figures, wrap="wrap", spacing="5"),
            *details,
            spacing="3", width="100%",
        ),
        width="100%", data_testid=testid,
    ))


def actions_cell(*actions: rx.Component) -> rx.Component:
    """A row's last cell: its actions (buttons, a :func:`row_confirm`), at the right."""
    return rx.table.cell(rx.hstack(*actions, spacing="2", justify="end"), text_align="right")


def empty_row(colspan: int, text: str = "暂无数据") -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.center(rx.text(text, color_scheme="gray"), padding="1.5rem"), col_span=colspan),
    )


def header(*labels: str) -> rx.Component:
    return rx.table.header(rx.table.row(*[rx.table.column_header_cell(lbl) for lbl in labels]))


NUM = {"text_align": "right", "white_space": "nowrap", "font_variant_numeric": "tabular-nums"}


@dataclasses.dataclass(frozen=True)
class Col:
    """A list column's header: its label, the service's sort key (``""``: not sortable), right-aligned numbers."""

    label: str
    key: str = ""
    num: bool = False
    props: dict[str, Any] = dataclasses.field(default_factory=dict)


def _sort_cell(col: Col, state: Any) -> rx.Component:
    asc, desc = state.sort == col.key, state.sort == "-" + col.key
    arrow = rx.cond(asc, rx.icon("arrow-up", size=13),
                    rx.cond(desc, rx.icon("arrow-down", size=13),
                            rx.icon("arrow-up-down", size=13, color=rx.color("gray", 8))))
    return rx.table.column_header_cell(
        rx.hstack(col.label, arrow, spacing="1", align="center", white_space="nowrap",
                  justify="end" if col.num else "start"),
        on_click=state.sort_by(col.key),
        cursor="pointer",
        user_select="none",
        title="点击排序",
        _hover={"color": rx.color("accent", 11)},
        custom_attrs={"aria-sort": rx.cond(asc, "ascending", rx.cond(desc, "descending", "none"))},
        data_testid=f"sort-{col.key}",
        **(NUM if col.num else {}), **col.props,
    )


def table_header(state: Any, *cols: Col | str) -> rx.Component:
    """The header row of every list: sortable columns (a :class:`Col` with a key) show an arrow and sort on
    click through ``state.sort_by`` (:class:`gc_admin.ui.paging.PagedMixin`); a plain string is a fixed label."""
    cells = []
    for c in cols:
        c = Col(c) if isinstance(c, str) else c
        if c.key:
            cells.append(_sort_cell(c, state))
        else:
            cells.append(rx.table.column_header_cell(c.label, **(NUM if c.num else {}), **c.props))
    return rx.table.header(rx.table.row(*cells))


def export_button(state: Any, testid: str) -> rx.Component:
    """``导出 Excel``: every row matching the list's filters (not just this page), via ``state.export``."""
    return rx.button(rx.icon("file-spreadsheet", size=14), "导出 Excel", type="button", variant="soft",
                     loading=state.exporting, on_click=state.export, data_testid=testid)


def coming_soon(what: str, bullets: list[str]) -> rx.Component:
    return rx.callout.root(
        rx.callout.icon(rx.icon("construction")),
        rx.callout.text(
            rx.text(what, weight="bold"),
            rx.unordered_list(*[rx.list_item(b) for b in bullets]),
        ),
        color_scheme="amber",
        data_testid="coming-soon",
    )


def form_actions(submit: rx.Component) -> rx.Component:
    """The footer of every dialog form: 取消 (closes, never submits) and the submit button."""
    return rx.hstack(
        rx.dialog.close(rx.button("取消", variant="soft", color_scheme="gray", type="button")),
        submit,
        justify="end",
        spacing="3",
        width="100%",
    )


def create_form(state: Any, *fields: rx.Component, submit: str = "创建") -> rx.Component:
    """The form of a 新建 dialog (a :class:`gc_admin.ui.paging.CreateMixin` state): the fields, the server's
    inline error, then 取消 / ``submit``, which sends ``state.create``."""
    return rx.form(
        rx.vstack(
            *fields,
            rx.cond(state.form_error != "", rx.text(state.form_error, color_scheme="red", size="2")),
            form_actions(rx.button(submit, type="submit")),
            spacing="3",
        ),
        on_submit=state.create,
    )


def dialog(title: Any, *body: rx.Component, open: Any, on_open_change: Any, trigger: rx.Component | None = None,
           description: Any = None, max_width: str = "32rem", testid: str | None = None,
           actions: tuple[rx.Component, ...] = ()) -> rx.Component:
    """The dashboard's one dialog skeleton: an optional trigger, a title (and a description for
    screen readers and the consequence text), then the body — usually a form ending in
    :func:`form_actions`. Open state lives in the page's state (``open`` / ``on_open_change``).
    ``actions``: small buttons on the title's line, at the right (a panel's 刷新, its close button)."""
    head = rx.dialog.title(title) if not actions else rx.hstack(
        rx.dialog.title(title, margin="0"), rx.spacer(), *actions, align="center", width="100%")
    return rx.dialog.root(
        *([rx.dialog.trigger(trigger)] if trigger is not None else []),
        rx.dialog.content(
            head,
            *([rx.dialog.description(description, size="2", color_scheme="gray")] if description is not None else []),
            *body,
            max_width=max_width,
            **({"data_testid": testid} if testid else {}),
        ),
        open=open,
        on_open_change=on_open_change,
    )


def row_confirm(title: Any, consequence: Any, *, trigger: rx.Component, confirm: str, on_confirm: Any) -> rx.Component:
    """A row's own confirmation of an irreversible act (停用, 吊销): the row's button opens it; 取消, or
    the red ``confirm`` button (which sends ``on_confirm``), closes it."""
    return confirm_dialog(
        title, consequence, trigger=trigger,
        back=rx.alert_dialog.cancel(rx.button("取消", variant="soft", color_scheme="gray")),
        confirm=rx.alert_dialog.action(rx.button(confirm, color_scheme="red", on_click=on_confirm)),
    )


def confirm_dialog(title: Any, consequence: Any, *, open: Any = None, on_open_change: Any = None, confirm: rx.Component,
                   back: rx.Component | None = None, extra: tuple[rx.Component, ...] = (),
                   max_width: str = "34rem", testid: str | None = None,
                   trigger: rx.Component | None = None) -> rx.Component:
    """The confirmation before anything that moves money, stock or coupons: the consequence in bold
    (DESIGN.md §5: "将向 1,204 个手机号发放 1,204 张券…"), then 返回 / the confirming button.

    Open state in the page's state (``open`` / ``on_open_change``), or none: a ``trigger`` opens it (a
    row's own 停用 / 吊销 button) and ``confirm`` wrapped in ``rx.alert_dialog.action`` closes it."""
    return rx.alert_dialog.root(
        *([rx.alert_dialog.trigger(trigger)] if trigger is not None else []),
        rx.alert_dialog.content(
            rx.alert_dialog.title(title),
            rx.alert_dialog.description(rx.text(consequence, size="3", weight="bold"), padding_y="0.5rem"),
            *extra,
            rx.hstack(
                back if back is not None else rx.alert_dialog.cancel(
                    rx.button("返回", variant="soft", color_scheme="gray", type="button")),
                confirm,
                justify="end", spacing="3", padding_top="1rem",
            ),
            max_width=max_width,
            **({"data_testid": testid} if testid else {}),
        ),
        **({"open": open, "on_open_change": on_open_change} if open is not None else {}),
    )
