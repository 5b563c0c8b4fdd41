"""The dashboard shell: where sign-in may send the browser, the staff cookie's flags."""

from __future__ import annotations

import dataclasses
import re

import pytest

from gc_admin.config import get_settings
from gc_admin.core.roles import SECTIONS
from gc_admin.ui.auth import AuthState, safe_next, staff_cookie


@pytest.mark.parametrize("route", [s.route for s in SECTIONS])
def test_every_section_is_a_place_to_return_to(route):
    assert safe_next(route) == route
    assert safe_next(route.rstrip("/") + "/") == route  # the prod server's trailing-slash form


@pytest.mark.parametrize(
    "nxt",
    ["", None, 7, "//evil.example", "/\\evil.example/x", "\\\\evil.example", "/\\/evil.example", "/\t/evil.example",
     "/\n/evil.example", "https://evil.example/", "http:/evil.example", "javascript:alert(1)", "/%2F%2Fevil.example",
     "/login", "/no-such-page", "/staff/../../evil", "/staff?x=//evil.example", "/staff#//evil", " /staff", "/staff//"],
)
def test_anything_else_goes_home(nxt):
    assert safe_next(nxt) == "/"


def test_staff_cookie_is_secure_when_the_public_url_is_https():
    s = get_settings()
    assert staff_cookie(dataclasses.replace(s, public_url="https://admin.guncai.example")).secure is True
    plain = staff_cookie(dataclasses.replace(s, public_url="http://localhost:8000"))
    assert not plain.secure
    assert (plain.name, plain.same_site, plain.max_age) == ("gc_staff_token", "strict", s.staff_session_hours * 3600)
    # and the state's cookie is the one the settings describe
    token = AuthState.get_fields()["token"].default
    assert (token.name, token.same_site, bool(token.secure)) == ("gc_staff_token", "strict", s.https)


def test_the_shell_runs_one_new_order_timer_however_many_places_show_the_count():
    """The sidebar, the narrow screens' menu button and its drawer all show the 新订单 count; only
    one timer polls for it (each would otherwise tick the server on its own)."""
    import gc_admin.orders.badge  # noqa: F401  (the orders feature registers its badge with the shell)
    from gc_admin.home.page import home_page

    rendered = str(home_page().render())
    assert rendered.count("Moment") == 1
    assert sorted(re.findall(r'"([a-z-]*orders-badge)"', rendered)) == [
        "drawer-orders-badge", "menu-orders-badge", "orders-badge"]
    assert "menu-button" in rendered and "nav-drawer" in rendered


def test_a_row_confirmation_opens_from_its_own_button():
    """confirm_dialog without page state (a row's 停用 / 吊销): its trigger opens it, the confirming
    action closes it; with page state it is controlled by ``open`` / ``on_open_change`` as before."""
    import reflex as rx

    from gc_admin.partners.state import PartnersState
    from gc_admin.ui.components import confirm_dialog

    row = confirm_dialog("吊销密钥", "不可恢复", trigger=rx.button("吊销"),
                         confirm=rx.alert_dialog.action(rx.button("确定吊销"))).render()
    assert row["name"] == "RadixThemesAlertDialog.Root" and row["props"] == []
    assert [c["name"] for c in row["children"]] == ["RadixThemesAlertDialog.Trigger", "RadixThemesAlertDialog.Content"]
    held = confirm_dialog("新建", "确定？", open=PartnersState.create_open, on_open_change=PartnersState.open_create,
                          confirm=rx.button("确定")).render()
    assert sorted(p.split(":", 1)[0] for p in held["props"]) == ["onOpenChange", "open"]
    assert [c["name"] for c in held["children"]] == ["RadixThemesAlertDialog.Content"]
