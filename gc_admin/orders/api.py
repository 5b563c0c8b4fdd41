"""Order routes: the mini-program (``/mp``: catalogue, quote, create, list, cancel, confirm), staff
automation (``/admin/orders``: the queue, one order, actions including refunds; ``/admin/refunds/{id}/sync``)
and the WeChat Pay callbacks (``/pay/wechat/notify``, ``/pay/wechat/refund-notify``), which change orders.

Thin: parse → one unit of work calling the services and flows → serialise. Money in requests is
strict ``int`` fen (a float or a numeric string is a 422). A refund is two units of work
(:func:`gc_admin.orders.refunds.refund`): it is recorded (and committed) first, then WeChat Pay is
asked, so a crash in between leaves a pending refund that a retry re-sends with the same
``out_refund_no``.

Staff roles (:func:`gc_admin.orders.service.scope_for`): the queue and transitions need the "orders"
section; suppliers get 403 here until orders carry their supplier (goods fulfilment), dispatchers
see driver orders only. Refunds: admin, manager, service (customer service: after-sales) and clerk
(failed top-ups) — the roles that deal with the user about money; everything is audited with the reason.

The callbacks speak WeChat Pay's protocol, not the house error envelope: 204 when received
(applied, or a replay that changes nothing), 4xx ``{"code": "FAIL", "message": "..."}`` when
rejected (bad signature, stale timestamp, unknown order, wrong amount), so WeChat retries or
gives up as designed. Every attempt is logged in ``payment_notify_log``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gc_admin.accounts.deps import require_staff
from gc_admin.core import tasks
from gc_admin.core.errors import Forbidden, InvalidInput
from gc_admin.core.http import PageOut, StrictModel, client_ip
from gc_admin.core.params import Count, Fen, Id, IdField, Instant, Limit, MpLimit, Offset, PositiveFen
from gc_admin.core.principal import Principal
from gc_admin.coupons.catalog import service as coupons
from gc_admin.coupons.purchase import service as purchase
from gc_admin.db import session_scope
from gc_admin.core.regions import GUANGXI_CITIES
from gc_admin.orders import flows, pricing, refunds, service
from gc_admin.orders.flowers import service as flowers
from gc_admin.orders.aftersales import service as aftersales
from gc_admin.orders.aftersales.models import CALL_OUTCOMES
from gc_admin.orders.kinds.coupon_purchase import purchase_limit
from gc_admin.orders.kinds.topup import TOPUP_FACES
from gc_admin.orders.models import ORDER_STATUSES, ORDER_TYPES
from gc_admin.orders.service import REFUND_ROLES, Scope
from gc_admin.orders.suppliers import service as suppliers
from gc_admin.payments import service as payments
from gc_admin.payments.api import RefundOut, RefundRowOut
from gc_admin.payments.balances import FEN_PER_POINT, balances
from gc_admin.payments.deps import money_staff
from gc_admin.users.deps import require_user
from gc_admin.users.models import MpUser

log = logging.getLogger(__name__)

mp = APIRouter(prefix="/mp", tags=["mini-program: orders"])
admin = APIRouter(prefix="/admin", tags=["admin: orders"])
money = APIRouter(prefix="/admin", tags=["admin: payments"])
pay = APIRouter(prefix="/pay", tags=["payment callbacks"])

MAX_NOTIFY_BYTES = 64 * 1024


# --- shapes ---------------------------------------------------------------------------------------

class TopupDetails(StrictModel):
    mobile: str = Field(min_length=11, max_length=20, description="the number to top up")
    face_fen: Fen = Field(description="5000 or 10000")


class FlowerDetails(StrictModel):
    """鲜花配送 (API.md "Service orders"): a bouquet to a recipient in one of the 14 Guangxi cities, in a slot."""

    bouquet_code: str = Field(min_length=1, max_length=32)
    recipient_name: str = Field(min_length=1, max_length=32)
    recipient_phone: str = Field(min_length=11, max_length=20, description="a mainland mobile")
    city: str = Field(min_length=1, max_length=16, description="one of the 14 Guangxi cities, with or without 市")
    district: str | None = Field(None, max_length=32)
    address: str = Field(min_length=1, max_length=120)
    slot_start: str = Field(max_length=40, description="ISO-8601 with offset: the start of a slot from GET /mp/flower/slots")
    greeting: str | None = Field(None, max_length=100, description="the card's message")
class AddressIn(StrictModel):
    name: str = Field(min_length=1, max_length=32)
    phone: str = Field(min_length=11, max_length=20)
    province: str = Field(min_length=1, max_length=16)
    city: str = Field(min_length=1, max_length=16)
    district: str = Field(min_length=1, max_length=16)
    detail: str = Field(min_length=1, max_length=120)


class GoodsDetails(StrictModel):
    goods_code: str = Field(min_length=1, max_length=32)
    quantity: Annotated[int, Field(strict=True, ge=1, le=10)] = 1
    address: AddressIn


class OrderBody(StrictModel):
    """An order as the mini-program sends it (quote and create take the same body)."""

    type: Literal[tuple(ORDER_TYPES)]  # type: ignore[valid-type]
    product_code: str | None = Field(None, max_length=32, description="coupon_purchase: the product (券种) code")
    quantity: Annotated[int, Field(strict=True, ge=1, le=1000)] = 1
    coupon_id: IdField | None = Field(
        None, description="one platform coupon / discount voucher of mine")
    exchange_coupon_id: IdField | None = None
    points: Count = Field(0, description=f"points to use ({FEN_PER_POINT} fen each)")
    use_stored_value: bool = Field(False, strict=True)
    topup: TopupDetails | None = None
    flower: FlowerDetails | None = None
    driver: dict[str, Any] | None = Field(None, description="driver: {pickup, destination, at, contact_phone, plate_no?}")
    goods: GoodsDetails | None = None

    def draft(self) -> pricing.OrderDraft:
        own = getattr(self, self.type, None)  # the type's own object (topup: {...}, flower: {...}, driver: {...}, goods: {...})
        stray = [t for t in ORDER_TYPES if t != self.type and getattr(self, t, None) is not None]
        if stray:
            raise InvalidInput(f"{ORDER_TYPES[self.type]}订单不能带 {', '.join(stray)} 字段", code="INVALID_ORDER")
        details: dict[str, Any] = (own.model_dump(exclude_none=True) if isinstance(own, BaseModel)
                                   else dict(own or {}))
        return pricing.OrderDraft(type=self.type, product_code=self.product_code, quantity=self.quantity,
                                  coupon_id=self.coupon_id, exchange_coupon_id=self.exchange_coupon_id,
                                  points=self.points, use_stored_value=self.use_stored_value, details=details)


class StepOut(BaseModel):
    kind: str
    label: str
    amount_fen: int
    funded_by: str
    ref: str | None = None


class PricingOut(BaseModel):
    list_fen: int
    steps: list[StepOut]
    payable_fen: int


class LineOut(BaseModel):
    code: str
    name: str
    quantity: int
    unit_fen: int
    amount_fen: int


class QuoteOut(BaseModel):
    type: str
    lines: list[LineOut]
    pricing: PricingOut
    details: dict[str, Any]


class HistoryOut(BaseModel):
    action: str
    status: str
    from_status: str | None = None
    at: str
    by: str
    reason: str


class PaymentParams(BaseModel):
    """Pass to ``wx.requestPayment`` (``appId`` is informational: it is signed, not passed)."""

    appId: str
    timeStamp: str
    nonceStr: str
    package: str
    signType: str
    paySign: str


class _OrderHead(BaseModel):
    """How every view of an order starts: which order, of what type, in what status."""

    id: int
    order_no: str
    type: str
    type_label: str
    status: str
    status_label: str


class _OrderFields(_OrderHead):
    """What the user and staff both see of an order (API.md "Order")."""

    lines: list[LineOut]
    pricing: PricingOut
    details: dict[str, Any]
    fulfilment: dict[str, Any]
    history: list[HistoryOut]
    paid_fen: int
    refunded_fen: int
    created_at: str
    paid_at: str | None = None
    coupon_id: int | None = None
    coupon_ids: list[int] | None = Field(None, description="coupon_purchase: the coupons bought")
    refunds: list[RefundOut]


class OrderOut(_OrderFields):
    pay_expires_at: str | None = None
    payment: PaymentParams | None = Field(None, description="wx.requestPayment parameters while unpaid")


class StaffPaymentOut(BaseModel):
    provider: str
    transaction_id: str
    amount_fen: int
    success_time: str | None = None
    source: str


class ClaimOut(BaseModel):
    by_id: str | None = Field(None, description="staff id of the assignee (kept after the lease ends)")
    by: str | None = Field(None, description="the assignee's name")
    until: str | None = None
    live: bool = Field(description="the lease runs: other clerks' actions are refused")


class CallOut(BaseModel):
    called_at: str
    outcome: str
    outcome_label: str
    note: str
    by: str


class CaseOut(BaseModel):
    status: str
    status_label: str
    reason: str
    notes: str
    outcome: str | None = None
    outcome_label: str
    outcome_note: str
    opened_by: str
    opened_at: str
    closed_by: str | None = None
    closed_at: str | None = None
    calls: list[CallOut]


class CallBody(StrictModel):
    outcome: Literal[tuple(CALL_OUTCOMES)]  # type: ignore[valid-type]
    note: str = Field("", max_length=500)
    called_at: Instant | None = Field(None, description="when the call was made (default: now)")


class StaffOrderOut(_OrderFields):
    refundable_fen: int = Field(description="可退: the most one refund may be now — paid − refunded (refunds in "
                                            "flight included); for a coupon purchase only its still unused coupons; "
                                            "0 when the status allows no refund")
    user_id: int
    phone_masked: str
    anomaly: str | None = None
    payment: StaffPaymentOut | None = None
    city: str | None = None
    claim: ClaimOut
    kind_actions: list[str] = Field(description="the staff actions this order's type allows")
    case: CaseOut | None = Field(None, description="the after-sales case, with its call log")


class OrdersOut(BaseModel):
    items: list[OrderOut]


class CatalogProduct(BaseModel):
    code: str
    name: str
    kind: str
    face_fen: int
    price_fen: int
    percent_off: int | None = None
    category: str | None = None
    supplier: str
    per_user_limit: int | None = None
    can_buy: int = Field(description="how many I may still buy (per-user limit and stock)")
    stock_hint: int | None = Field(
        None, description=f"in stock, capped at {purchase.STOCK_HINT_CAP}; null: no stock needed")


class TopupCatalog(BaseModel):
    faces_fen: list[int]


class CatalogBouquet(BaseModel):
    code: str
    name: str
    description: str
    price_fen: int
    image_url: str | None
    note: str = Field(description="style and wrapping may differ from the photo")
class CatalogGoods(BaseModel):
    code: str
    name: str
    image_url: str | None = Field(None, description="the photo (uploaded in the dashboard; null: none)")
    photo_url: str = Field(description="deprecated: the same as image_url, or empty")
    supplier: str = Field(description="who ships it (the supplier's name)")
    price_fen: int
    in_stock: bool
    exchange_products: list[str] = Field(description="goods_exchange products whose voucher redeems it")


class CatalogOut(BaseModel):
    coupons: list[CatalogProduct]
    goods: list[CatalogGoods] = []
    topup: TopupCatalog
    bouquets: list[CatalogBouquet]
    flower_cities: list[str] = Field(description="the 14 Guangxi cities flowers are delivered in")
    points: int
    stored_value_fen: int


class QueueRowOut(_OrderHead):
    phone_masked: str
    summary: str
    list_fen: int
    payable_fen: int
    paid_fen: int
    refunded_fen: int
    created_at: str
    paid_at: str | None = None
    anomaly: str | None = None
    city: str | None = None
    assignee: str | None = None
    claimed_until: str | None = None


class QueueOut(PageOut[QueueRowOut]):
    pass


class ActionBody(StrictModel):
    """Each action's own fields (which an order's type accepts for which action: ``Kind.action_fields``;
    any other field given is refused with ``INVALID_FIELD``)."""

    reason: str = Field("", max_length=200, description="cancel / after_sales / fail: required")
    amount_fen: PositiveFen | None = Field(
        None, description="refund: the amount in fen (required)")
    fulfilment: dict[str, str | Count | None] | None = Field(
        None, description="free fulfilment notes merged into the order's fulfilment (any action)")
    shop_name: str | None = Field(None, max_length=64, description="flower accept: the Meituan shop")
    shop_phone: str | None = Field(None, max_length=20, description="flower accept: the shop's phone")
    eta: str | None = Field(None, max_length=40, description="flower accept: estimated delivery, ISO-8601 with offset")
    provider_ref: str | None = Field(None, max_length=64, description="topup complete / fail: the provider's reference")
    driver_id: IdField | None = Field(None, description="driver assign_driver: a driver of the roster")
    platform: str | None = Field(None, max_length=32, description="driver hand_off: the third-party platform")
    fee_fen: Fen | None = Field(None, description="driver set_fee: the fee in fen")
    carrier: str | None = Field(None, max_length=32, description="goods ship: the carrier")
    tracking_no: str | None = Field(None, max_length=40, description="goods ship: the tracking number")
    notes: str | None = Field(None, max_length=2000, description="after_sales / resolve: the case's notes")
    override: bool = Field(False, strict=True, description="release: a manager frees another clerk's claim")

    def fields(self) -> dict[str, Any]:
        """The type-specific fields given (``None`` = not given)."""
        return {k: v for k, v in self.model_dump(exclude={"reason", "amount_fen", "fulfilment", "override", "order_ids"}).items()
                if v is not None}


class CancelBody(StrictModel):
    reason: str = Field("", max_length=200)


class BadgeOut(BaseModel):
    unseen_paid: int


# --- helpers ---------------------------------------------------------------------------------------

def _order_out(session, order, *, with_payment: bool = True) -> OrderOut:
    view = flows.order_view(session, order=order)
    params = service.payment_params(order) if with_payment else None
    return OrderOut(**view, payment=params)


def _staff_out(session, order) -> StaffOrderOut:
    return StaffOrderOut(**flows.order_view(session, order=order, for_staff=True))


def _send_notices() -> None:
    """After the response: queue the "new order" SMS to the clerks on duty (the ``orders.notices`` task; one
    waiting job sends every pending notice). Never fails the request: the notice row waits for the sweep."""
    try:
        tasks.defer("orders.notices", key="orders.notices")
    except Exception:  # noqa: BLE001 - logged; the notice stays pending and goes with the periodic sweep
        log.exception("queueing order notices failed")


# --- mini-program ------------------------------------------------------------------------------------

@mp.get("/catalog", response_model=CatalogOut, summary="可购买 / 下单的商品：在售券种（价格、每人限购、库存提示）、话费面额、花束与鲜花配送城市")
def catalog(user: MpUser = Depends(require_user)):
    with session_scope() as s:
        items = []
        for p in coupons.list_products(s):
            if not p.on_sale or p.price_fen is None:
                continue
            limit, left = purchase_limit(s, user=user, product=p)
            hint = purchase.stock_hint(s, product=p)
            items.append(CatalogProduct(
                code=p.code, name=p.name, kind=p.kind, face_fen=p.face_fen, price_fen=p.price_fen,
                percent_off=p.percent_off, category=p.category, supplier=p.supplier, per_user_limit=p.per_user_limit,
                can_buy=min(left, hint) if hint is not None else left, stock_hint=hint))
        points, stored = balances(s, user_id=user.id)
        bouquets = [CatalogBouquet(**flowers.bouquet_dict(b)) for b in flowers.menu(s)]
        names = {x.code: x.name for x in suppliers.list_suppliers(s)}
        goods = [CatalogGoods(code=g.code, name=g.name, image_url=suppliers.image_url(g),
                              photo_url=suppliers.image_url(g) or "", supplier=names.get(g.supplier_code, ""),
                              price_fen=g.price_fen, in_stock=g.stock > 0,
                              exchange_products=list(g.exchange_products or []))
                 for g in suppliers.list_goods(s, on_sale_only=True)]
    return CatalogOut(coupons=items, goods=goods, topup=TopupCatalog(faces_fen=list(TOPUP_FACES)), bouquets=bouquets,
                      flower_cities=list(GUANGXI_CITIES), points=points, stored_value_fen=stored)


@mp.post("/orders/quote", response_model=QuoteOut, summary="订单价格明细（不下单、无副作用）")
def quote(body: OrderBody, user: MpUser = Depends(require_user)):
    with session_scope() as s:
        return QuoteOut(**pricing.quote(s, user=user, body=body.draft()).to_dict())


@mp.post("/orders", response_model=OrderOut, status_code=201,
         summary="下单：锁定库存/优惠，返回订单与 wx.requestPayment 支付参数（需微信登录）")
def create_order(body: OrderBody, request: Request, background: BackgroundTasks, user: MpUser = Depends(require_user)):
    with session_scope() as s:
        order = flows.create_order(s, user=user, body=body.draft(), ip=client_ip(request))
        out = _order_out(s, order)
    if out.status != "created":
        background.add_task(_send_notices)  # nothing to pay: already paid
    return out


@mp.get("/orders", response_model=OrdersOut, summary="我的订单（含状态历史）")
def my_orders(status: Literal[tuple(ORDER_STATUSES)] | None = None,  # type: ignore[valid-type]
              offset: Offset = 0, limit: MpLimit = 20,
              user: MpUser = Depends(require_user)):
    with session_scope() as s:
        orders = service.list_user_orders(s, user=user, status=status, offset=offset, limit=limit)
        return OrdersOut(items=[_order_out(s, o, with_payment=False) for o in orders])


@mp.get("/orders/{order_id}", response_model=OrderOut, summary="我的一个订单（他人的订单与不存在的订单同样返回 404）")
def my_order(order_id: Id, user: MpUser = Depends(require_user)):
    with session_scope() as s:
        return _order_out(s, service.get_user_order(s, user=user, order_id=order_id))


@mp.post("/orders/{order_id}/cancel", response_model=OrderOut, summary="取消待支付订单（释放锁定的库存与优惠）")
def cancel(request: Request, order_id: Id, body: CancelBody | None = None,
           user: MpUser = Depends(require_user)):
    actor = service.user_actor(user, client_ip(request))
    flows.cancel(order_id=order_id, user=user, actor=actor, reason=(body.reason if body else "") or "用户取消")
    with session_scope() as s:
        return _order_out(s, service.get_order(s, order_id=order_id))


@mp.post("/orders/{order_id}/confirm", response_model=OrderOut, summary="确认收货")
def confirm(request: Request, order_id: Id, user: MpUser = Depends(require_user)):
    with session_scope() as s:
        return _order_out(s, service.confirm_order(s, user=user, order_id=order_id, ip=client_ip(request)))


# --- staff ----------------------------------------------------------------------------------------------

def _scope(p: Principal) -> Scope:
    scope = service.scope_for(p.role, supplier_code=p.supplier_code)
    if not scope.visible:
        raise Forbidden("没有权限查看订单", code="FORBIDDEN")
    return scope


@admin.get("/orders", response_model=QueueOut,
           summary="订单队列（类型、状态、城市、处理人、下单日期筛选；订单号或手机号搜索）")
def queue(type: Literal[tuple(ORDER_TYPES)] | None = None,  # type: ignore[valid-type]
          status: Literal[tuple(ORDER_STATUSES)] | None = None,  # type: ignore[valid-type]
          q: str | None = Query(None, max_length=32), city: str | None = Query(None, max_length=16),
          assignee: str | None = Query(None, max_length=64, description="a staff id, or none (unassigned)"),
          since: Instant | None = Query(None, alias="from", description="created at or after (ISO-8601 with offset)"),
          until: Instant | None = Query(None, alias="to", description="created before (ISO-8601 with offset)"),
          offset: Offset = 0, limit: Limit = 50, p: Principal = Depends(require_staff("orders"))):
    scope = _scope(p)
    types = scope.types
    for t in (since, until):
        if t is not None and t.tzinfo is None:
            raise InvalidInput("from / to 需带时区", code="INVALID_RANGE")
    with session_scope() as s:
        page = service.list_orders(s, type=type, status=status, q=q, types=types, offset=offset, limit=limit,
                                   city=city, assignee=assignee, since=since, until=until, supplier=scope.supplier)
    return QueueOut(total=page.total, items=[QueueRowOut(**r.to_dict()) for r in page.rows])


class NextOut(BaseModel):
    order: StaffOrderOut | None = Field(None, description="the order now claimed for me; null: nothing waiting")


@admin.post("/orders/next", response_model=NextOut,
            summary="下一单：认领最早支付、无人认领的待接单订单（并发时每人拿到不同的订单）")
def next_order(type: Literal[tuple(ORDER_TYPES)] | None = None,  # type: ignore[valid-type]
               p: Principal = Depends(require_staff("orders"))):
    scope = _scope(p)
    if not scope.can_act or scope.actions is not None:
        raise Forbidden("没有处理订单的权限", code="FORBIDDEN")
    types = scope.types if type is None else tuple(t for t in (type,) if scope.types is None or t in scope.types)
    with session_scope() as s:
        order = service.claim_next(s, actor=p.actor(), types=types)
        order_id = order.id if order is not None else None
    if order_id is None:
        return NextOut(order=None)
    with session_scope() as s:
        return NextOut(order=_staff_out(s, service.get_order(s, order_id=order_id)))


BULK_ACTIONS = ("claim", "accept", "complete")


class BulkBody(ActionBody):
    order_ids: list[IdField] = Field(min_length=1, max_length=100)


class BulkRowOut(BaseModel):
    order_id: int
    ok: bool
    status: str | None = None
    error: dict[str, Any] | None = None


class BulkOut(BaseModel):
    done: int
    failed: int
    items: list[BulkRowOut]


@admin.post("/orders/bulk/{action}", response_model=BulkOut,
            summary="批量操作（claim / accept / complete）：逐单执行，逐单返回结果")
def bulk(action: Literal[BULK_ACTIONS], body: BulkBody,  # type: ignore[valid-type]
         p: Principal = Depends(require_staff("orders"))):
    scope = _scope(p)
    if not scope.can_act or scope.actions is not None:
        raise Forbidden("没有处理订单的权限", code="FORBIDDEN")
    results = flows.bulk_act(order_ids=list(dict.fromkeys(body.order_ids)), action=action, actor=p.actor(),
                             scope=scope, reason=body.reason, fields=body.fields())
    items = [BulkRowOut(order_id=r.order_id, ok=r.error is None, status=r.status,
                        error=r.error.to_dict() if r.error else None) for r in results]
    done = sum(i.ok for i in items)
    return BulkOut(done=done, failed=len(items) - done, items=items)


@admin.get("/orders/badge", response_model=BadgeOut, summary="自某时起新支付、待接单的订单数（看板角标）")
def badge(since: Annotated[Instant, Query(description="ISO-8601 with offset")],
          p: Principal = Depends(require_staff("orders"))):
    scope = _scope(p)  # a dispatcher counts driver orders only, a supplier its own, as in the queue
    if since.tzinfo is None:
        raise InvalidInput("since 需带时区", code="INVALID_SINCE")
    with session_scope() as s:
        return BadgeOut(unseen_paid=service.unseen_paid_orders_count(s, since=since, types=scope.types,
                                                                     supplier=scope.supplier))


@admin.get("/orders/{order_id}", response_model=StaffOrderOut, summary="订单详情（价格明细、状态历史、支付与退款）")
def staff_order(order_id: Id, p: Principal = Depends(require_staff("orders"))):
    scope = _scope(p)
    with session_scope() as s:
        return _staff_out(s, service.visible_order(s, order_id=order_id, scope=scope))


ACTIONS = (*service.LEASE_ACTIONS, *service.STAFF_ACTIONS, "refund")
OVERRIDE_ROLES = ("admin", "manager")  # may free another clerk's claim


@admin.post("/orders/{order_id}/actions/{action}", response_model=StaffOrderOut,
            summary="订单操作：claim 认领、release 放弃认领、accept 接单 {shop_name, shop_phone, eta}、fulfil 履约、"
                    "complete 完成 {provider_ref}、fail 失败并全额退款 {reason}、assign_driver {driver_id}、"
                    "hand_off {platform}、arrive、start、set_fee {fee_fen}、ship {carrier, tracking_no}、"
                    "cancel 取消（未支付）、after_sales 转售后、resolve 售后完结、refund 退款 {amount_fen, reason}。"
                    "他人认领中的订单返回 409 ORDER_CLAIMED_BY_OTHER（注明认领人）")
def act(action: Literal[ACTIONS], order_id: Id, body: ActionBody | None = None,  # type: ignore[valid-type]
        p: Principal = Depends(require_staff("orders"))):
    body = body or ActionBody()
    actor = p.actor()
    scope = _scope(p)
    if action in service.LEASE_ACTIONS:
        if not scope.can_act or scope.actions is not None:
            raise Forbidden("没有处理订单的权限", code="FORBIDDEN")
        if body.override and p.role not in OVERRIDE_ROLES:
            raise Forbidden("只有管理员或主管可以解除他人的认领", code="FORBIDDEN")
        flows.lease_act(order_id=order_id, action=action, actor=actor, scope=scope, override=body.override)
    elif action == "refund":
        if p.role not in REFUND_ROLES:
            raise Forbidden("没有退款权限", code="FORBIDDEN")
        if body.amount_fen is None:
            raise InvalidInput("请填写退款金额（分）", code="AMOUNT_REQUIRED")
        try:
            refunds.refund(order_id=order_id, amount_fen=body.amount_fen, reason=body.reason, actor=actor,
                           scope=scope)
        except refunds.RefundNotSent as exc:
            raise exc.error from None  # answered as the failure it is; the refund stays pending for the retry job
    else:
        flows.act(order_id=order_id, action=action, actor=actor, scope=scope, reason=body.reason,
                  fulfilment=body.fulfilment, fields=body.fields())
    with session_scope() as s:
        return _staff_out(s, service.get_order(s, order_id=order_id))


@admin.post("/orders/{order_id}/case/calls", response_model=StaffOrderOut, status_code=201,
            summary="售后回访：记录一次给用户的电话（时间、结果、备注）")
def case_call(order_id: Id, body: CallBody, p: Principal = Depends(require_staff("orders"))):
    scope = _scope(p)
    if not scope.can_act or scope.actions is not None:
        raise Forbidden("没有处理订单的权限", code="FORBIDDEN")
    if body.called_at is not None and body.called_at.tzinfo is None:
        raise InvalidInput("called_at 需带时区", code="INVALID_CALL_TIME")
    with session_scope() as s:
        service.visible_order(s, order_id=order_id, scope=scope)
        aftersales.log_call(s, order_id=order_id, outcome=body.outcome, note=body.note, called_at=body.called_at,
                            actor=p.actor())
    with session_scope() as s:
        return _staff_out(s, service.get_order(s, order_id=order_id))


@money.post("/refunds/{refund_id}/sync", response_model=RefundRowOut,
            summary="向微信支付查询退款结果并更新（未送达的退款以同一退款单号重新提交）")
def refund_sync(refund_id: Id, _p: Principal = Depends(money_staff)):
    refunds.sync_refund_now(refund_id=refund_id)
    with session_scope() as s:
        return RefundRowOut(**payments.refund_view(payments.get_refund(s, refund_id=refund_id)).to_dict())


# --- WeChat Pay callbacks ------------------------------------------------------------------------------

def _answer(result: payments.NotifyResult) -> Response:
    if result.body is None:
        return Response(status_code=204)
    return JSONResponse(result.body, status_code=result.status_code)


async def _notify(request: Request, handle: Callable[..., payments.NotifyResult], *,
                  background: BackgroundTasks | None = None) -> Response:
    """One WeChat Pay callback: the raw body (bounded) and headers to ``handle`` in one unit of work, and
    its answer; with ``background``, the new-order notices are sent after a notify that was applied."""
    body = await request.body()
    if len(body) > MAX_NOTIFY_BYTES:
        return JSONResponse({"code": "FAIL", "message": "body too large"}, status_code=413)
    headers = dict(request.headers)

    def work() -> payments.NotifyResult:
        with session_scope() as s:
            return handle(s, headers=headers, body=body)

    result = await run_in_threadpool(work)
    if background is not None and result.outcome == "applied":
        background.add_task(_send_notices)
    return _answer(result)


@pay.post("/wechat/notify", status_code=204, response_class=Response, summary="微信支付结果通知（验签、解密、按单号与金额核对，只入账一次）",
          responses={400: {"description": '{"code":"FAIL","message":...}'}, 401: {}, 404: {}})
async def wechat_notify(request: Request, background: BackgroundTasks) -> Response:
    return await _notify(request, flows.handle_payment_notify, background=background)


@pay.post("/wechat/refund-notify", status_code=204, response_class=Response, summary="微信支付退款结果通知",
          responses={400: {"description": '{"code":"FAIL","message":...}'}, 401: {}, 404: {}})
async def wechat_refund_notify(request: Request) -> Response:
    return await _notify(request, refunds.handle_refund_notify)


routers = (mp, admin, money, pay)
