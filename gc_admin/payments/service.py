"""Money: WeChat Pay notifies, refunds, the ledger (流水), points and stored-value balances.

Plain functions, session first, keyword-only after; no commits (the caller's unit of work does).

**Payment notify, applied exactly once** (:func:`handle_payment_notify`): the raw body is verified
and decrypted by the client (signature, ``Wechatpay-Serial``, 5-minute timestamp, AES-GCM), then
checked — mchid/appid present and ours, ``trade_state`` SUCCESS, ``out_trade_no`` a known order,
``amount.total`` equal to its payable. Anything wrong: nothing changes, a ``payment_notify_log``
row says why, and WeChat gets 4xx ``{"code": "FAIL", ...}``. A good notify inserts the ``payment``
row with ``ON CONFLICT DO NOTHING`` on its unique ``out_trade_no`` / ``transaction_id`` /
``order_id``: the one transaction that inserts it writes the ledger entry and moves the order
``created -> paid`` with a conditional UPDATE (coupons issued, staff notice queued); every replay —
sequential or concurrent (a twin blocks on the unique index until the first commits) — inserts
nothing and changes nothing. Money that arrives for an order that is no longer ``created``
(cancelled meanwhile) is still recorded (payment + ledger: it *was* received) but does not revive
the order: the order goes ``cancelled -> after_sales`` marked ``paid_after_cancel`` for a refund.

**Refunds** (:func:`refund_order` then :func:`send_refund`): the refund is recorded first — a
conditional ``UPDATE service_order SET refunded_fen = refunded_fen + :a WHERE refunded_fen + :a <=
paid_fen`` (never more than paid, whatever runs in parallel) and a ``refund`` row with a fixed
``out_refund_no`` inserted ``ON CONFLICT DO NOTHING`` against the partial unique index "one refund
in flight per order" — so concurrent refund requests for one order refund once. Only then is
WeChat asked; a retry (:func:`send_refund` again, the job :func:`retry_pending_refunds`) reuses
the same ``out_refund_no`` and WeChat de-duplicates. The result (sync answer, refund notify or
:func:`sync_refund`) is applied once by a conditional UPDATE on the refund's status: success
writes the (negative) ledger entry, revokes the bought coupons it covered and, when the order is
fully refunded, returns the coupon used on it (if still valid), its points and stored value;
failure undoes the reservation. Refund roles (admin API): admin, manager, service, clerk.

For a coupon purchase whose coupons were delivered, refunds go per coupon: ``amount_fen`` must be
the value of k unused coupons (the paid amount split evenly, remainders spread so the parts sum
to the paid amount); those k coupons are taken back. Revealed (used) codes are not refundable.

**Balances**: points and stored value live in ``user_balance`` (CHECK >= 0); :func:`move_points` /
:func:`move_stored_value` change it with ``UPDATE ... WHERE points + :delta >= 0 RETURNING`` and
append the entry (``ref`` unique: the same ref twice is a no-op, also when the twin runs concurrently —
:func:`gc_admin.db.first_wins`) plus a ledger row, so concurrent spends cannot overdraw and the balance is
always the sum of its entries.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import polars as pl
from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from gc_admin.audit.service import SYSTEM, Actor, record
from gc_admin.core.clock import SHANGHAI, UTC, fmt_local, iso, utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound, UpstreamError
from gc_admin.core.exports import EXPORT_LIMIT, xlsx_bytes
from gc_admin.core.money import format_fen
from gc_admin.core.sorting import order_by
from gc_admin.coupons.purchase import service as purchase
from gc_admin.core.bulk import dialect
from gc_admin.db import first_wins
from gc_admin.integrations.wechatpay.client import WxPayError, WxPayNotifyError
from gc_admin.orders import service as orders
from gc_admin.orders.models import ORDER_STATUSES, ServiceOrder
from gc_admin.payments.models import (
    LEDGER_KINDS,
    REFUND_STATUSES,
    LedgerEntry,
    Payment,
    PaymentNotifyLog,
    PointsEntry,
    Refund,
    StoredValueEntry,
    UserBalance,
)

log = logging.getLogger(__name__)

PROVIDER = "wechatpay"
# WeChat Pay error answers that settle a refund as refused (anything else: keep it pending and retry)
DEFINITIVE_REFUSAL_STATUSES = (400, 403, 404)


def _insert(session: Session):
    return postgresql.insert if dialect(session) == "postgresql" else sqlite.insert


def _client():
    from gc_admin.integrations.wechatpay.setup import get_client

    return get_client()


# --- balances: points and stored value ----------------------------------------------------------

def balances(session: Session, *, user_id: int | None) -> tuple[int, int]:
    """``(points, stored_value_fen)`` of a user (0, 0 if they never had any)."""
    if user_id is None:
        return 0, 0
    row = session.exec(select(UserBalance.points, UserBalance.stored_value_fen)
                       .where(col(UserBalance.user_id) == user_id)).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _move(session: Session, *, which: str, user_id: int, delta: int, reason: str, ref: str,
          order_id: int | None, now: dt.datetime | None) -> PointsEntry | StoredValueEntry:
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise InvalidInput("变动数额需为非零整数", code="INVALID_AMOUNT")
    ref = (ref or "").strip()
    if not ref or len(ref) > 64:
        raise InvalidInput("流水业务单号不能为空，且不超过 64 个字符", code="INVALID_REF")
    now = now or utcnow()
    entry_cls = PointsEntry if which == "points" else StoredValueEntry

    def replay() -> PointsEntry | StoredValueEntry | None:
        existing = session.exec(select(entry_cls).where(col(entry_cls.ref) == ref)).first()
        if existing is not None:
            same = existing.user_id == user_id and (
                existing.delta if isinstance(existing, PointsEntry) else existing.delta_fen) == delta
            if not same:
                raise Conflict("该业务单号已用于另一笔变动", code="REF_REUSED")
        return existing  # the same movement again: nothing twice

    if (existing := replay()) is not None:
        return existing
    return first_wins(session, lambda: _apply_move(session, which=which, user_id=user_id, delta=delta, reason=reason,
                                                   ref=ref, order_id=order_id, now=now), replay=replay)


def _apply_move(session: Session, *, which: str, user_id: int, delta: int, reason: str, ref: str,
                order_id: int | None, now: dt.datetime) -> PointsEntry | StoredValueEntry:
    session.execute(_insert(session)(UserBalance).values(user_id=user_id, points=0, stored_value_fen=0, updated_at=now)
                    .on_conflict_do_nothing())
    column = UserBalance.points if which == "points" else UserBalance.stored_value_fen
    after = session.execute(
        update(UserBalance).where(col(UserBalance.user_id) == user_id, col(column) + delta >= 0)
        .values({column: col(column) + delta, "updated_at": now}).returning(column)
        .execution_options(synchronize_session=False)).scalar_one_or_none()
    if after is None:
        have = balances(session, user_id=user_id)[0 if which == "points" else 1]
        if which == "points":
            raise Conflict(f"积分不足：当前 {have} 分", code="POINTS_INSUFFICIENT")
        raise Conflict(f"储值卡余额不足：当前 {format_fen(have)}", code="STORED_VALUE_INSUFFICIENT")
    if which == "points":
        entry: PointsEntry | StoredValueEntry = PointsEntry(user_id=user_id, delta=delta, balance_after=int(after),
                                                            reason=reason[:100], ref=ref, created_at=now)
        from gc_admin.orders.pricing import FEN_PER_POINT

        fen = delta * FEN_PER_POINT
    else:
        entry = StoredValueEntry(user_id=user_id, delta_fen=delta, balance_after_fen=int(after), reason=reason[:100],
                                 ref=ref, created_at=now)
        fen = delta
    session.add(entry)
    session.flush()  # a concurrent twin that committed the same ref first fails here (unique): see first_wins
    add_ledger(session, kind=which, amount_fen=fen, ref=f"{which}:{ref}", order_id=order_id, user_id=user_id,
               provider=which, provider_ref=None, occurred_at=now, note=reason)
    return entry


def move_points(session: Session, *, user_id: int, delta: int, reason: str, ref: str, order_id: int | None = None,
                now: dt.datetime | None = None) -> PointsEntry:
    """Credit (``delta > 0``) or spend (``< 0``) points; never below zero; idempotent by ``ref``."""
    entry = _move(session, which="points", user_id=user_id, delta=delta, reason=reason, ref=ref, order_id=order_id,
                  now=now)
    assert isinstance(entry, PointsEntry)
    return entry


def move_stored_value(session: Session, *, user_id: int, delta_fen: int, reason: str, ref: str,
                      order_id: int | None = None, now: dt.datetime | None = None) -> StoredValueEntry:
    """Load (``delta_fen > 0``) or spend (``< 0``) stored value; never below zero; idempotent by ``ref``."""
    entry = _move(session, which="stored_value", user_id=user_id, delta=delta_fen, reason=reason, ref=ref,
                  order_id=order_id, now=now)
    assert isinstance(entry, StoredValueEntry)
    return entry


def grant_points(session: Session, *, actor: Actor, user_id: int, points: int, reason: str, ref: str) -> PointsEntry:
    """Staff/partner credit of points (audited)."""
    entry = move_points(session, user_id=user_id, delta=points, reason=reason, ref=ref)
    record(session, actor=actor, action="points.granted", target_type="mp_user", target_id=user_id,
           summary=f"发放积分 {points}（{reason}）", after={"points": points, "ref": ref})
    return entry


def load_stored_value(session: Session, *, actor: Actor, user_id: int, amount_fen: int, reason: str,
                      ref: str) -> StoredValueEntry:
    """Staff load of a stored-value card (audited)."""
    entry = move_stored_value(session, user_id=user_id, delta_fen=amount_fen, reason=reason, ref=ref)
    record(session, actor=actor, action="stored_value.loaded", target_type="mp_user", target_id=user_id,
           summary=f"储值卡充值 {format_fen(amount_fen)}（{reason}）", after={"amount_fen": amount_fen, "ref": ref})
    return entry


# --- the ledger ---------------------------------------------------------------------------------------

def add_ledger(session: Session, *, kind: str, amount_fen: int, ref: str, provider: str,
               provider_ref: str | None = None, order_id: int | None = None, user_id: int | None = None,
               occurred_at: dt.datetime | None = None, note: str = "") -> int | None:
    """Append one ledger entry unless ``ref`` is already there; returns its id (``None`` if it was)."""
    if kind not in LEDGER_KINDS:
        raise ValueError(f"unknown ledger kind {kind!r}")
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
        raise TypeError("amount_fen must be int")
    now = utcnow()
    stmt = _insert(session)(LedgerEntry).values(
        kind=kind, amount_fen=amount_fen, ref=ref[:80], provider=provider, provider_ref=provider_ref,
        order_id=order_id, user_id=user_id, occurred_at=occurred_at or now, created_at=now, note=note[:200],
    ).on_conflict_do_nothing().returning(LedgerEntry.id)
    return session.execute(stmt).scalar_one_or_none()


@dataclasses.dataclass(frozen=True)
class LedgerFilter:
    """Ledger filters; ``date_from`` / ``date_to`` are Asia/Shanghai days, both included."""

    kind: str | None = None
    provider: str | None = None
    order_no: str | None = None
    user_id: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None


@dataclasses.dataclass(frozen=True)
class LedgerRow:
    id: int
    kind: str
    amount_fen: int
    order_id: int | None
    order_no: str | None
    user_id: int | None
    provider: str
    provider_ref: str | None
    ref: str
    note: str
    occurred_at: dt.datetime
    created_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(occurred_at=iso(self.occurred_at), created_at=iso(self.created_at), kind_label=LEDGER_KINDS[self.kind])
        return d


@dataclasses.dataclass(frozen=True)
class LedgerPage:
    rows: list[LedgerRow]
    total: int
    net_fen: int  # sum of amount_fen over every row matching the filters (not just this page)


def day_start(day: dt.date) -> dt.datetime:
    """00:00 Asia/Shanghai of ``day``, as UTC."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).astimezone(UTC)


