"""订单看板 state: the queue (filters, paging, age/SLA), the detail panel, staff actions and refunds.

Every handler that reads or changes data is ``@guarded("orders")`` and works within the role's
:class:`~gc_admin.orders.service.Scope` (a dispatcher sees driver orders only; a supplier none yet;
refunds for admin, manager, service and clerk); the setters that only hold what the clerk types are
``@public``. The services decide everything else again.

A refund is two steps for the clerk — the form (amount in yuan, reason), then a confirmation that
states the consequence — and two units of work on the server, the same sequence as the staff API
(:func:`gc_admin.orders.refunds.refund`): it is recorded (committed: the refundable remainder is
reserved, the bought coupons are held), then WeChat Pay is asked with the refund's fixed
``out_refund_no``. WeChat finishes a refund asynchronously (refund notify, or 刷新状态 here:
:func:`gc_admin.orders.refunds.sync_refund_now`); if WeChat cannot be reached, the refund stays
pending and the retry job re-sends it with the same number.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import reflex as rx

from gc_admin.core.errors import DomainError
from gc_admin.core.money import format_fen, parse_yuan
from gc_admin.core.params import parse_id
from gc_admin.orders import display, flows, refunds
from gc_admin.orders import service as orders
from gc_admin.orders.badge import OrdersBadgeState
from gc_admin.orders.kinds import kind_of
from gc_admin.orders.models import ORDER_STATUSES
from gc_admin.ui.auth import current_principal, guarded, public, run_db
from gc_admin.ui.paging import PAGE_SIZE, PagedMixin, SearchMixin, setter

SECTION = "orders"


class OrdersState(PagedMixin, SearchMixin, rx.State):
    SECTION: ClassVar[str] = SECTION  # the paging handlers check it (ui.paging)
    rows: list[dict[str, str]] = []
    type_f: str = "all"
    status_f: str = "all"
    types: list[dict[str, str]] = []
    scope_note: str = ""
    visible: bool = True
    can_refund: bool = False
    loaded: bool = False
    # the detail panel
    detail_open: bool = False
    detail: dict[str, str] = {}
    lines: list[dict[str, str]] = []
    steps: list[dict[str, str]] = []
    history: list[dict[str, str]] = []
    refunds: list[dict[str, str]] = []
    actions: list[dict[str, str]] = []
    refund_options: list[dict[str, str]] = []
    detail_error: str = ""
    # a staff action (accept, fulfil, complete, cancel, after-sales, resolve)
    act_open: bool = False
    act: dict[str, str] = {}
    act_fields: list[dict[str, str]] = []  # the fields the order's kind takes for this action
    act_error: str = ""
    act_busy: bool = False
    # refund: form, then confirmation
    refund_open: bool = False
    refund_amount: str = ""
    refund_reason: str = ""
    refund_error: str = ""
    confirm_open: bool = False
    refund_preview: dict[str, str] = {}
    refund_busy: bool = False

    # --- the queue ---------------------------------------------------------------------------------

    def _on_denied(self) -> None:
        self.rows, self.total, self.types = [], 0, []

    @rx.event
    @guarded(SECTION)
    async def set_type(self, value: str):
        self.type_f, self.page = value, 1
        return await self._reload()

    @rx.event
    @guarded(SECTION)
    async def set_status(self, value: str):
        self.status_f, self.page = value, 1
        return await self._reload()

    @rx.event
    @guarded(SECTION)
    async def clear_filters(self):
        self.type_f, self.status_f, self.q, self.page = "all", "all", "", 1
        return await self._reload()

    async def _reload(self):
        """The queue within the admitted member's scope (called by guarded handlers only)."""
        scope = orders.scope_of(current_principal())
        self.visible, self.can_refund, self.scope_note = scope.visible, scope.can_refund, scope.note
        self.types = display.type_options(scope)
        self.loaded = True
        if not scope.visible:
            self.rows, self.total = [], 0
            return None
        try:
            page = await run_db(orders.list_orders, **self._filters(scope), offset=self._offset(), limit=PAGE_SIZE)
        except DomainError as exc:
            self.rows, self.total = [], 0
            return rx.toast.error(exc.message)
        self.total = page.total
        self.rows = [display.queue_row(r, scope=scope) for r in page.rows]
        return None

    def _sort_keys(self):
        return orders.ORDER_SORT_KEYS

    def _filters(self, scope: orders.Scope) -> dict[str, Any]:
        """The queue's filters and sort as :func:`orders.list_orders` takes them, within the role's scope."""
        type_ = None if self.type_f == "all" else self.type_f
        if type_ is not None and scope.types is not None and type_ not in scope.types:
            type_, self.type_f = None, "all"
        status = None if self.status_f == "all" else self.status_f
        return {"type": type_, "status": status, "q": self.q or None, "types": scope.types, "sort": self._sort(),
                "supplier": scope.supplier}

    @rx.event
    @guarded(SECTION)
    async def export(self):
        """Every order matching the filters (not just this page) as Excel, phones masked."""
        scope = orders.scope_of(current_principal())
        if not scope.visible:
            yield rx.toast.error("没有可导出的订单")
            return
        f = self._filters(scope)  # the task applies the role's scope again, from the signed-in member
        filters = {"type": f["type"], "status": f["status"], "q": f["q"], "sort": f["sort"]}
        async for event in self._export("orders", filters):
            yield event

    @rx.event
    @guarded(SECTION)
    async def refresh(self):
        """The queue, and the open order's panel."""
        out = await self._reload()
        if out is None and self.detail_open and self.detail.get("id"):
            return await self._load_detail(self.detail["id"])
        return out

    # --- the detail panel ----------------------------------------------------------------------------

    async def _load_detail(self, order_id: str) -> Any:
        scope = orders.scope_of(current_principal())
        self.can_refund = scope.can_refund  # opened from the board, whose load is not this state's
        try:
            detail = await run_db(flows.staff_detail, order_id=parse_id(order_id, what="订单"), scope=scope)
            d = display.order_detail(detail, scope=scope)
        except (DomainError, ValueError) as exc:
            self.detail_open = False
            return rx.toast.error(getattr(exc, "message", "订单不存在"))
        self.detail, self.lines, self.steps = d["order"], d["lines"], d["steps"]
        self.history, self.refunds, self.actions = d["history"], d["refunds"], d["actions"]
        self.refund_options = d["refund_options"]
        self.detail_error = ""
        self.detail_open = True
        return None

    @rx.event
    @guarded(SECTION)
    async def open_order(self, order_id: str):
        return await self._load_detail(order_id)

    @rx.event
    @public
    def set_detail_open(self, value: bool):
        self.detail_open = value
        if not value:
            self.lines, self.steps, self.history, self.refunds, self.actions = [], [], [], [], []
            self.refund_options = []

    @rx.event
    @guarded(SECTION)
    async def sync_refund(self, refund_id: str):
        """Ask WeChat Pay about a refund still in flight (re-sends one that never reached it)."""
        scope = orders.scope_of(current_principal())
        if not scope.can_refund:
            return rx.toast.error("没有退款权限")
        order_id = self.detail.get("id", "")
        try:
            refund = await asyncio.to_thread(refunds.sync_refund_now, refund_id=parse_id(refund_id, what="退款"),
                                             order_id=int(order_id), scope=scope)
        except (DomainError, ValueError) as exc:
            return rx.toast.error(getattr(exc, "message", "退款不存在"))
        await self._reload()
        await self._load_detail(order_id)
        return _refund_toast(refund)

    # --- staff actions ------------------------------------------------------------------------------

    @rx.event
    @guarded(SECTION)
    async def open_action(self, order_id: str, action: str):
        """The confirmation of a move (from the queue row or the panel), with its reason field."""
        scope = orders.scope_of(current_principal())
        if action not in orders.STAFF_ACTIONS or not scope.can_act or (
                scope.actions is not None and action not in scope.actions):
            return rx.toast.error("没有权限执行此操作")
        row = next((r for r in self.rows if r["id"] == order_id), None)
        if row is None and self.detail.get("id") == order_id:
            row = self.detail
        try:  # from a kanban card: the order as the database has it
            order = await run_db(orders.visible_order, order_id=parse_id(order_id, what="订单"), scope=scope)
        except (DomainError, ValueError):
            return rx.toast.error("订单不存在，请刷新后重试")
        row = row or {"order_no": order.order_no, "status_label": ORDER_STATUSES.get(order.status, order.status)}
        kind = kind_of(order.type)
        if action not in kind.actions:
            return rx.toast.error(f"{kind.label}订单没有此操作")
        names = (*kind.action_fields.get(action, ()), *flows.COMMON_FIELDS.get(action, ()))
        self.act_fields = [{"name": n, "label": display.FIELD_LABELS.get(n, n)} for n in names]
        self.act = {
            "order_id": order_id, "order_no": row.get("order_no", ""), "action": action,
            "label": display.action_label(action), "hint": display.ACTION_HINTS.get(action, ""),
            "reason_required": "1" if action in orders.REASON_REQUIRED else "",
            "status_label": row.get("status_label", ""), "color": display.ACTION_COLORS.get(action, "blue"),
        }
        self.act_error = ""
        self.act_open = True
        return None

    @rx.event
    @public
    def set_act_open(self, value: bool):
        self.act_open = value
        if not value:
            self.act_error = ""

    @rx.event
    @guarded(SECTION)
    async def confirm_action(self, form: dict[str, Any]):
        p = current_principal()
        scope = orders.scope_of(p)
        action, order_id = self.act.get("action", ""), self.act.get("order_id", "")
        if not scope.can_act or action not in orders.STAFF_ACTIONS or not order_id or (
                scope.actions is not None and action not in scope.actions):
            yield rx.toast.error("没有权限执行此操作")
            return
        reason = str(form.get("reason", "") or "").strip()
        if action in orders.REASON_REQUIRED and not reason:
            self.act_error = "请填写原因"
            return
        if len(reason) > 200:
            self.act_error = "原因不超过 200 个字"
            return
        fields: dict[str, Any] = {}
        for f in self.act_fields:
            value = str(form.get(f["name"], "") or "").strip()
            if value:
                fields[f["name"]] = int(value) if f["name"] in display.INT_FIELDS and value.isdigit() else value
        self.act_busy = True
        yield

        try:
            order = await asyncio.to_thread(flows.act, order_id=int(order_id), action=action, actor=p.actor(),
                                            scope=scope, reason=reason, fields=fields)
        except (DomainError, ValueError) as exc:
            self.act_busy = False
            self.act_error = getattr(exc, "message", "订单不存在")
            return
        self.act_busy, self.act_open, self.act_error = False, False, ""
        await self._reload()
        if self.detail_open and self.detail.get("id") == order_id:
            await self._load_detail(order_id)
        yield rx.toast.success(f"订单 {order.order_no} 已{display.action_label(action)}，"
                               f"当前状态：{ORDER_STATUSES.get(order.status, order.status)}")
        yield OrdersBadgeState.tick("")  # the sidebar's count now, not at the next tick

    # --- refund -------------------------------------------------------------------------------------

    @rx.event
    @guarded(SECTION)
    async def open_refund(self):
        if not orders.scope_of(current_principal()).can_refund:
            return rx.toast.error("没有退款权限")
        if self.detail.get("can_refund") != "1":
            return rx.toast.error(self.detail.get("refund_note") or "该订单当前不能退款")
        self.refund_amount = self.detail.get("refund_default", "")
        self.refund_reason, self.refund_error = "", ""
        self.refund_open = True
        return None

    set_refund_open = setter("refund_open", bool)
    set_refund_amount = setter("refund_amount", limit=16, strip=True)
    set_refund_reason = setter("refund_reason", limit=200)

    @rx.event
    @public
    def pick_refund_amount(self, value: str):
        self.refund_amount = value

    @rx.event
    @guarded(SECTION)
    async def preview_refund(self, form: dict[str, Any] | None = None):
        """Check the form (inline, in Chinese) and open the confirmation that states the consequence."""
        scope = orders.scope_of(current_principal())
        if not scope.can_refund:
            return rx.toast.error("没有退款权限")
        form = form or {}
        raw = str(form.get("amount", self.refund_amount) or "").strip()
        reason = str(form.get("reason", self.refund_reason) or "").strip()
        self.refund_amount, self.refund_reason = raw, reason
        try:
            amount = parse_yuan(raw)
        except ValueError:
            self.refund_error = "退款金额格式不正确，请填写元，最多两位小数，例如 9 或 9.50"
            return None
        if amount <= 0:
            self.refund_error = "退款金额需大于 0"
            return None
        if not reason:
            self.refund_error = "请填写退款原因（将记入订单记录）"
            return None
        if len(reason) > 200:
            self.refund_error = "退款原因不超过 200 个字"
            return None
        order_id = self.detail.get("id", "")

        def _check(s):  # the flow's own rules, so the form says what the refund would say
            order = orders.visible_order(s, order_id=int(order_id), scope=scope)
            return order, refunds.check_refund(s, order=order, amount_fen=amount)

        try:
            order, coupons = await run_db(_check)
        except (DomainError, ValueError) as exc:
            self.refund_error = getattr(exc, "message", "订单不存在")
            return None
        self.refund_error = ""
        self.refund_preview = {
            "order_id": order_id, "order_no": order.order_no, "amount_fen": str(amount),
            "amount": format_fen(amount), "reason": reason, "coupons": str(coupons),
            "text": display.refund_consequence(amount_fen=amount, paid_fen=order.paid_fen,
                                             refunded_fen=order.refunded_fen, coupons=coupons,
                                             order_type=order.type),
        }
        self.refund_open = False
        self.confirm_open = True
        return None

    set_confirm_open = setter("confirm_open", bool)

    @rx.event
    @public
    def back_to_refund_form(self):
        self.confirm_open = False
        self.refund_open = True

    @rx.event
    @guarded(SECTION)
    async def confirm_refund(self):
        p = current_principal()
        scope = orders.scope_of(p)
        pv = self.refund_preview
        if not scope.can_refund:
            yield rx.toast.error("没有退款权限")
            return
        if not pv.get("order_id") or not pv.get("amount_fen"):
            yield rx.toast.error("请先填写退款金额与原因")
            return
        if self.refund_busy:
            return
        order_id, amount, reason = int(pv["order_id"]), int(pv["amount_fen"]), pv.get("reason", "")
        self.refund_busy = True
        yield

        toast: Any
        try:  # recorded and committed first (the reservation and the refund number), then sent
            refund = await asyncio.to_thread(refunds.refund, order_id=order_id, amount_fen=amount, reason=reason,
                                             actor=p.actor(), scope=scope)
            toast = _refund_toast(refund)
        except refunds.RefundRefused as exc:  # WeChat refused it: recorded as failed, the reservation undone
            toast = rx.toast.error(exc.message)
        except refunds.RefundNotSent as exc:  # recorded and pending: the retry job sends it with the same number
            toast = rx.toast.warning(f"退款 {format_fen(amount)} 已记录（退款单号 {exc.refund.out_refund_no}），"
                                     "暂时无法连接微信支付，系统将自动重试")
        except DomainError as exc:  # not recorded
            self.refund_busy, self.confirm_open = False, False
            self.refund_error, self.refund_open = exc.message, True
            yield rx.toast.error(f"退款未执行：{exc.message}")
            return
        self.refund_busy, self.confirm_open, self.refund_preview = False, False, {}
        self.refund_amount = self.refund_reason = self.refund_error = ""
        await self._reload()
        await self._load_detail(str(order_id))
        yield toast


def _refund_toast(refund) -> Any:
    amount = format_fen(refund.amount_fen)
    if refund.status == "succeeded":
        return rx.toast.success(f"退款成功：{amount} 已退回用户（退款单号 {refund.out_refund_no}）")
    if refund.status == "processing":
        return rx.toast.success(f"退款 {amount} 已提交微信支付，处理中（退款单号 {refund.out_refund_no}），"
                                "通常几分钟内到账")
    if refund.status == "failed":
        return rx.toast.error(f"退款 {amount} 失败：{refund.error or '微信支付拒绝'}，可退金额已恢复")
    return rx.toast.warning(f"退款 {amount} 已记录（退款单号 {refund.out_refund_no}），等待提交微信支付，系统将自动重试")
