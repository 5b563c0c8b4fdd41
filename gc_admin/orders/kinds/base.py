"""What every order kind is made of: the order body, its lines, and :class:`Kind` (one per order type).

A kind says what is particular to its type — the fields its body takes and their validation, its
lines, which coupons fit it, what happens when such an order is created or paid, what its details
read like on the staff panel — so adding a type is one module in ``orders/kinds/`` (plus its page).
Everything common (pricing, holds, payment, refunds, the state machine) stays where it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlmodel import Session

from gc_admin.core.errors import InvalidInput
from gc_admin.coupons.models import Product
from gc_admin.orders.models import ORDER_TYPES, ServiceOrder
from gc_admin.users.models import MpUser


def refuse_unknown(given: Iterable[Any], known: Iterable[str], *, what: str) -> None:
    """``INVALID_ORDER`` naming the keys of ``given`` that are not ``known`` (``what``: "未知的代驾字段"…)."""
    unknown = set(given) - set(known)
    if unknown:
        raise InvalidInput(f"{what}：{', '.join(sorted(map(str, unknown)))}", code="INVALID_ORDER")


@dataclasses.dataclass(frozen=True)
class OrderDraft:
    """What the user asks for (the API body). ``details``: type-specific fields (top-up: mobile, face_fen)."""

    type: str
    product_code: str | None = None
    quantity: int = 1
    coupon_id: int | None = None
    exchange_coupon_id: int | None = None
    points: int = 0
    use_stored_value: bool = False
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, body: OrderDraft | Mapping[str, Any]) -> OrderDraft:
        if isinstance(body, OrderDraft):
            return body
        refuse_unknown(body, {f.name for f in dataclasses.fields(cls)}, what="未知的下单字段")
        return cls(**dict(body))


@dataclasses.dataclass(frozen=True)
class Line:
    code: str
    name: str
    quantity: int
    unit_fen: int

    @property
    def amount_fen(self) -> int:
        return self.quantity * self.unit_fen

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "quantity": self.quantity, "unit_fen": self.unit_fen,
                "amount_fen": self.amount_fen}


@dataclasses.dataclass(frozen=True)
class Lines:
    """What a kind makes of a draft: its lines, the details stored on the order, the product it sells."""

    lines: tuple[Line, ...]
    details: dict[str, Any]
    product: Product | None = None


def int_field(value: Any, label: str, *, lo: int, hi: int) -> int:
    """A strict integer within ``lo..hi`` from a body (no bools, no floats), else ``INVALID_ORDER``."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidInput(f"{label}需为 {lo}–{hi} 之间的整数", code="INVALID_ORDER")
    return value


def _nothing(*_args: Any, **_kwargs: Any) -> None:
    return None


def _no_details(_details: Mapping[str, Any]) -> str:
    return ""


def _no_extra(_session: Session, *, order: ServiceOrder) -> dict[str, Any]:
    return {}


def city_of(details: Mapping[str, Any]) -> str | None:
    """Where an order is fulfilled, for the kanban's city filter: ``city`` (flower), ``pickup.city``
    (driver) or ``address.city`` (goods); ``None`` when the type has no place."""
    for value in (details.get("city"), (details.get("pickup") or {}).get("city") if isinstance(
            details.get("pickup"), Mapping) else None, (details.get("address") or {}).get("city") if isinstance(
            details.get("address"), Mapping) else None):
        if isinstance(value, str) and value.strip():
            return value.strip()[:16]
    return None


#: What a kind lets staff do unless it says otherwise (see ``orders.service.TRANSITIONS``); ``claim``,
#: ``release`` and ``refund`` are open to every kind.
DEFAULT_ACTIONS = ("accept", "fulfil", "complete", "cancel", "after_sales", "resolve")


@dataclasses.dataclass(frozen=True)
class ActionOutcome:
    """What a kind's :attr:`Kind.on_action` makes of a staff action's fields.

    ``fulfilment``: merged into the order's ``fulfilment`` (what the user sees: shop, ETA, provider
    reference, driver, tracking no.), in the same conditional UPDATE as the move; ``target``: one of the
    transition's ``alt_targets`` instead of its usual target (``set_fee`` with nothing left to pay goes
    straight to completed); ``values``: other columns to set; ``note``: added to the history line."""

    fulfilment: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    target: str | None = None
    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    note: str = ""


