"""Test-only stops inside real task paths (imported by a worker started with
``GC_TASKS_EXTRA_MODULES=tests.unit.tasks.holds``): the worker runs the real task (``claims.payouts``,
``orders.ship_import``), and it stops at ``GC_TEST_HOLD_AT`` and waits there (for a flag file that never comes)
until the test kills the worker.

- ``before_send``: the payout's send lease is taken and the row marked ``sent`` (committed), the transfer
  not yet asked of Alipay;
- ``after_transfer``: Alipay (the simulator) executed the transfer and answered SUCCESS; the worker's unit of
  work applying it (payout succeeded, claim paid, coupon used, ledger entry, audit) is flushed, not committed;
- ``mid_shipment``: a shipments import has claimed its row and shipped its first order (the ``ship`` move made in
  the task's unit of work, flushed, not committed); the sheet's other orders not yet.

``GC_TEST_HOLD_DIR`` is where ``started`` is touched when the stop is reached (the test waits for it).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from gc_admin.claims import payout
from gc_admin.integrations.alipay.client import AlipayClient
from tests.unit.tasks.blocking import hold

AT = os.environ.get("GC_TEST_HOLD_AT", "")
FLAGS = Path(os.environ.get("GC_TEST_HOLD_DIR", "."))


def _stop_before(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        hold(FLAGS)
        return fn(*args, **kwargs)
    return wrapper


def _stop_after(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        hold(FLAGS)
        return out
    return wrapper


if AT == "before_send":
    AlipayClient.transfer = _stop_before(AlipayClient.transfer)
elif AT == "after_transfer":  # apply_success runs inside send()'s last unit of work, before its commit
    payout.apply_success = _stop_after(payout.apply_success)
elif AT == "mid_shipment":  # shipments.apply imports staff_action from orders.flows when it runs
    from gc_admin.orders import flows as order_flows

    _real_move = order_flows.staff_action

    @functools.wraps(_real_move)
    def _ship_then_stop(session, **kwargs):
        out = _real_move(session, **kwargs)
        if kwargs.get("action") == "ship":
            hold(FLAGS)
        return out

    order_flows.staff_action = _ship_then_stop
elif AT:
    raise ValueError(f"GC_TEST_HOLD_AT={AT!r}: before_send, after_transfer or mid_shipment")