def _ledger_query(filters: LedgerFilter | None):
    f = filters or LedgerFilter()
    q = (select(LedgerEntry, ServiceOrder.order_no)
         .outerjoin(ServiceOrder, col(ServiceOrder.id) == col(LedgerEntry.order_id)))
    if f.kind:
        if f.kind not in LEDGER_KINDS:
            raise InvalidInput("未知的流水类型", code="INVALID_KIND")
        q = q.where(col(LedgerEntry.kind) == f.kind)
    if f.provider:
        q = q.where(col(LedgerEntry.provider) == f.provider)
    if f.order_no:
        q = q.where(col(ServiceOrder.order_no) == f.order_no.strip().upper())
    if f.user_id is not None:
        q = q.where(col(LedgerEntry.user_id) == f.user_id)
    if f.date_from:
        q = q.where(col(LedgerEntry.occurred_at) >= day_start(f.date_from))
    if f.date_to:
        q = q.where(col(LedgerEntry.occurred_at) < day_start(f.date_to + dt.timedelta(days=1)))
    return q


def _row(e: LedgerEntry, order_no: str | None) -> LedgerRow:
    return LedgerRow(e.id or 0, e.kind, e.amount_fen, e.order_id, order_no, e.user_id, e.provider, e.provider_ref,
                     e.ref, e.note, e.occurred_at, e.created_at)


