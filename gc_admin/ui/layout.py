"""The shell every staff page shares: sidebar by section, top bar, title, access gate."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from gc_admin.core.roles import SECTION_BY_KEY, SECTIONS
from gc_admin.orders.badge import orders_badge
from gc_admin.ui.auth import AuthState

SIDEBAR_WIDTH = "13rem"


def _nav_item(key: str, current: str) -> rx.Component:
    s = SECTION_BY_KEY[key]
    active = key == current
    return rx.cond(
        AuthState.sections.contains(key),
        rx.link(
            rx.hstack(
                rx.icon(s.icon, size=16),
                rx.text(s.label, size="2", weight="medium" if active else "regular"),
                *([rx.spacer(), orders_badge()] if key == "orders" else []),
                align="center",
                spacing="2",
                padding_x="0.75rem",
                padding_y="0.5rem",
                border_radius="var(--radius-2)",
                background=rx.color("accent", 4) if active else "transparent",
                color=rx.color("accent", 11) if active else rx.color("gray", 12),
                _hover={"background": rx.color("accent", 3)},
                width="100%",
            ),
            href=s.route,
            underline="none",
            width="100%",
            data_testid=f"nav-{key}",
        ),
    )


def sidebar(current: str) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.icon("gem", size=20, color=rx.color("accent", 10)),
            rx.text("滚财权益后台", size="4", weight="bold"),
            padding="1rem 0.75rem",
            align="center",
        ),
        *[_nav_item(s.key, current) for s in SECTIONS],
        spacing="1",
        width=SIDEBAR_WIDTH,
        min_width=SIDEBAR_WIDTH,
        height="100vh",
        overflow_y="auto",
        position="sticky",
        top="0",
        padding="0.5rem",
        border_right=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 2),
        data_testid="sidebar",
    )


def topbar(title: str) -> rx.Component:
    return rx.hstack(
        rx.heading(title, size="5", data_testid="page-title"),
        rx.spacer(),
        rx.hstack(
            rx.icon("circle-user", size=18),
            rx.text(AuthState.display_name, size="2", weight="medium", data_testid="whoami"),
            rx.badge(AuthState.role_label, variant="soft", data_testid="role-badge"),
            rx.button(rx.icon("log-out", size=14), "退出", size="1", variant="ghost", on_click=AuthState.logout,
                      data_testid="logout"),
            align="center",
            spacing="3",
        ),
        align="center",
        width="100%",
        padding="0.75rem 1.5rem",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
    )


def forbidden() -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.icon("shield-x", size=40, color=rx.color("red", 9)),
            rx.heading("无权访问", size="5"),
            rx.text("您的角色不能使用此页面。如需开通，请联系管理员。", color_scheme="gray"),
            rx.link("返回工作台", href="/"),
            align="center",
            spacing="3",
            data_testid="forbidden",
        ),
        padding="4rem",
        width="100%",
    )


def loading() -> rx.Component:
    return rx.center(rx.spinner(size="3"), height="100vh", width="100%")


def staff_page(section: str, title: str) -> Callable[[Callable[[], rx.Component]], Callable[[], rx.Component]]:
    """Wrap a page body in the shell. The body renders only for a signed-in member whose role
    may use ``section``; others see 无权访问 (and the data handlers refuse them anyway)."""

    def wrap(body: Callable[[], rx.Component]) -> Callable[[], rx.Component]:
        def page() -> rx.Component:
            return rx.cond(
                AuthState.checked & AuthState.signed_in,
                rx.hstack(
                    sidebar(section),
                    rx.vstack(
                        topbar(title),
                        rx.box(
                            rx.cond(AuthState.sections.contains(section), body(), forbidden()),
                            padding="1.5rem",
                            width="100%",
                        ),
                        width="100%",
                        spacing="0",
                        min_height="100vh",
                    ),
                    spacing="0",
                    width="100%",
                    align="start",
                    background=f"linear-gradient(to right, {rx.color('gray', 2)} {SIDEBAR_WIDTH}, transparent {SIDEBAR_WIDTH})",
                ),
                loading(),
            )

        page.__name__ = body.__name__
        return page

    return wrap