def no_fields(_session: Session, *, order: ServiceOrder, action: str, fields: Mapping[str, Any], actor: Any,
              now: Any) -> ActionOutcome | None:
    return None


@dataclasses.dataclass(frozen=True)
class Kind:
    """One order type. ``lines`` is ``None`` for a type the mini-program cannot order yet."""

    type: str
    lines: Callable[[Session, MpUser, OrderDraft], Lines] | None = None
    coupon_fits: tuple[str, ...] = ()  # coupon kinds usable as its platform coupon
    exchange_fits: tuple[str, ...] = ()  # coupon kinds usable as its exchange voucher
    # the order was just created, in its transaction: hold what it sells (stock)
    on_created: Callable[..., None] = _nothing  # (session, *, order, quote, now)
    # the order was just paid (created -> paid won), in the payment's transaction: deliver what it sells
    on_paid: Callable[..., None] = _nothing  # (session, *, order, actor, now)
    # the order was just fully refunded, in the transaction whose conditional UPDATE settled it (once): give
    # back what it held (stock)
    on_refunded: Callable[..., None] = _nothing  # (session, *, order)
    # fields of its own in the order's API view
    view: Callable[..., dict[str, Any]] = _no_extra  # (session, *, order)
    # refunds per unit (e.g. per coupon bought): the allowed amounts for 1, 2, … units, or None (any amount)
    refund_values: Callable[..., list[int] | None] = _nothing  # (session, *, order, now)
    # the staff panel's one-line reading of its details
    details_text: Callable[[Mapping[str, Any]], str] = _no_details
    # the staff actions this type allows (names in orders.service.TRANSITIONS, plus "fail" for a top-up);
    # claim / release / refund are always allowed
    actions: tuple[str, ...] = DEFAULT_ACTIONS
    # action -> the fields its body may carry for this type (any other field is refused: INVALID_FIELD)
    action_fields: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    # a staff action on an order of this type, before the move: validate its fields (raise InvalidInput
    # with a Chinese message) and say what to store (ActionOutcome); runs in the action's transaction
    on_action: Callable[..., ActionOutcome | None] = no_fields  # (session, *, order, action, fields, actor, now)
    # where the order is fulfilled (stored in service_order.city for the kanban's filter)
    city: Callable[[Mapping[str, Any]], str | None] = city_of
    # a paid order of this type that may still be cancelled without a refund (a free driver booking): does the
    # whole cancellation in the caller's transaction, or refuses it; None: only unpaid orders cancel
    cancel_paid: Callable[..., None] | None = None  # (session, *, order, actor, reason, now)

    @property
    def label(self) -> str:
        return ORDER_TYPES[self.type]

    @property
    def orderable(self) -> bool:
        return self.lines is not None

    def make_lines(self, session: Session, user: MpUser, draft: OrderDraft) -> Lines:
        if self.lines is None:
            raise InvalidInput(f"{self.label}暂不支持在小程序下单", code="ORDER_TYPE_UNAVAILABLE")
        return self.lines(session, user, draft)


def not_orderable_yet(type_: str, *, coupon_fits: tuple[str, ...] = (), exchange_fits: tuple[str, ...] = (),
                      actions: tuple[str, ...] = DEFAULT_ACTIONS) -> Kind:
    """A type the state machine and the tables know, whose catalogue does not exist yet."""
    return Kind(type_, coupon_fits=coupon_fits, exchange_fits=exchange_fits, actions=actions)


def text_field(fields: Mapping[str, Any], name: str, label: str, *, max_len: int = 64, required: bool = True) -> str:
    """A staff action's text field, stripped; ``FIELD_REQUIRED`` / ``INVALID_FIELD`` with a Chinese message."""
    value = fields.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(f"请填写{label}", code="FIELD_REQUIRED")
        return ""
    if not isinstance(value, str) or len(value.strip()) > max_len:
        raise InvalidInput(f"{label}需为不超过 {max_len} 个字的文字", code="INVALID_FIELD")
    return value.strip()