LEDGER_SORT_KEYS: dict[str, Any] = {
    "occurred_at": col(LedgerEntry.occurred_at), "kind": col(LedgerEntry.kind), "amount_fen": col(LedgerEntry.amount_fen),
    "order_no": col(ServiceOrder.order_no), "provider": col(LedgerEntry.provider),
}


def list_ledger(session: Session, *, filters: LedgerFilter | None = None, sort: str | None = None, offset: int = 0,
                limit: int = 50) -> LedgerPage:
    """A page of the ledger, newest first (or by ``sort``: :data:`LEDGER_SORT_KEYS`), with the total count and
    the net amount of all matches."""
    q = _ledger_query(filters)
    sub = q.subquery()
    total, net = session.execute(select(func.count(), func.coalesce(func.sum(sub.c.amount_fen), 0))).one()
    order = order_by(sort, LEDGER_SORT_KEYS, tie=col(LedgerEntry.id),
                     default=[col(LedgerEntry.occurred_at).desc(), col(LedgerEntry.id).desc()])
    rows = session.exec(q.order_by(*order).offset(max(offset, 0)).limit(min(max(limit, 1), 200))).all()
    return LedgerPage([_row(e, no) for e, no in rows], int(total), int(net))


def ledger_frame(session: Session, *, filters: LedgerFilter | None = None, sort: str | None = None) -> pl.DataFrame:
    """The matching ledger rows as a frame (oldest first, or by ``sort`` as the list shows them), for exports."""
    order = order_by(sort, LEDGER_SORT_KEYS, tie=col(LedgerEntry.id),
                     default=[col(LedgerEntry.occurred_at), col(LedgerEntry.id)])
    q = _ledger_query(filters).order_by(*order).limit(EXPORT_LIMIT)
    rows = [_row(e, no) for e, no in session.exec(q).all()]
    return pl.DataFrame({
        "流水ID": [r.id for r in rows],
        "发生时间": [fmt_local(r.occurred_at, seconds=True) for r in rows],
        "类型": [LEDGER_KINDS[r.kind] for r in rows],
        "金额（分）": pl.Series([r.amount_fen for r in rows], dtype=pl.Int64),
        "金额": [format_fen(r.amount_fen) for r in rows],
        "订单号": [r.order_no or "" for r in rows],
        "渠道": [r.provider for r in rows],
        "渠道流水号": [r.provider_ref or "" for r in rows],
        "业务单号": [r.ref for r in rows],
        "备注": [r.note for r in rows],
    }, schema_overrides={"流水ID": pl.Int64})


def ledger_xlsx(session: Session, *, filters: LedgerFilter | None = None, sort: str | None = None) -> bytes:
    """The matching ledger as an Excel workbook (amounts as integer fen plus ``¥`` text; no floats)."""
    return xlsx_bytes(ledger_frame(session, filters=filters, sort=sort), sheet="流水")


# --- payments ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class NotifyResult:
    """What to answer WeChat Pay: 204 (received) or a 4xx with ``{"code": "FAIL", "message"}``."""

    status_code: int
    outcome: str  # applied | replay | anomaly | ignored | rejected
    message: str = ""
    order_id: int | None = None

    @property
    def body(self) -> dict[str, str] | None:
        return None if self.status_code == 204 else {"code": "FAIL", "message": self.message or "failed"}


