"""Every event handler of every dashboard state checks the role on the server (DESIGN.md §3).

A Reflex event can be sent without its page, so a handler without :func:`gc_admin.ui.auth.guarded`
is an open door. This walks every ``rx.State`` subclass the dashboard defines and fails on any of
its own handlers that is neither ``@guarded(...)`` nor explicitly ``@public``.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
import reflex as rx

import gc_admin
from gc_admin.ui.auth import GUARD_ATTR

for info in pkgutil.walk_packages(gc_admin.__path__, "gc_admin."):
    if info.name.rsplit(".", 1)[-1] in {"state", "page", "badge", "layout", "auth", "connection", "paging", "home"} \
            or info.name.endswith("_state") or info.name.endswith("_page"):
        importlib.import_module(info.name)


def _states(cls: type) -> list[type]:
    out = []
    for sub in cls.get_substates():
        if sub.__module__.startswith("gc_admin."):
            out.append(sub)
        out.extend(_states(sub))
    return out


STATES = sorted(set(_states(rx.State)), key=lambda c: c.__module__ + c.__name__)
HANDLERS = [(cls, name, h) for cls in STATES for name, h in cls.event_handlers.items()
            if getattr(h.fn, "__module__", "").startswith("gc_admin.")]


def test_the_walk_finds_the_dashboard() -> None:
    names = {c.__name__ for c in STATES}
    assert {"AuthState", "OrdersState", "StaffState", "UsersState"} <= names and len(HANDLERS) > 40


@pytest.mark.parametrize(("cls", "name", "handler"), HANDLERS, ids=[f"{c.__name__}.{n}" for c, n, _ in HANDLERS])
def test_every_handler_is_guarded_or_public(cls, name, handler) -> None:
    assert getattr(handler.fn, GUARD_ATTR, None), (
        f"{cls.__module__}.{cls.__name__}.{name}: decorate it with @guarded(section) (or @public if it "
        "reads and changes no data)")
