"""Pricing at order time (生成订单判断, SPEC.md §4.6): the list price and what is taken off it, in a fixed order.

Steps, always in this order (each one a ``Step(kind, amount_fen, funded_by)``; a step that takes
nothing is left out):

| # | kind | what | funded_by |
|---|---|---|---|
| 1 | (list price) | the sum of the order's lines: quantity × unit price | — |
| 2 | ``exchange_voucher`` | an exchange voucher (实物兑换券): one unit of its item | voucher's funder (insurer / platform) |
| 3 | ``merchant_discount`` | the merchant's own discount (商家优惠) on the item | merchant |
| 4 | ``coupon`` | one platform coupon / discount voucher (平台优惠 / 抵扣券 / 折扣券) | coupon's funder (insurer / platform) |
| 5 | ``points`` | points (积分), :data:`~gc_admin.payments.balances.FEN_PER_POINT` fen each | platform |
| 6 | ``stored_value`` | the stored-value card (储值卡) balance | user (money paid in earlier) |
| 7 | ``payable_fen`` | what is left, paid by WeChat Pay | user |

Combination rules:
- Every step takes ``min(its own amount, what remains)``: no step exceeds what remains, the payable
  is never below zero, and ``sum(step amounts) + payable == list price`` exactly (all integer fen;
  the only division, percent-off, rounds down — in the user's disfavour by less than one fen).
- At most one platform coupon (``coupon_id``) and one exchange voucher per order.
- Which coupon kinds fit which order type (each kind's ``coupon_fits``, :mod:`gc_admin.orders.kinds`):
  ``service_discount`` for flower, top-up and designated-driver orders; ``goods_discount`` for
  goods; ``goods_exchange`` only as the exchange voucher of a goods order; ``cashback`` (paid out
  after the fact) and ``redemption_code`` (used in a third party's app) never fit an order;
  nothing fits a coupon purchase (coupons do not buy coupons). A coupon must be the user's,
  ``available`` and not past its date.
- Percent-off (``goods_discount`` with ``percent_off``) applies to what remains after steps 2–3,
  rounded down to the fen, and takes at most :data:`PERCENT_OFF_CAP_FEN` (the product has no cap
  field of its own). Fixed-amount coupons take their face value (no change is given).
- Points and stored value are taken only when asked for (``points``, ``use_stored_value``), never
  more than the user holds (asking for more points than held is an error) nor than remains.

:func:`quote` only reads; :func:`price` is the pure arithmetic, property-tested with hypothesis.
Order creation calls :func:`quote` again inside its transaction and stores the breakdown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, col, select

from gc_admin.core.errors import Conflict, InvalidInput
from gc_admin.coupons.wallet import service as coupons
from gc_admin.coupons.models import Product
from gc_admin.orders.kinds import kind_of
from gc_admin.orders.kinds.base import Line, OrderDraft
from gc_admin.orders.models import ORDER_TYPES
from gc_admin.payments.balances import FEN_PER_POINT, balances
from gc_admin.users.models import MpUser

PERCENT_OFF_CAP_FEN = 20_000  # ¥200: the most a percent-off coupon takes off one order
STEP_KINDS = ("exchange_voucher", "merchant_discount", "coupon", "points", "stored_value")
STEP_LABELS = {
    "exchange_voucher": "兑换券",
    "merchant_discount": "商家优惠",
    "coupon": "平台优惠券",
    "points": "积分抵扣",
    "stored_value": "储值卡",
}
FUNDERS = ("merchant", "platform", "insurer", "user")


@dataclasses.dataclass(frozen=True)
class Step:
    kind: str
    amount_fen: int
    funded_by: str
    ref: str | None = None  # e.g. "coupon:12"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "label": STEP_LABELS[self.kind], "amount_fen": self.amount_fen,
                               "funded_by": self.funded_by}
        if self.ref:
            out["ref"] = self.ref
        return out


@dataclasses.dataclass(frozen=True)
class PricingInput:
    """Everything :func:`price` needs, already resolved from the database (all int fen / points)."""

    list_fen: int
    exchange_voucher_fen: int = 0
    exchange_funded_by: str = "platform"
    exchange_ref: str | None = None
    merchant_discount_fen: int = 0
    coupon_face_fen: int = 0
    coupon_percent_off: int | None = None
    coupon_funded_by: str = "platform"
    coupon_ref: str | None = None
    points_requested: int = 0
    points_balance: int = 0
    use_stored_value: bool = False
    stored_value_balance: int = 0


def _fen(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0")
    return value


def price(inp: PricingInput) -> tuple[tuple[Step, ...], int]:
    """The steps (in the fixed order, zero steps left out) and the payable. Pure integer arithmetic."""
    for f in dataclasses.fields(inp):
        value = getattr(inp, f.name)
        if f.name.endswith(("_fen", "_requested", "_balance")):
            _fen(f.name, value)
    if inp.coupon_percent_off is not None and not 1 <= inp.coupon_percent_off <= 99:
        raise ValueError("coupon_percent_off must be 1-99")
    remaining = inp.list_fen
    steps: list[Step] = []

    def take(kind: str, want: int, funded_by: str, ref: str | None = None) -> None:
        nonlocal remaining
        amount = min(max(want, 0), remaining)
        if amount > 0:
            steps.append(Step(kind, amount, funded_by, ref))
            remaining -= amount

    take("exchange_voucher", inp.exchange_voucher_fen, inp.exchange_funded_by, inp.exchange_ref)
    take("merchant_discount", inp.merchant_discount_fen, "merchant")
    if inp.coupon_percent_off is not None:
        take("coupon", min(remaining * inp.coupon_percent_off // 100, PERCENT_OFF_CAP_FEN), inp.coupon_funded_by,
             inp.coupon_ref)
    else:
        take("coupon", inp.coupon_face_fen, inp.coupon_funded_by, inp.coupon_ref)
    points = min(inp.points_requested, inp.points_balance, remaining // FEN_PER_POINT)
    take("points", points * FEN_PER_POINT, "platform", None)
    if inp.use_stored_value:
        take("stored_value", inp.stored_value_balance, "user")
    return tuple(steps), remaining


# --- the priced order -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Quote:
    """A priced order: lines, the list price, the steps and the payable (API.md "Order.pricing")."""

    type: str
    lines: tuple[Line, ...]
    list_fen: int
    steps: tuple[Step, ...]
    payable_fen: int
    details: dict[str, Any]
    product_id: int | None = None
    coupon_id: int | None = None
    exchange_coupon_id: int | None = None

    def step_fen(self, kind: str) -> int:
        return sum(s.amount_fen for s in self.steps if s.kind == kind)

    @property
    def points_used(self) -> int:
        return self.step_fen("points") // FEN_PER_POINT

    @property
    def stored_value_fen(self) -> int:
        return self.step_fen("stored_value")

    def pricing_dict(self) -> dict[str, Any]:
        return {"list_fen": self.list_fen, "steps": [s.to_dict() for s in self.steps], "payable_fen": self.payable_fen}

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "lines": [ln.to_dict() for ln in self.lines], "pricing": self.pricing_dict(),
                "details": self.details}


def _coupon(session: Session, user: MpUser, coupon_id: Any, order_type: str, fits: tuple[str, ...],
            label: str) -> tuple[coupons.CouponView, Product]:
    if isinstance(coupon_id, bool) or not isinstance(coupon_id, int) or coupon_id < 1:
        raise InvalidInput(f"{label}编号不正确", code="INVALID_ORDER")
    view = coupons.get_user_coupon(session, user=user, coupon_id=coupon_id)
    if view.kind not in fits:
        raise Conflict(f"该券不适用于{ORDER_TYPES[order_type]}订单", code="COUPON_NOT_APPLICABLE")
    if view.status != "available":
        raise Conflict({"expired": "该券已过期", "used": "该券已使用", "reserved": "该券正在另一笔订单中使用",
                        "revoked": "该券已退回（随订单退款收回）"}
                       .get(view.status, "该券当前不可使用"), code="COUPON_NOT_AVAILABLE")
    product = session.exec(select(Product).where(col(Product.code) == view.product_code)).one()
    return view, product


def quote(session: Session, *, user: MpUser, body: OrderDraft | Mapping[str, Any]) -> Quote:
    """Price an order body for ``user`` (reads only; see the module docstring for the rules)."""
    d = OrderDraft.of(body)
    if d.type not in ORDER_TYPES:
        raise InvalidInput("未知的订单类型", code="INVALID_ORDER_TYPE")
    kind = kind_of(d.type)
    made = kind.make_lines(session, user, d)
    lines, details, product = made.lines, made.details, made.product
    list_fen = sum(ln.amount_fen for ln in lines)
    inp: dict[str, Any] = {"list_fen": list_fen}
    coupon_id = exchange_id = None
    if d.exchange_coupon_id is not None:
        view, prod = _coupon(session, user, d.exchange_coupon_id, d.type, kind.exchange_fits, "兑换券")
        exchange_id = view.id
        inp.update(exchange_voucher_fen=max(ln.unit_fen for ln in lines), exchange_funded_by=prod.funded_by,
                   exchange_ref=f"coupon:{view.id}")
    if d.coupon_id is not None:
        view, prod = _coupon(session, user, d.coupon_id, d.type, kind.coupon_fits, "优惠券")
        coupon_id = view.id
        inp.update(coupon_face_fen=view.face_fen if view.percent_off is None else 0,
                   coupon_percent_off=view.percent_off, coupon_funded_by=prod.funded_by, coupon_ref=f"coupon:{view.id}")
    points = d.points
    if isinstance(points, bool) or not isinstance(points, int) or points < 0:
        raise InvalidInput("使用积分需为不小于 0 的整数", code="INVALID_ORDER")
    if not isinstance(d.use_stored_value, bool):
        raise InvalidInput("是否使用储值卡需为 true / false", code="INVALID_ORDER")
    held = balances(session, user_id=user.id) if (points or d.use_stored_value) and user.id else (0, 0)
    if points > held[0]:
        raise Conflict(f"积分不足：当前 {held[0]} 分", code="POINTS_INSUFFICIENT")
    inp.update(points_requested=points, points_balance=held[0], use_stored_value=d.use_stored_value,
               stored_value_balance=held[1])
    steps, payable = price(PricingInput(**inp))
    return Quote(type=d.type, lines=lines, list_fen=list_fen, steps=steps, payable_fen=payable, details=details,
                 product_id=None if product is None else product.id, coupon_id=coupon_id,
                 exchange_coupon_id=exchange_id)
