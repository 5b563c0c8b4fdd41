"""订单看板 state: the queue (filters, paging, age/SLA), the detail panel, staff actions and refunds.

Every handler that reads or changes data calls :func:`require` first and works within the role's
:class:`~gc_admin.orders.views.Scope` (a dispatcher sees driver orders only; a supplier none yet;
refunds for admin, manager, service and clerk). The services decide everything else again.

A refund is two steps for the clerk — the form (amount in yuan, reason), then a confirmation that
states the consequence — and two units of work on the server, exactly like the staff API:
:func:`payments.refund_order` records it (committed: the refundable remainder is reserved, the
bought coupons are held), then :func:`payments.send_refund` asks WeChat Pay with the refund's fixed
``out_refund_no``. WeChat finishes a refund asynchronously (refund notify, or 刷新状态 here, which
calls :func:`payments.sync_refund`); if WeChat cannot be reached, the refund stays pending and the
retry job re-sends it with the same number.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import reflex as rx

from gc_admin.accounts.service import Principal
from gc_admin.core.errors import DomainError, UpstreamError
from gc_admin.core.money import format_fen, parse_yuan
from gc_admin.core.params import parse_id
from gc_admin.orders import service as orders
from gc_admin.orders import views
from gc_admin.orders.badge import OrdersBadgeState
from gc_admin.orders.models import ORDER_STATUSES
from gc_admin.payments import service as payments
from gc_admin.ui.auth import denied, require, run_db
from gc_admin.ui.paging import PAGE_SIZE, PagedMixin, export_xlsx

log = logging.getLogger(__name__)

SECTION = "orders"


class OrdersState(PagedMixin, rx.State):
    SECTION: ClassVar[str] = SECTION  # the paging handlers check it (ui.paging)
    rows: list[dict[str, str]] = []
    type_f: str = "all"
    status_f: str = "all"
    q: str = ""
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

    @rx.event
    async def set_type(self, value: str):
        self.type_f, self.page = value, 1
        return await self._reload()

    @rx.event
    async def set_status(self, value: str):
        self.status_f, self.page = value, 1
        return await self._reload()

    @rx.event
    def set_q(self, value: str):
        self.q = value.strip()[:32]

    @rx.event
    async def clear_filters(self):
        self.type_f, self.status_f, self.q, self.page = "all", "all", "", 1
        return await self._reload()

    async def _principal(self) -> Principal | None:
        return await require(self, SECTION)

    async def _reload(self):
        p = await self._principal()
        if p is None:
            self.rows, self.total, self.types = [], 0, []
            return await denied(self)
        scope = views.scope_for(p.role)
        self.visible, self.can_refund, self.scope_note = scope.visible, scope.can_refund, scope.note
        self.types = views.type_options(scope)
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
        self.rows = [views.queue_row(r, scope=scope) for r in page.rows]
        return None

    def _sort_keys(self):
        return orders.ORDER_SORT_KEYS

    def _filters(self, scope: views.Scope) -> dict[str, Any]:
        """The queue's filters and sort as :func:`orders.list_orders` takes them, within the role's scope."""
        type_ = None if self.type_f == "all" else self.type_f
        if type_ is not None and scope.types is not None and type_ not in scope.types:
            type_, self.type_f = None, "all"
        status = None if self.status_f == "all" else self.status_f
        return {"type": type_, "status": status, "q": self.q or None, "types": scope.types, "sort": self._sort()}

    @rx.event
    async def export(self):
        """Every order matching the filters (not just this page) as Excel, phones masked."""
        p = await self._principal()
        if p is None:
            yield await denied(self)
            return
        scope = views.scope_for(p.role)
        if not scope.visible:
            yield rx.toast.error("没有可导出的订单")
            return
        filters = self._filters(scope)
        self.exporting = True
        yield
        try:
            events = await export_xlsx(lambda s: orders.orders_frame(s, **filters), title="订单")
        except DomainError as exc:
            events = [rx.toast.error(exc.message)]
        self.exporting = False
        for event in events:
            yield event

    @rx.event
    async def load(self):
        return await self._reload()

    @rx.event
    async def refresh(self):
        """The queue, and the open order's panel."""
        out = await self._reload()
        if out is None and self.detail_open and self.detail.get("id"):
            return await self._load_detail(self.detail["id"])
        return out

    # --- the detail panel ----------------------------------------------------------------------------

    async def _load_detail(self, order_id: str) -> Any:
        p = await self._principal()
        if p is None:
            return await denied(self)
        scope = views.scope_for(p.role)
        try:
            d = await run_db(views.order_detail, order_id=parse_id(order_id, what="订单"), scope=scope)
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
    async def open_order(self, order_id: str):
        return await self._load_detail(order_id)

    @rx.event
    def set_detail_open(self, value: bool):
        self.detail_open = value
        if not value:
            self.lines, self.steps, self.history, self.refunds, self.actions = [], [], [], [], []
            self.refund_options = []

    @rx.event
    async def sync_refund(self, refund_id: str):
        """Ask WeChat Pay about a refund still in flight (re-sends one that never reached it)."""
        p = await self._principal()
        if p is None:
            return await denied(self)
        scope = views.scope_for(p.role)
        if not scope.can_refund:
            return rx.toast.error("没有退款权限")
        order_id = self.detail.get("id", "")

        def _sync(s):
            rid = parse_id(refund_id, what="退款")
            views.visible_order(s, order_id=int(order_id), scope=scope)
            refund = payments.get_refund(s, refund_id=rid)
            if refund.order_id != int(order_id):
                raise ValueError("refund of another order")
            return payments.sync_refund(s, refund_id=refund.id or 0)

        try:
            refund = await run_db(_sync)
        except (DomainError, ValueError) as exc:
            return rx.toast.error(getattr(exc, "message", "退款不存在"))
        await self._reload()
        await self._load_detail(order_id)
        return _refund_toast(refund)

    # --- staff actions ------------------------------------------------------------------------------

    @rx.event
    async def open_action(self, order_id: str, action: str):
        """The confirmation of a move (from the queue row or the panel), with its reason field."""
        p = await self._principal()
        if p is None:
            return await denied(self)
        scope = views.scope_for(p.role)
        if action not in orders.STAFF_ACTIONS or not scope.can_act:
            return rx.toast.error("没有权限执行此操作")
        row = next((r for r in self.rows if r["id"] == order_id), None)
        if row is None and self.detail.get("id") == order_id:
            row = self.detail
        if row is None:
            return rx.toast.error("订单不存在，请刷新后重试")
        self.act = {
            "order_id": order_id, "order_no": row.get("order_no", ""), "action": action,
            "label": views.action_label(action), "hint": views.ACTION_HINTS.get(action, ""),
            "reason_required": "1" if action in views.REASON_REQUIRED else "",
            "status_label": row.get("status_label", ""), "color": views.ACTION_COLORS.get(action, "blue"),
        }
        self.act_error = ""
        self.act_open = True
        return None

    @rx.event
    def set_act_open(self, value: bool):
        self.act_open = value
        if not value:
            self.act_error = ""

    @rx.event
    async def confirm_action(self, form: dict[str, Any]):
        p = await self._principal()
        if p is None:
            yield await denied(self)
            return
        scope = views.scope_for(p.role)
        action, order_id = self.act.get("action", ""), self.act.get("order_id", "")
        if not scope.can_act or action not in orders.STAFF_ACTIONS or not order_id:
            yield rx.toast.error("没有权限执行此操作")
            return
        reason = str(form.get("reason", "") or "").strip()
        if action in views.REASON_REQUIRED and not reason:
            self.act_error = "请填写原因"
            return
        if len(reason) > 200:
            self.act_error = "原因不超过 200 个字"
            return
        self.act_busy = True
        yield

        def _act(s):
            views.visible_order(s, order_id=int(order_id), scope=scope)
            return orders.staff_action(s, order_id=int(order_id), action=action, actor=p.actor(), reason=reason)

        try:
            order = await run_db(_act)
        except (DomainError, ValueError) as exc:
            self.act_busy = False
            self.act_error = getattr(exc, "message", "订单不存在")
            return
        self.act_busy, self.act_open, self.act_error = False, False, ""
        await self._reload()
        if self.detail_open and self.detail.get("id") == order_id:
            await self._load_detail(order_id)
        yield rx.toast.success(f"订单 {order.order_no} 已{views.action_label(action)}，"
                               f"当前状态：{ORDER_STATUSES.get(order.status, order.status)}")
        yield OrdersBadgeState.tick("")  # the sidebar's count now, not at the next tick

    # --- refund -------------------------------------------------------------------------------------

    @rx.event
    async def open_refund(self):
        p = await self._principal()
        if p is None:
            return await denied(self)
        if not views.scope_for(p.role).can_refund:
            return rx.toast.error("没有退款权限")
        if self.detail.get("can_refund") != "1":
            return rx.toast.error(self.detail.get("refund_note") or "该订单当前不能退款")
        self.refund_amount = self.detail.get("refund_default", "")
        self.refund_reason, self.refund_error = "", ""
        self.refund_open = True
        return None

    @rx.event
    def set_refund_open(self, value: bool):
        self.refund_open = value

    @rx.event
    def set_refund_amount(self, value: str):
        self.refund_amount = value.strip()[:16]

    @rx.event
    def set_refund_reason(self, value: str):
        self.refund_reason = value[:200]

    @rx.event
    def pick_refund_amount(self, value: str):
        self.refund_amount = value

    @rx.event
    async def preview_refund(self, form: dict[str, Any] | None = None):
        """Check the form (inline, in Chinese) and open the confirmation that states the consequence."""
        p = await self._principal()
        if p is None:
            return await denied(self)
        scope = views.scope_for(p.role)
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

        def _check(s):  # the service's own rules, so the form says what the refund would say
            order = views.visible_order(s, order_id=int(order_id), scope=scope)
            return order, payments.check_refund(s, order=order, amount_fen=amount)

        try:
            order, coupons = await run_db(_check)
        except (DomainError, ValueError) as exc:
            self.refund_error = getattr(exc, "message", "订单不存在")
            return None
        self.refund_error = ""
        self.refund_preview = {
            "order_id": order_id, "order_no": order.order_no, "amount_fen": str(amount),
            "amount": format_fen(amount), "reason": reason, "coupons": str(coupons),
            "text": views.refund_consequence(amount_fen=amount, paid_fen=order.paid_fen,
                                             refunded_fen=order.refunded_fen, coupons=coupons,
                                             order_type=order.type),
        }
        self.refund_open = False
        self.confirm_open = True
        return None

    @rx.event
    def set_confirm_open(self, value: bool):
        self.confirm_open = value

    @rx.event
    def back_to_refund_form(self):
        self.confirm_open = False
        self.refund_open = True

    @rx.event
    async def confirm_refund(self):
        p = await self._principal()
        if p is None:
            yield await denied(self)
            return
        scope = views.scope_for(p.role)
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

        def _record(s):
            views.visible_order(s, order_id=order_id, scope=scope)
            return payments.refund_order(s, order_id=order_id, amount_fen=amount, reason=reason, actor=p.actor())

        try:
            refund = await run_db(_record)  # committed: the reservation and the refund number are on record
        except DomainError as exc:
            self.refund_busy, self.confirm_open = False, False
            self.refund_error, self.refund_open = exc.message, True
            yield rx.toast.error(f"退款未执行：{exc.message}")
            return
        toast: Any
        try:
            refund = await run_db(lambda s: payments.send_refund(s, refund_id=refund.id or 0))
            toast = _refund_toast(refund)
        except UpstreamError as exc:
            toast = rx.toast.error(exc.message)
        except Exception:  # noqa: BLE001 - recorded and pending: the retry job sends it with the same number
            log.exception("refund %s: sending to WeChat Pay failed", refund.out_refund_no)
            toast = rx.toast.warning(f"退款 {format_fen(amount)} 已记录（退款单号 {refund.out_refund_no}），"
                                     "暂时无法连接微信支付，系统将自动重试")
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