class _Rejected(Exception):
    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


def _parse_time(value: Any, default: dt.datetime) -> dt.datetime:
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
        except ValueError:
            pass
    return default


def _check_merchant(resource: Mapping[str, Any]) -> None:
    client = _client()
    if resource.get("mchid") != client.mchid:
        raise _Rejected("mchid missing or not ours")
    if "appid" in resource and resource.get("appid") != client.appid:
        raise _Rejected("appid not ours")


def _log(session: Session, *, kind: str, outcome: str, reason: str, body: bytes, now: dt.datetime,
         event: Mapping[str, Any] | None = None, resource: Mapping[str, Any] | None = None) -> None:
    r = resource or {}
    amount = (r.get("amount") or {}) if isinstance(r.get("amount"), dict) else {}
    fen = amount.get("refund" if kind == "refund" else "total")
    session.add(PaymentNotifyLog(
        received_at=now, kind=kind, outcome=outcome, reason=reason[:200],
        event_id=str((event or {}).get("id") or "")[:64] or None,
        event_type=str((event or {}).get("event_type") or "")[:32] or None,
        out_trade_no=str(r.get("out_trade_no") or "")[:32] or None,
        out_refund_no=str(r.get("out_refund_no") or "")[:64] or None,
        transaction_id=str(r.get("transaction_id") or "")[:64] or None,
        amount_fen=fen if isinstance(fen, int) and not isinstance(fen, bool) else None,
        body_sha256=hashlib.sha256(body).hexdigest(),
    ))
    session.flush()
    level = logging.WARNING if outcome in ("rejected", "anomaly") else logging.INFO
    log.log(level, "wxpay %s notify %s: %s (out_trade_no=%s)", kind, outcome, reason or "-", r.get("out_trade_no"))


def apply_transaction(session: Session, *, resource: Mapping[str, Any], source: str,
                      now: dt.datetime | None = None) -> tuple[str, str, int | None]:
    """Apply a WeChat Pay transaction object (notify resource or query answer): ``(outcome, reason,
    order id)``. Raises ``_Rejected`` before changing anything if it does not fit an order."""
    now = now or utcnow()
    _check_merchant(resource)
    out_trade_no, transaction_id = resource.get("out_trade_no"), resource.get("transaction_id")
    if resource.get("trade_state") != "SUCCESS":
        return "ignored", f"trade_state {resource.get('trade_state')}", None
    total = (resource.get("amount") or {}).get("total") if isinstance(resource.get("amount"), dict) else None
    if not (isinstance(out_trade_no, str) and out_trade_no and isinstance(transaction_id, str) and transaction_id):
        raise _Rejected("out_trade_no / transaction_id missing")
    if isinstance(total, bool) or not isinstance(total, int):
        raise _Rejected("amount.total is not an integer")
    order = session.exec(select(ServiceOrder).where(col(ServiceOrder.order_no) == out_trade_no)).first()
    if order is None:
        raise _Rejected(f"unknown out_trade_no {out_trade_no}", 404)
    assert order.id is not None
    if total != order.payable_fen:
        raise _Rejected(f"amount.total {total} != payable {order.payable_fen} of {out_trade_no}")
    success_time = _parse_time(resource.get("success_time"), now)
    payer = resource.get("payer") if isinstance(resource.get("payer"), dict) else {}
    payment_id = session.execute(_insert(session)(Payment).values(
        order_id=order.id, provider=PROVIDER, out_trade_no=out_trade_no, transaction_id=transaction_id[:64],
        amount_fen=total, payer_openid=str(payer.get("openid") or "")[:64] or None, success_time=success_time,
        source=source, created_at=now,
    ).on_conflict_do_nothing().returning(Payment.id)).scalar_one_or_none()
    if payment_id is None:
        return "replay", "payment already recorded", order.id
    add_ledger(session, kind="payment", amount_fen=total, ref=f"pay:{out_trade_no}", provider=PROVIDER,
               provider_ref=transaction_id, order_id=order.id, user_id=order.user_id, occurred_at=success_time,
               note=f"订单 {out_trade_no} 微信支付")
    if orders.mark_paid(session, order_id=order.id, amount_fen=total, paid_at=success_time, now=now):
        return "applied", "", order.id
    # money arrived for an order that is no longer waiting for it: keep the money on record, do not revive it
    status = session.exec(select(ServiceOrder.status).where(col(ServiceOrder.id) == order.id)).one()
    session.execute(update(ServiceOrder).where(col(ServiceOrder.id) == order.id, col(ServiceOrder.paid_fen) == 0)
                    .values(paid_fen=total, paid_at=success_time, anomaly=f"paid_after_{status}"[:64], updated_at=now)
                    .execution_options(synchronize_session=False))
    reason = f"订单{ORDER_STATUSES[status]}后收到微信支付 {format_fen(total)}，需退款"
    if status == "cancelled":
        orders.transition(session, order_id=order.id, action="paid_after_cancel", actor=SYSTEM, reason=reason, now=now)
    record(session, actor=orders.PAYING_ACTOR, action="payment.anomaly", target_type="service_order",
           target_id=order.id, summary=f"订单 {out_trade_no}：{reason}",
           after={"status": status, "amount_fen": total, "transaction_id": transaction_id})
    return "anomaly", f"order was {status}", order.id


