"""The shell every staff page shares: sidebar by section (a menu button and drawer on narrow
screens), top bar, title, access gate."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from gc_admin.core.roles import SECTION_BY_KEY, SECTIONS
from gc_admin.ui.auth import AuthState

SIDEBAR_WIDTH = "13rem"
TOPBAR_HEIGHT = "4rem"  # Ant Design's header height; a one-line toast fits in it

#: Shell-wide rules for page bodies: a row holding text fields (a list's filters) wraps instead of
#: squeezing its fields to nothing on a narrow screen, and on narrow screens column headers keep to
#: one line, so a wide table scrolls inside its own container (Radix's table is a scroll area).
CONTENT_STYLE = {
    "& .rt-Flex:has(> .rt-TextFieldRoot)": {"flex_wrap": "wrap"},
    "@media (max-width: 61.99em)": {"& .rt-TableColumnHeaderCell": {"white_space": "nowrap"}},
}


#: Below this width (Reflex's ``lg``, 62em ≈ 992 px: phones and portrait tablets) the sidebar
#: folds into the menu button's drawer.
WIDE = "lg"


#: Live counts shown beside a section's sidebar item, registered by the features that own them
#: (``register_badge("orders", orders_badge)`` in ``orders/badge.py``): the shell imports no feature.
#: A factory takes ``timer`` (whether this copy runs the refresh timer — a page shows a badge in
#: several places but runs one timer) and ``testid``.
BadgeFactory = Callable[..., rx.Component]
_BADGES: dict[str, BadgeFactory] = {}


def register_badge(section: str, factory: BadgeFactory) -> None:
    """Show ``factory``'s component beside ``section`` in the sidebar, the drawer and the menu button."""
    if section not in SECTION_BY_KEY:
        raise ValueError(f"unknown section {section!r}")
    _BADGES[section] = factory


def _badge(section: str, *, timer: bool, testid: str) -> rx.Component | None:
    factory = _BADGES.get(section)
    return None if factory is None else factory(timer=timer, testid=testid)


def _wide(narrow: str, wide: str) -> rx.Breakpoints:
    return rx.breakpoints(initial=narrow, **{WIDE: wide})


