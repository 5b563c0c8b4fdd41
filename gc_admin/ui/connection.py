"""The dashboard's connection notice, in Chinese, replacing Reflex's English connection toaster.

Every page talks to the server over one websocket. When it cannot connect, staff must learn
why in words they read: above all when the address they opened is not an allowed origin (the
server refuses the websocket, so nothing on the page works and 登录 seems to do nothing).
The allowed origins are the same list the server checks (``GC_CORS_ORIGINS``, see
``gc_admin/config.py``), compiled into the page.
"""

from __future__ import annotations

import json

import reflex as rx
from reflex_base.components.memo import memo
from reflex_base.constants import Hooks
from reflex_base.utils.imports import ImportVar
from reflex_base.vars import VarData
from reflex_base.vars.base import Var
from reflex_components_core.base.fragment import Fragment
from reflex_components_core.core.banner import connect_error_var_data, has_connection_errors
from reflex_components_sonner.toast import toast_ref

from gc_admin.config import get_settings

TOAST_ID = "gc-connection"


def refused_origin_message(origin_js: str, public_url: str) -> str:
    """The JS template literal shown when this page's origin is not allowed (``origin_js`` is a JS expression)."""
    return (f"`无法连接后台：此网址（${{{origin_js}}}）不是允许的访问地址。"
            f"请改用 {public_url} 打开，或请管理员把它加入 GC_CORS_ORIGINS。`")


class ConnectionNotice(Fragment):
    """A toast that says, in Chinese, why the page has no connection to the server."""

    def add_hooks(self) -> list[str | Var]:
        s = get_settings()
        allowed = json.dumps(list(s.cors_origins))
        refused = refused_origin_message("origin", s.public_url)
        effect = f"""
useEffect(() => {{
    const origin = window.location.origin;
    // Each notice that goes away (closed, or the connection came back) leaves its id behind: sonner
    // delivers a dismissal a frame or two later, and one of an old id cannot remove a newer notice.
    // Only a toast that is on screen is ever dismissed (a dismissal sent ahead of the first error
    // would otherwise remove the first notice as it appears), and only the person closing the
    // notice on screen keeps it closed until the connection is back.
    const id = `{TOAST_ID}-${{gcIds.current.page}}-${{gcIds.current.n}}`;
    const show = (message) => {{
        gcIds.current.shown = id;
        toast?.error(message, {{id, closeButton: true, duration: Infinity, onDismiss: () => {{
            if (gcIds.current.shown !== id) return;  // our own dismissal, below
            gcIds.current = {{...gcIds.current, shown: null, n: gcIds.current.n + 1}};
            setGcDismissed(true);
        }}}});
    }};
    if (connectErrors.length === 0) {{
        const shown = gcIds.current.shown;
        if (shown !== null) {{
            gcIds.current = {{...gcIds.current, shown: null, n: gcIds.current.n + 1}};
            toast?.dismiss(shown);
        }}
        setGcDismissed(false);
    }} else if (gcDismissed) {{
        return;
    }} else if (connectErrors.some((error) => error.code === "hydration_payload_too_large")) {{
        show("页面数据过大，无法加载。请缩小筛选范围后刷新页面，或联系管理员。");
    }} else if (!{allowed}.includes(origin)) {{
        show({refused});
    }} else if (connectErrors.length >= 2) {{
        show(`无法连接服务器，正在重试。请确认后台服务正在运行（${{getBackendURL(env.EVENT).href}}）。`);
    }}
}}, [connectErrors, gcDismissed]);"""
        return [
            Hooks.CONNECT_ERRORS,
            Var(f"const toast = {toast_ref};"),
            "const [gcDismissed, setGcDismissed] = useState(false);",
            "const gcIds = useRef({page: Math.random().toString(36).slice(2), n: 0, shown: null});",
            Var(f"useEffect(() => () => {{ if (gcIds.current.shown !== null) {toast_ref}?.dismiss(gcIds.current.shown); }}, []);"),
            Var(
                _js_expr=effect,
                _var_data=VarData.merge(
                    connect_error_var_data,
                    VarData(imports={
                        "react": [ImportVar(tag="useEffect"), ImportVar(tag="useRef"), ImportVar(tag="useState")],
                        "$/env.json": [ImportVar(tag="env", is_default=True)],
                        "$/utils/state": [ImportVar(tag="getBackendURL")],
                    }),
                ),
            ),
        ]


def _overlay() -> rx.Component:
    return rx.fragment(
        ConnectionNotice.create(),
        rx.cond(
            has_connection_errors,
            rx.box(
                rx.icon("wifi-off", size=28, color="crimson"),
                title="与服务器的连接已断开",
                position="fixed",
                bottom="33px",
                right="33px",
                z_index="9999",
                data_testid="connection-lost",
            ),
        ),
    )


def connection_overlay() -> rx.Component:
    """What the app shows over every page while the connection is down: the notice and an icon.

    Memoised into its own component (as Reflex does with its default overlay) so its hooks run
    inside the event-loop provider, not in the app wrapper around it."""
    return rx.fragment(memo(_overlay)())
