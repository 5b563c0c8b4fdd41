"""售后 cases: customer service opens one when an order goes to after-sales (reason, notes), logs each
call to the user (when, outcome, note), and closes it with the outcome — ``resolved`` (the order is
completed after all: ``resolve``) or ``refunded`` (cancelled and refunded in full: the case closes when
the refund succeeds). The user sees ``fulfilment.case = {status, outcome, outcome_label}``.

Session first, never commit; called by :mod:`gc_admin.orders.flows` inside the move's own transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.core.clock import iso, utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.core.principal import Actor
from gc_admin.orders.aftersales.models import CALL_OUTCOMES, CASE_OUTCOMES, CASE_STATUSES, OrderCase, OrderCaseCall
from gc_admin.orders.models import ServiceOrder
from gc_admin.orders.service import add_event, get_order, mark_stale


def get_case(session: Session, *, order_id: int) -> OrderCase | None:
    return session.exec(select(OrderCase).where(col(OrderCase.order_id) == order_id)
                        .execution_options(populate_existing=True)).first()


def _publish(session: Session, case: OrderCase) -> None:
    """What the user sees of the case, in the order's ``fulfilment.case``."""
    order = get_order(session, order_id=case.order_id)
    public = {"status": case.status, "status_label": CASE_STATUSES[case.status], "outcome": case.outcome,
              "outcome_label": CASE_OUTCOMES.get(case.outcome or "", ""), "opened_at": iso(case.opened_at),
              "closed_at": iso(case.closed_at)}
    session.execute(update(ServiceOrder).where(col(ServiceOrder.id) == case.order_id)
                    .values(fulfilment={**(order.fulfilment or {}), "case": public})
                    .execution_options(synchronize_session=False))
    mark_stale(session, case.order_id)


def open_case(session: Session, *, order_id: int, reason: str, notes: str, actor: Actor,
              now: dt.datetime | None = None) -> OrderCase:
    """Open (or reopen) the order's case; the order has just moved to 售后 in this transaction."""
    now = now or utcnow()
    if len(notes) > 2000:
        raise InvalidInput("备注不超过 2000 个字", code="NOTES_TOO_LONG")
    case = get_case(session, order_id=order_id)
    if case is None:
        case = OrderCase(order_id=order_id, reason=reason[:200], notes=notes, opened_by=actor.name[:64], opened_at=now)
    else:  # an earlier case comes back: same row, reopened
        case.status, case.reason, case.outcome, case.outcome_note = "open", reason[:200], None, ""
        case.notes = (case.notes + "\n" + notes).strip()[:2000]
        case.closed_at = case.closed_by = None
    session.add(case)
    session.flush()
    _publish(session, case)
    return case


def log_call(session: Session, *, order_id: int, outcome: str, note: str = "", called_at: dt.datetime | None = None,
             actor: Actor, now: dt.datetime | None = None) -> OrderCaseCall:
    """One call to the user on an open case."""
    now = now or utcnow()
    if outcome not in CALL_OUTCOMES:
        raise InvalidInput(f"通话结果需为：{'、'.join(CALL_OUTCOMES.values())}", code="INVALID_CALL_OUTCOME")
    if len(note) > 500:
        raise InvalidInput("通话备注不超过 500 个字", code="NOTE_TOO_LONG")
    called_at = called_at or now
    if called_at.tzinfo is None or called_at > now + dt.timedelta(minutes=5):
        raise InvalidInput("通话时间需带时区且不能晚于现在", code="INVALID_CALL_TIME")
    case = get_case(session, order_id=order_id)
    if case is None:
        raise NotFound("该订单没有售后工单：请先转售后", code="CASE_NOT_FOUND")
    if case.status != "open":
        raise Conflict("售后工单已结案，不能再记录通话", code="CASE_CLOSED")
    call = OrderCaseCall(case_id=case.id or 0, called_at=called_at, outcome=outcome, note=note.strip(),
                         by_name=actor.name[:64], created_at=now)
    session.add(call)
    session.flush()
    add_event(session, order_id=order_id, action="case_call", actor=actor,
              reason=f"售后回访：{CALL_OUTCOMES[outcome]}" + (f"（{note.strip()}）" if note.strip() else ""), now=now)
    record(session, actor=actor, action="order.case_call", target_type="service_order", target_id=order_id,
           summary=f"售后回访用户：{CALL_OUTCOMES[outcome]}", after={"called_at": iso(called_at), "outcome": outcome})
    return call


def close_case(session: Session, *, order_id: int, outcome: str, actor: Actor, note: str = "",
               now: dt.datetime | None = None) -> OrderCase | None:
    """Close the order's open case with ``outcome`` (once: a conditional UPDATE); ``None`` if none is open."""
    now = now or utcnow()
    res = session.execute(update(OrderCase).where(col(OrderCase.order_id) == order_id, col(OrderCase.status) == "open")
                          .values(status="closed", outcome=outcome, outcome_note=note[:500], closed_at=now,
                                  closed_by=actor.name[:64]).execution_options(synchronize_session=False))
    if res.rowcount != 1:
        return None
    case = get_case(session, order_id=order_id)
    assert case is not None
    _publish(session, case)
    return case


def case_view(session: Session, *, order_id: int) -> dict[str, Any] | None:
    """The case for staff: reason, notes, outcome and the call log (newest last)."""
    case = get_case(session, order_id=order_id)
    if case is None:
        return None
    calls = session.exec(select(OrderCaseCall).where(col(OrderCaseCall.case_id) == case.id)
                         .order_by(col(OrderCaseCall.called_at), col(OrderCaseCall.id))).all()
    return {"status": case.status, "status_label": CASE_STATUSES[case.status], "reason": case.reason,
            "notes": case.notes, "outcome": case.outcome, "outcome_label": CASE_OUTCOMES.get(case.outcome or "", ""),
            "outcome_note": case.outcome_note, "opened_by": case.opened_by, "opened_at": iso(case.opened_at),
            "closed_by": case.closed_by, "closed_at": iso(case.closed_at),
            "calls": [{"called_at": iso(c.called_at), "outcome": c.outcome, "outcome_label": CALL_OUTCOMES[c.outcome],
                       "note": c.note, "by": c.by_name} for c in calls]}