def _nav_item(key: str, current: str, testid_prefix: str = "nav", in_drawer: bool = False) -> rx.Component:
    s = SECTION_BY_KEY[key]
    active = key == current
    # the sidebar (always rendered, hidden on narrow screens) runs the badge's one timer
    badge = _badge(key, timer=not in_drawer, testid=f"drawer-{key}-badge" if in_drawer else f"{key}-badge")
    link = rx.link(
        rx.hstack(
            rx.icon(s.icon, size=16),
            rx.text(s.label, size="2", weight="medium" if active else "regular"),
            *([rx.spacer(), badge] if badge is not None else []),
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
        data_testid=f"{testid_prefix}-{key}",
    )
    # in the drawer a tap both navigates and closes it
    return rx.cond(AuthState.sections.contains(key), rx.drawer.close(link) if in_drawer else link)


def _brand() -> rx.Component:
    return rx.hstack(
        rx.icon("gem", size=20, color=rx.color("accent", 10)),
        rx.text("滚财权益后台", size="4", weight="bold"),
        padding="1rem 0.75rem",
        align="center",
    )


def sidebar(current: str) -> rx.Component:
    return rx.vstack(
        _brand(),
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
        display=_wide("none", "flex"),
        data_testid="sidebar",
    )


def nav_drawer(current: str) -> rx.Component:
    """The menu button of narrow screens and the drawer with the same sections as the sidebar."""
    return rx.box(
        rx.drawer.root(
            rx.drawer.trigger(
                rx.icon_button(rx.icon("menu", size=20), variant="ghost", color_scheme="gray", size="2",
                               aria_label="打开菜单", title="菜单", data_testid="menu-button"),
            ),
            # the new-order count stays in sight while the sidebar is folded away
            *[rx.box(_badge(key, timer=False, testid=f"menu-{key}-badge"), position="absolute", top="-0.4rem",
                     right="-0.6rem", pointer_events="none") for key in _BADGES],
            rx.drawer.overlay(z_index="50"),
            rx.drawer.portal(
                rx.drawer.content(
                    rx.vstack(
                        rx.drawer.title(_brand()),
                        rx.drawer.description("选择要进入的页面", class_name="sr-only", display="none"),
                        *[_nav_item(s.key, current, "drawer-nav", in_drawer=True) for s in SECTIONS],
                        spacing="1",
                        width="100%",
                        padding="0.5rem",
                        overflow_y="auto",
                    ),
                    top="0",
                    left="0",
                    right="auto",
                    bottom="0",
                    height="100%",
                    width=f"min({SIDEBAR_WIDTH}, 85vw)",
                    background=rx.color("gray", 2),
                    border_right=f"1px solid {rx.color('gray', 5)}",
                    data_testid="nav-drawer",
                ),
            ),
            direction="left",
        ),
        position="relative",
        display=_wide("block", "none"),
    )


def topbar(title: str, section: str) -> rx.Component:
    return rx.hstack(
        nav_drawer(section),
        rx.heading(title, size="5", data_testid="page-title", white_space="nowrap", overflow="hidden",
                   text_overflow="ellipsis", min_width="0"),
        rx.spacer(),
        rx.hstack(
            rx.icon("circle-user", size=18, display=rx.breakpoints(initial="none", sm="block")),
            rx.text(AuthState.display_name, size="2", weight="medium", data_testid="whoami", white_space="nowrap",
                    display=rx.breakpoints(initial="none", sm="block")),
            rx.badge(AuthState.role_label, variant="soft", data_testid="role-badge"),
            rx.button(rx.icon("log-out", size=14), "退出", size="1", variant="ghost", on_click=AuthState.logout,
                      data_testid="logout"),
            align="center",
            spacing="3",
            flex_shrink="0",
        ),
        align="center",
        spacing="3",
        width="100%",
        height=TOPBAR_HEIGHT,
        padding=_wide("0 1rem", "0 1.5rem"),
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        # stays in view: the menu button and 退出 are always at hand, and toasts (which appear in
        # this band) never sit over the page's filters or table headers, which scroll beneath it
        position="sticky",
        top="0",
        z_index="10",
        background="var(--color-background)",
        data_testid="topbar",
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
                        topbar(title, section),
                        rx.box(
                            rx.cond(AuthState.sections.contains(section), body(), forbidden()),
                            padding=_wide("1rem", "1.5rem"),
                            width="100%",
                            min_width="0",
                            style=CONTENT_STYLE,
                            data_testid="page-body",
                        ),
                        width="100%",
                        # a flex item may shrink below its content's width: wide tables scroll
                        # inside their own container instead of widening the page
                        min_width="0",
                        flex="1",
                        spacing="0",
                        min_height="100vh",
                    ),
                    spacing="0",
                    width="100%",
                    align="start",
                    background=_wide(
                        "none",
                        f"linear-gradient(to right, {rx.color('gray', 2)} {SIDEBAR_WIDTH}, transparent {SIDEBAR_WIDTH})",
                    ),
                ),
                loading(),
            )

        page.__name__ = body.__name__
        return page

    return wrap


def toaster() -> rx.Component:
    """Where result toasts appear: at the top, in the band of the (sticky) top bar, so they never
    cover a page's filters or table headers, which stay below that band however the page is
    scrolled. Collapsed into one card's height; hovering shows the stack."""
    return rx.toast.provider(position="top-center", expand=False, visible_toasts=3, rich_colors=True,
                             close_button=True, offset="0.5rem",
                             custom_attrs={"mobileOffset": "0.5rem"})  # sonner's prop for narrow screens


def head_links() -> list[rx.Component]:
    """Favicons (assets/, drawn by scripts/make_favicon.py), linked from every page's head."""
    return [
        rx.el.link(rel="icon", href="/favicon.ico", sizes="32x32"),
        rx.el.link(rel="icon", href="/favicon.svg", type="image/svg+xml"),
        rx.el.link(rel="apple-touch-icon", href="/apple-touch-icon.png"),
    ]