def handle_payment_notify(session: Session, *, headers: Mapping[str, str], body: bytes,
                          now: dt.datetime | None = None) -> NotifyResult:
    """``POST /pay/wechat/notify``: verify, check, apply once, log the attempt (see the module docstring)."""
    now = now or utcnow()
    try:
        event = _client().parse_notify(headers, body, now=now)
    except WxPayNotifyError as exc:
        _log(session, kind="payment", outcome="rejected", reason=f"verification: {exc}", body=body, now=now)
        return NotifyResult(401, "rejected", "签名或时间戳校验失败")
    resource = event["resource"]
    if event["event_type"] != "TRANSACTION.SUCCESS":
        _log(session, kind="payment", outcome="ignored", reason=f"event_type {event['event_type']}", body=body, now=now,
             event=event, resource=resource)
        return NotifyResult(204, "ignored")
    try:
        outcome, reason, order_id = apply_transaction(session, resource=resource, source="notify", now=now)
    except _Rejected as rej:
        _log(session, kind="payment", outcome="rejected", reason=rej.reason, body=body, now=now, event=event,
             resource=resource)
        return NotifyResult(rej.status, "rejected", {404: "订单不存在"}.get(rej.status, "通知内容与订单不符"))
    _log(session, kind="payment", outcome=outcome, reason=reason, body=body, now=now, event=event, resource=resource)
    return NotifyResult(204, outcome, "", order_id)


def sync_payment(session: Session, *, order_id: int, now: dt.datetime | None = None) -> str:
    """Ask WeChat Pay about an order and apply a payment it reports (the notify may be late or lost).
    Returns the outcome (``applied``, ``replay``, ``anomaly``, ``ignored``, ``error``)."""
    order = orders.get_order(session, order_id=order_id)
    try:
        data = _client().query_order(order.order_no)
    except WxPayError as exc:
        log.warning("order %s: query at WeChat Pay failed: %s", order.order_no, exc.code)
        return "error"
    try:
        outcome, _, _ = apply_transaction(session, resource=data, source="query", now=now)
    except _Rejected as rej:
        log.error("order %s: WeChat Pay reports a transaction that does not fit: %s", order.order_no, rej.reason)
        return "error"
    return outcome


def order_payment(session: Session, *, order_id: int) -> dict[str, Any] | None:
    p = session.exec(select(Payment).where(col(Payment.order_id) == order_id)).first()
    if p is None:
        return None
    return {"provider": p.provider, "transaction_id": p.transaction_id, "amount_fen": p.amount_fen,
            "success_time": iso(p.success_time), "source": p.source}


# --- refunds -----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RefundView:
    id: int
    order_id: int
    out_refund_no: str
    refund_id: str | None
    amount_fen: int
    coupons: int
    full: bool
    reason: str
    status: str
    error: str | None
    actor_name: str
    created_at: dt.datetime
    succeeded_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(created_at=iso(self.created_at), succeeded_at=iso(self.succeeded_at),
                 status_label=REFUND_STATUSES[self.status])
        return d


def _view(r: Refund) -> RefundView:
    return RefundView(r.id or 0, r.order_id, r.out_refund_no, r.refund_id, r.amount_fen, r.coupons, r.full, r.reason,
                      r.status, r.error, r.actor_name, r.created_at, r.succeeded_at)


def order_refunds(session: Session, *, order_id: int) -> list[RefundView]:
    return [_view(r) for r in session.exec(select(Refund).where(col(Refund.order_id) == order_id)
                                           .order_by(col(Refund.id))).all()]


def get_refund(session: Session, *, refund_id: int) -> Refund:
    r = session.get(Refund, refund_id, populate_existing=True)
    if r is None:
        raise NotFound("退款不存在", code="REFUND_NOT_FOUND")
    return r


def coupon_refund_values(session: Session, *, order: ServiceOrder, now: dt.datetime | None = None) -> list[int] | None:
    """For a coupon purchase with delivered coupons: the refundable amounts for 1, 2, … of its unused
    coupons (``None`` when refunds are not per coupon)."""
    if order.type != "coupon_purchase" or order.id is None:
        return None
    counts = purchase.item_counts(session, order_id=order.id)
    n = counts.get("issued", 0) + counts.get("revoking", 0) + counts.get("revoked", 0)
    if n == 0:
        return None
    taken = counts.get("revoking", 0) + counts.get("revoked", 0)
    paid = order.paid_fen
    base = paid * taken // n
    revocable = purchase.revocable_count(session, order_id=order.id, now=now)
    return [paid * (taken + k) // n - base for k in range(1, revocable + 1)]


def refundable_fen(session: Session, *, order: ServiceOrder, now: dt.datetime | None = None) -> int:
    """The most one refund of ``order`` may be now — the figure every view shows as 可退 (staff API
    ``refundable_fen``, 订单看板 detail and refund dialog default): paid − refunded (refunds in flight
    included), and for a coupon purchase with delivered coupons only the value of its coupons still
    unused (:func:`coupon_refund_values`); 0 when the order's status allows no refund."""
    if order.status not in orders.REFUNDABLE or order.paid_fen <= 0:
        return 0
    left = max(order.paid_fen - order.refunded_fen, 0)
    values = coupon_refund_values(session, order=order, now=now)
    if values is None:
        return left
    return min(values[-1], left) if values else 0


def check_refund(session: Session, *, order: ServiceOrder, amount_fen: int, now: dt.datetime | None = None) -> int:
    """Would :func:`refund_order` accept ``amount_fen`` for ``order`` now? Returns how many bought coupons
    it takes back (0 when refunds are not per coupon); raises the same errors refund_order raises, so
    the dashboard's form and the API say the same thing (``ORDER_STATE_INVALID``, ``NOTHING_TO_REFUND``,
    ``REFUND_EXCEEDS_PAID``, ``COUPONS_USED``, ``REFUND_PER_COUPON``)."""
    if order.status not in orders.REFUNDABLE:
        raise Conflict(f"订单当前状态为“{ORDER_STATUSES[order.status]}”，不能退款", code="ORDER_STATE_INVALID")
    if order.paid_fen <= 0:
        raise Conflict("该订单没有可退的微信支付金额", code="NOTHING_TO_REFUND")
    if amount_fen > order.paid_fen - order.refunded_fen:
        raise Conflict(f"退款金额超过可退金额 {format_fen(refundable_fen(session, order=order, now=now))}",
                       code="REFUND_EXCEEDS_PAID")
    values = coupon_refund_values(session, order=order, now=now)
    if values is None:
        return 0
    if not values:
        raise Conflict("该订单购买的券已全部使用或已退，不能再退款", code="COUPONS_USED")
    if amount_fen not in values:
        shown = "、".join(f"{k} 张 {format_fen(v)}" for k, v in enumerate(values, 1))
        raise InvalidInput(f"购券订单按张退款（已使用的券不可退），可退：{shown}", code="REFUND_PER_COUPON")
    return values.index(amount_fen) + 1


def refund_order(session: Session, *, order_id: int, amount_fen: int, reason: str, actor: Actor,
                 now: dt.datetime | None = None) -> Refund:
    """Record a staff refund (full or partial) of an order's WeChat payment; :func:`send_refund` then
    asks WeChat. Never more than paid − refunded; one refund in flight per order (see module docstring)."""
    now = now or utcnow()
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
        raise InvalidInput("退款金额需为大于 0 的整数（分）", code="INVALID_AMOUNT")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("请填写退款原因", code="REASON_REQUIRED")
    if len(reason) > 200:
        raise InvalidInput("退款原因不超过 200 个字", code="REASON_TOO_LONG")
    order = orders.get_order(session, order_id=order_id)
    assert order.id is not None
    coupons_back = check_refund(session, order=order, amount_fen=amount_fen, now=now)
    won = session.execute(
        update(ServiceOrder).where(col(ServiceOrder.id) == order.id, col(ServiceOrder.status).in_(orders.REFUNDABLE),
                                   col(ServiceOrder.refunded_fen) + amount_fen <= col(ServiceOrder.paid_fen))
        .values(refunded_fen=col(ServiceOrder.refunded_fen) + amount_fen, updated_at=now)
        .returning(ServiceOrder.refunded_fen, ServiceOrder.paid_fen)
        .execution_options(synchronize_session=False)).first()
    if won is None:
        raise Conflict("退款金额超过可退金额或订单状态已变化，请刷新后重试", code="REFUND_EXCEEDS_PAID")
    full = int(won[0]) == int(won[1])
    seq = session.exec(select(func.count()).select_from(Refund).where(col(Refund.order_id) == order.id)).one() + 1
    out_refund_no = f"RF{order.order_no[2:]}{seq:02d}"
    refund_id = session.execute(_insert(session)(Refund).values(
        order_id=order.id, out_refund_no=out_refund_no, amount_fen=amount_fen, coupons=coupons_back, full=full,
        reason=reason, status="pending", actor_type=actor.type, actor_id=None if actor.id is None else str(actor.id),
        actor_name=actor.name[:64], attempts=0, created_at=now, updated_at=now,
    ).on_conflict_do_nothing().returning(Refund.id)).scalar_one_or_none()
    if refund_id is None:
        raise Conflict("该订单有一笔退款正在处理中，请稍后再试", code="REFUND_IN_PROGRESS")
    ref = f"refund:{out_refund_no}"
    if coupons_back:
        purchase.hold_for_refund(session, order_id=order.id, count=coupons_back, ref=ref, now=now)
    text_ = f"退款 {format_fen(amount_fen)}" + (f"（收回 {coupons_back} 张券）" if coupons_back else "") + f"：{reason}"
    if full:
        orders.transition(session, order_id=order.id, action="request_refund", actor=actor, reason=text_, now=now)
    else:
        orders.add_event(session, order_id=order.id, action="refund_partial", actor=actor, reason=text_, now=now)
    record(session, actor=actor, action="refund.requested", target_type="service_order", target_id=order.id,
           summary=f"订单 {order.order_no} 申请{'全额' if full else '部分'}{text_}",
           after={"out_refund_no": out_refund_no, "amount_fen": amount_fen, "coupons": coupons_back, "full": full})
    return get_refund(session, refund_id=refund_id)


def send_refund(session: Session, *, refund_id: int, now: dt.datetime | None = None) -> Refund:
    """Ask WeChat Pay for a recorded refund (first time or retry, same ``out_refund_no``) and apply
    the answer. A definitive refusal fails the refund and raises ``UpstreamError`` keeping that
    outcome; a transport / server error leaves it pending for a retry."""
    now = now or utcnow()
    refund = get_refund(session, refund_id=refund_id)
    if refund.status == "processing":  # WeChat has it already: ask for its state instead
        return sync_refund(session, refund_id=refund_id, now=now)
    if refund.status != "pending":
        return refund
    order = orders.get_order(session, order_id=refund.order_id)
    session.execute(update(Refund).where(col(Refund.id) == refund_id)
                    .values(attempts=col(Refund.attempts) + 1, updated_at=now)
                    .execution_options(synchronize_session=False))
    try:
        data = _client().refund(out_refund_no=refund.out_refund_no, out_trade_no=order.order_no,
                                refund_fen=refund.amount_fen, total_fen=order.paid_fen, reason=refund.reason[:80])
    except WxPayError as exc:
        if exc.status in DEFINITIVE_REFUSAL_STATUSES:
            _refund_failed(session, refund_id=refund_id, provider_status=exc.code[:16],
                           error=f"{exc.code}: {exc.wx_message}"[:200], now=now)
            raise UpstreamError(f"微信支付拒绝了退款（{exc.code}），退款未执行，已退回可退金额",
                                code="REFUND_REFUSED", keep_changes=True) from exc
        session.execute(update(Refund).where(col(Refund.id) == refund_id)
                        .values(error=f"{exc.code}: {exc}"[:200]).execution_options(synchronize_session=False))
        log.warning("refund %s: WeChat Pay unreachable (%s); left pending for a retry", refund.out_refund_no, exc.code)
        return get_refund(session, refund_id=refund_id)
    _apply_refund_state(session, refund_id=refund_id, data=data, now=now)
    return get_refund(session, refund_id=refund_id)


def _apply_refund_state(session: Session, *, refund_id: int, data: Mapping[str, Any], now: dt.datetime) -> str:
    status = str(data.get("status") or data.get("refund_status") or "")
    wx_refund_id = str(data.get("refund_id") or "")[:64] or None
    if status == "SUCCESS":
        done = _refund_succeeded(session, refund_id=refund_id, wx_refund_id=wx_refund_id,
                                 success_time=_parse_time(data.get("success_time"), now), now=now)
        return "applied" if done else "replay"
    if status in ("ABNORMAL", "CLOSED"):
        done = _refund_failed(session, refund_id=refund_id, provider_status=status, error=f"退款{status}", now=now,
                              wx_refund_id=wx_refund_id)
        return "applied" if done else "replay"
    session.execute(update(Refund).where(col(Refund.id) == refund_id, col(Refund.status) == "pending")
                    .values(status="processing", provider_status=status[:16] or None, updated_at=now,
                            refund_id=func.coalesce(wx_refund_id, col(Refund.refund_id))).execution_options(synchronize_session=False))
    return "applied"


def _refund_succeeded(session: Session, *, refund_id: int, wx_refund_id: str | None, success_time: dt.datetime,
                      now: dt.datetime) -> bool:
    won = session.execute(
        update(Refund).where(col(Refund.id) == refund_id, col(Refund.status).in_(("pending", "processing")))
        .values(status="succeeded", provider_status="SUCCESS", succeeded_at=success_time, error=None, updated_at=now,
                refund_id=func.coalesce(wx_refund_id, col(Refund.refund_id)))
        .execution_options(synchronize_session=False)).rowcount
    if won != 1:
        return False
    refund = get_refund(session, refund_id=refund_id)
    order = orders.get_order(session, order_id=refund.order_id)
    assert order.id is not None
    ref = f"refund:{refund.out_refund_no}"
    add_ledger(session, kind="refund", amount_fen=-refund.amount_fen, ref=ref, provider=PROVIDER,
               provider_ref=wx_refund_id, order_id=order.id, user_id=order.user_id, occurred_at=success_time,
               note=f"订单 {order.order_no} 退款：{refund.reason}")
    revoked = purchase.revoke_held(session, order_id=order.id, ref=ref, now=now)
    returned: list[int] = []
    if refund.full:
        orders.transition(session, order_id=order.id, action="refunded", actor=SYSTEM,
                          reason=f"已退款 {format_fen(order.refunded_fen)}", now=now)
        order_ref = f"order:{order.id}"
        for cid in (order.coupon_id, (order.details or {}).get("exchange_coupon_id")):
            if cid and purchase.return_used_coupon(session, coupon_id=int(cid), ref=order_ref, now=now):
                returned.append(int(cid))
        orders.give_back_balances(session, order_id=order.id, user_id=order.user_id, order_no=order.order_no,
                                  points=order.points_used, stored_value_fen=order.stored_value_fen, now=now)
    else:
        orders.add_event(session, order_id=order.id, action="refund_succeeded", actor=SYSTEM,
                         reason=f"部分退款 {format_fen(refund.amount_fen)} 已到账", now=now)
    record(session, actor=orders.PAYING_ACTOR, action="refund.succeeded", target_type="service_order",
           target_id=order.id,
           summary=f"订单 {order.order_no} 退款 {format_fen(refund.amount_fen)} 成功"
                   + (f"，收回 {len(revoked)} 张券" if revoked else "")
                   + (f"，退回 {len(returned)} 张已用优惠券" if returned else ""),
           after={"out_refund_no": refund.out_refund_no, "refund_id": wx_refund_id, "revoked_coupons": revoked,
                  "returned_coupons": returned})
    return True


def _refund_failed(session: Session, *, refund_id: int, provider_status: str, error: str, now: dt.datetime,
                   wx_refund_id: str | None = None) -> bool:
    won = session.execute(
        update(Refund).where(col(Refund.id) == refund_id, col(Refund.status).in_(("pending", "processing")))
        .values(status="failed", provider_status=provider_status or None, error=error, updated_at=now,
                refund_id=func.coalesce(wx_refund_id, col(Refund.refund_id)))
        .execution_options(synchronize_session=False)).rowcount
    if won != 1:
        return False
    refund = get_refund(session, refund_id=refund_id)
    session.execute(update(ServiceOrder).where(col(ServiceOrder.id) == refund.order_id,
                                               col(ServiceOrder.refunded_fen) >= refund.amount_fen)
                    .values(refunded_fen=col(ServiceOrder.refunded_fen) - refund.amount_fen, updated_at=now)
                    .execution_options(synchronize_session=False))
    orders._expire(session, refund.order_id)
    order = orders.get_order(session, order_id=refund.order_id)
    back = purchase.unhold(session, order_id=refund.order_id, ref=f"refund:{refund.out_refund_no}", now=now)
    text_ = f"退款 {format_fen(refund.amount_fen)} 失败（{error}）"
    if refund.full and order.status == "refund_requested":
        orders.transition(session, order_id=refund.order_id, action="refund_failed", actor=SYSTEM, reason=text_,
                          now=now)
    else:
        orders.add_event(session, order_id=refund.order_id, action="refund_failed", actor=SYSTEM, reason=text_, now=now)
    record(session, actor=orders.PAYING_ACTOR, action="refund.failed", target_type="service_order",
           target_id=refund.order_id, summary=f"订单 {order.order_no} {text_}",
           after={"out_refund_no": refund.out_refund_no, "coupons_back": back})
    return True


def sync_refund(session: Session, *, refund_id: int, now: dt.datetime | None = None) -> Refund:
    """Ask WeChat Pay about a refund still in flight and apply its state."""
    now = now or utcnow()
    refund = get_refund(session, refund_id=refund_id)
    if refund.status in ("pending", "processing"):
        try:
            data = _client().query_refund(refund.out_refund_no)
        except WxPayError as exc:
            if exc.status == 404 and refund.status == "pending":
                return send_refund(session, refund_id=refund_id, now=now)  # never reached WeChat: send it now
            log.warning("refund %s: query failed: %s", refund.out_refund_no, exc.code)
            return refund
        _apply_refund_state(session, refund_id=refund_id, data=data, now=now)
    return get_refund(session, refund_id=refund_id)


def retry_pending_refunds(session: Session, *, older_than: dt.timedelta = dt.timedelta(minutes=1),
                          now: dt.datetime | None = None, limit: int = 50) -> int:
    """Job: settle refunds left in flight — re-send those WeChat never accepted (same ``out_refund_no``),
    query those still processing (a lost refund notify); returns how many were looked at."""
    now = now or utcnow()
    ids = session.exec(select(Refund.id)
                       .where(col(Refund.status).in_(("pending", "processing")),
                              col(Refund.updated_at) < now - older_than)
                       .order_by(col(Refund.id)).limit(limit)).all()
    for rid in ids:
        try:
            send_refund(session, refund_id=int(rid or 0), now=now)
        except UpstreamError:
            pass  # recorded as failed by send_refund
    return len(ids)


def handle_refund_notify(session: Session, *, headers: Mapping[str, str], body: bytes,
                         now: dt.datetime | None = None) -> NotifyResult:
    """``POST /pay/wechat/refund-notify``: verify, match the refund, apply its final state once."""
    now = now or utcnow()
    try:
        event = _client().parse_notify(headers, body, now=now)
    except WxPayNotifyError as exc:
        _log(session, kind="refund", outcome="rejected", reason=f"verification: {exc}", body=body, now=now)
        return NotifyResult(401, "rejected", "签名或时间戳校验失败")
    resource = event["resource"]
    try:
        if not str(event["event_type"]).startswith("REFUND."):
            raise _Rejected(f"event_type {event['event_type']} on the refund route")
        _check_merchant(resource)
        out_refund_no = resource.get("out_refund_no")
        refund = session.exec(select(Refund).where(col(Refund.out_refund_no) == out_refund_no)).first() if isinstance(
            out_refund_no, str) else None
        if refund is None:
            raise _Rejected(f"unknown out_refund_no {out_refund_no}", 404)
        order = orders.get_order(session, order_id=refund.order_id)
        amount = resource.get("amount") if isinstance(resource.get("amount"), dict) else {}
        if resource.get("out_trade_no") != order.order_no or amount.get("refund") != refund.amount_fen:
            raise _Rejected("out_trade_no / amount.refund do not match the refund")
    except _Rejected as rej:
        _log(session, kind="refund", outcome="rejected", reason=rej.reason, body=body, now=now, event=event,
             resource=resource)
        return NotifyResult(rej.status, "rejected", {404: "退款单不存在"}.get(rej.status, "通知内容与退款单不符"))
    outcome = _apply_refund_state(session, refund_id=refund.id or 0, data=resource, now=now)
    _log(session, kind="refund", outcome=outcome, reason=str(resource.get("refund_status") or ""), body=body, now=now,
         event=event, resource=resource)
    return NotifyResult(204, outcome, "", refund.order_id)


@dataclasses.dataclass(frozen=True)
class RefundPage:
    rows: list[RefundView]
    total: int


def list_refunds(session: Session, *, status: str | None = None, offset: int = 0, limit: int = 50) -> RefundPage:
    """Refunds, newest first (the refunds page)."""
    q = select(Refund)
    if status:
        if status not in REFUND_STATUSES:
            raise InvalidInput("未知的退款状态", code="INVALID_STATUS")
        q = q.where(col(Refund.status) == status)
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    rows = session.exec(q.order_by(col(Refund.id).desc()).offset(max(offset, 0)).limit(min(max(limit, 1), 200))).all()
    return RefundPage([_view(r) for r in rows], int(total))


def list_notify_log(session: Session, *, outcome: str | None = None, offset: int = 0,
                    limit: int = 50) -> tuple[list[PaymentNotifyLog], int]:
    """Notify attempts, newest first (rejections are what a person looks at)."""
    q = select(PaymentNotifyLog)
    if outcome:
        q = q.where(col(PaymentNotifyLog.outcome) == outcome)
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    rows = session.exec(q.order_by(col(PaymentNotifyLog.id).desc()).offset(max(offset, 0))
                        .limit(min(max(limit, 1), 200))).all()
    return list(rows), int(total)
