"""The staff dashboard as people use it: sign-in per role, what each role sees, refusals."""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from gc_admin.core.roles import sections_for
from gc_admin.demo import DEMO_STAFF
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, login, save_artifact


@pytest.mark.parametrize("username, name, role, password", DEMO_STAFF, ids=[s[0] for s in DEMO_STAFF])
def test_each_role_sees_exactly_its_sections(page, app_server, username, name, role, password):
    login(page, app_server, username, password)
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    expect(page.get_by_test_id("whoami")).to_have_text(name)
    nav = page.locator("[data-testid^='nav-']")
    expect(nav).to_have_count(len(sections_for(role)))
    shown = {t.removeprefix("nav-") for t in nav.evaluate_all("els => els.map(e => e.dataset.testid)")}
    assert shown == {s.key for s in sections_for(role)}
    if "users" in shown:  # the 工作台 shows only the figures of the role's sections
        expect(page.get_by_test_id("stat-users")).not_to_have_text("0")
    else:
        expect(page.get_by_test_id("greeting")).to_be_visible()
        expect(page.get_by_test_id("stat-users")).to_have_count(0)


def test_wrong_password_shows_chinese_error(page, app_server):
    login(page, app_server, "clerk", "not-the-password")
    expect(page.get_by_test_id("login-error")).to_contain_text("用户名或密码错误")
    expect(page.get_by_test_id("sidebar")).to_have_count(0)


def test_clerk_cannot_open_staff_management_by_url(page, app_server):
    login(page, app_server, "clerk", "clerk2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    page.goto(app_server.url("/staff/"))
    expect(page.get_by_test_id("forbidden")).to_be_visible()
    expect(page.get_by_test_id("forbidden")).to_contain_text("无权访问")
    expect(page.get_by_test_id("staff-table")).to_have_count(0)
    expect(page.locator("text=admin2026")).to_have_count(0)


def test_signed_out_visitor_is_sent_to_login(page, app_server):
    page.goto(app_server.url("/audit/"))
    expect(page).to_have_url(re.compile(r"/login/?\?next=(%2F|/)audit"))
    expect(page.get_by_test_id("login-username")).to_be_visible()


def _new_clerk_dialog(page, username: str, name: str):
    """员工与权限 → 新建员工, filled in for a 内勤 account (no password yet): the open dialog."""
    page.get_by_test_id("nav-staff").click()
    expect(page.get_by_test_id("staff-table")).to_be_visible()
    page.get_by_test_id("staff-new").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_placeholder("用户名（小写字母开头，3–32 位）").fill(username)
    dialog.get_by_placeholder("姓名").fill(name)
    dialog.get_by_test_id("staff-new-role").click()
    page.get_by_role("option", name="内勤").click()
    return dialog


def test_admin_creates_staff_and_it_is_audited(page, app_server):
    login(page, app_server, "admin", "admin2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    save_artifact(page, "dashboard-admin.png")
    dialog = _new_clerk_dialog(page, "newclerk", "孙悦")
    dialog.get_by_placeholder("初始密码（至少 8 位，含字母和数字）").fill("short")
    dialog.get_by_role("button", name="创建").click()
    expect(dialog).to_contain_text("密码至少 8 位")
    dialog.get_by_placeholder("初始密码（至少 8 位，含字母和数字）").fill("newclerk2026")
    dialog.get_by_role("button", name="创建").click()
    expect(page.get_by_text("已创建员工 newclerk")).to_be_visible()
    expect(page.get_by_test_id("staff-row").filter(has_text="newclerk")).to_have_count(1)
    page.get_by_test_id("nav-audit").click()
    expect(page.get_by_test_id("audit-row").filter(has_text="创建员工").first).to_be_visible()
    expect(page.get_by_test_id("audit-row").filter(has_text="newclerk").first).to_be_visible()
    # the new account signs in and sees the clerk's sections
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login-username")).to_be_visible()
    login(page, app_server, "newclerk", "newclerk2026")
    expect(page.get_by_test_id("role-badge")).to_have_text("内勤")
    expect(page.get_by_test_id("nav-staff")).to_have_count(0)


def test_admin_gives_an_insurer_account_its_programme(page, app_server):
    """The staff dialog's programme picker: only an insurer account takes a programme; the table
    shows it under 所属项目 and changes it there, audited."""
    login(page, app_server, "admin", "admin2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    dialog = _new_clerk_dialog(page, "gxclaims", "蒙丽")
    dialog.get_by_test_id("staff-new-programme").click()
    page.get_by_role("option", name="广西人保车主权益（picc_gx）").click()
    dialog.get_by_placeholder("初始密码（至少 8 位，含字母和数字）").fill("gxclaims2026")
    dialog.get_by_role("button", name="创建").click()
    expect(dialog).to_contain_text("只有人保账号可以关联项目")
    dialog.get_by_test_id("staff-new-role").click()
    page.get_by_role("option", name="人保").click()
    dialog.get_by_role("button", name="创建").click()
    expect(page.get_by_text("已创建员工 gxclaims")).to_be_visible()
    row = page.get_by_test_id("staff-row").filter(has_text="gxclaims")
    expect(row).to_contain_text("广西人保车主权益（picc_gx）")
    expect(page.get_by_test_id("staff-row").filter(has_text="clerk").first).not_to_contain_text("picc_gx")
    save_artifact(page, "staff-programmes.png")
    # changed in the table: the account no longer acts for the programme
    row.get_by_role("combobox").filter(has_text="广西人保车主权益").click()
    page.get_by_role("option", name="不关联项目").click()
    expect(page.get_by_text("gxclaims 已不再关联项目")).to_be_visible()
    expect(row).to_contain_text("不关联项目")
    page.reload()
    expect(page.get_by_test_id("staff-row").filter(has_text="gxclaims")).to_contain_text("不关联项目")
    page.get_by_test_id("nav-audit").click()
    expect(page.get_by_test_id("audit-row").filter(has_text="gxclaims 所属项目：picc_gx → 无").first).to_be_visible()
    expect(page.get_by_test_id("audit-row").filter(has_text="所属项目 picc_gx").first).to_be_visible()


# --- network exposure and origins (issue 7 point 4) -----------------------------------------------

OTHER_HOST = "gc-not-allowed.test"


def _port(app_server) -> int:
    return int(urlsplit(app_server.base_url).port)


def _outward_ip() -> str | None:
    """This machine's address on its network (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.254", 9))  # no packet is sent for a UDP connect
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def test_dev_server_listens_on_loopback_only(app_server):
    """With GC_ENV=dev and no GC_HOST the app (and its /sim, which mints identities and payments)
    is not reachable from the network."""
    ip = _outward_ip()
    if ip is None:
        pytest.skip("this machine has no non-loopback address to try")
    with pytest.raises(OSError):
        socket.create_connection((ip, _port(app_server)), timeout=5).close()
    # on loopback it serves, simulators included
    assert httpx.get(app_server.url("/api/v1/health"), timeout=10).status_code == 200
    resp = httpx.post(f"http://127.0.0.1:{_port(app_server)}/sim/wechat/_mint",
                      json={"openid": "o-loopback", "phone": "13800009999"}, timeout=10)
    assert resp.status_code == 200, resp.text


@pytest.fixture(scope="module")
def aliased_browser(browser):
    """A second browser (same Playwright) that resolves this machine's name and a stranger's
    name to loopback."""
    rules = f"MAP {OTHER_HOST} 127.0.0.1, MAP {socket.gethostname().lower()} 127.0.0.1"
    b = browser.browser_type.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, f"--host-resolver-rules={rules}"])
    yield b
    b.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "machine-name"])
def test_the_app_works_at_the_loopback_aliases(aliased_browser, app_server, host):
    host = socket.gethostname().lower() if host == "machine-name" else host
    base = f"http://{host}:{_port(app_server)}"
    context = aliased_browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(base + "/login/")
        page.get_by_test_id("login-username").fill("clerk")
        page.get_by_test_id("login-password").fill("clerk2026")
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("sidebar")).to_be_visible()
        expect(page.get_by_test_id("role-badge")).to_have_text("内勤")
        assert page.url.startswith(base)
    finally:
        context.close()


def test_a_refused_origin_is_explained_in_chinese(aliased_browser, app_server):
    base = f"http://{OTHER_HOST}:{_port(app_server)}"
    context = aliased_browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(base + "/login/")
        toast = page.locator("[data-sonner-toast]").filter(has_text="不是允许的访问地址")
        expect(toast).to_be_visible()
        page.wait_for_timeout(500)  # slid in, for the screenshot
        expect(toast).to_contain_text(base)  # which address, and where to go instead
        expect(toast).to_contain_text(app_server.base_url)
        expect(toast).to_contain_text("GC_CORS_ORIGINS")
        assert "Cannot connect" not in page.locator("body").inner_text()
        save_artifact(page, "refused-origin.png")
    finally:
        context.close()


# Frames and the websocket by hand: requestAnimationFrame callbacks run only when the test says so,
# and every websocket the page opens stays connecting until the test fails it, or, after
# __release(), frames run by themselves again and new websockets are real.
FRAMES_AND_SOCKETS_BY_HAND = """
(() => {
    const frames = new Map(); let n = 0; let released = false;
    const [RealSocket, realFrame, realCancel] = [window.WebSocket, window.requestAnimationFrame, window.cancelAnimationFrame];
    window.requestAnimationFrame = (cb) => { n += 1; frames.set(n, cb); return n; };
    window.cancelAnimationFrame = (h) => { frames.delete(h); };
    window.__frame = () => { const due = [...frames.values()]; frames.clear(); due.forEach((cb) => cb(performance.now())); };
    window.__release = () => {
        released = true;
        window.__frame();
        window.requestAnimationFrame = realFrame;
        window.cancelAnimationFrame = realCancel;
    };
    const sockets = [];
    window.WebSocket = class HeldSocket extends EventTarget {
        static CONNECTING = 0; static OPEN = 1; static CLOSING = 2; static CLOSED = 3;
        constructor(url, protocols) {
            if (released) return new RealSocket(url, protocols);
            super(); this.url = url; this.readyState = 0; this.binaryType = "blob"; sockets.push(this);
        }
        send() {}
        close() { this.readyState = 3; }
    };
    window.__sockets = () => sockets.filter((s) => s.readyState === 0).length;
    window.__failSocket = () => {
        const s = sockets.find((s) => s.readyState === 0);
        s.readyState = 3;
        s.onerror?.(new Event("error"));
        s.onclose?.(new CloseEvent("close", {code: 1006}));
    };
})();
"""


def test_the_refused_origin_notice_outlasts_the_pages_first_frames(aliased_browser, app_server):
    """The notice stays up as long as the connection fails, whatever a frame delivers after it
    appears (the page once sent sonner a dismissal before its first error, which removed the
    notice as it came up and, taken for the person's close, kept it away for good)."""
    base = f"http://{OTHER_HOST}:{_port(app_server)}"
    context = aliased_browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    try:
        page = context.new_page()
        page.add_init_script(FRAMES_AND_SOCKETS_BY_HAND)
        page.goto(base + "/login/")
        expect(page.get_by_test_id("login-username")).to_be_visible()
        page.wait_for_function("window.__sockets() > 0", polling=100)
        page.wait_for_load_state("networkidle")  # mounted: every effect of the first render has run
        page.evaluate("window.__frame()")
        page.evaluate("window.__failSocket()")
        toast = page.locator("[data-sonner-toast]").filter(has_text="不是允许的访问地址")
        expect(toast).to_be_visible()
        for _ in range(3):  # more frames and more failed attempts: the notice stays
            page.evaluate("window.__frame()")
            page.wait_for_function("window.__sockets() > 0", polling=100)  # the page retries
            page.evaluate("window.__failSocket()")
            expect(toast).to_have_count(1)
            expect(toast).to_have_attribute("data-removed", "false")
            expect(toast).to_contain_text(base)
    finally:
        context.close()


def test_the_connection_notice_goes_when_the_connection_comes_back(page, app_server):
    page.add_init_script(FRAMES_AND_SOCKETS_BY_HAND)
    page.goto(app_server.url("/login/"))
    expect(page.get_by_test_id("login-username")).to_be_visible()
    page.wait_for_load_state("networkidle")  # mounted: the notice's effect is listening (as in the test above)
    for _ in range(2):  # an allowed address: the notice comes with the second failed attempt
        page.wait_for_function("window.__sockets() > 0", polling=100)
        page.evaluate("window.__failSocket()")
        page.evaluate("window.__frame()")  # the frames the page asked for meanwhile
    toast = page.locator("[data-sonner-toast]").filter(has_text="无法连接服务器，正在重试")
    expect(toast).to_be_visible()
    expect(page.get_by_test_id("connection-lost")).to_be_visible()
    page.evaluate("window.__release()")  # the next attempt reaches the server
    expect(page.get_by_test_id("connection-lost")).to_have_count(0)
    expect(toast).to_have_count(0)
    page.get_by_test_id("login-username").fill("clerk")
    page.get_by_test_id("login-password").fill("clerk2026")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("role-badge")).to_have_text("内勤")


# --- sign-in redirect (point 5) -------------------------------------------------------------------

@pytest.mark.parametrize("nxt", ["/%5Cevil.example/x", "//evil.example/x", "/%09/evil.example"])
def test_sign_in_never_leaves_the_dashboard(page, app_server, nxt):
    page.goto(app_server.url(f"/login/?next={nxt}"))
    page.get_by_test_id("login-username").fill("clerk")
    page.get_by_test_id("login-password").fill("clerk2026")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("page-title")).to_have_text("工作台")
    assert urlsplit(page.url).netloc == urlsplit(app_server.base_url).netloc


def test_sign_in_returns_to_the_page_asked_for(page, app_server):
    page.goto(app_server.url("/audit/"))
    expect(page).to_have_url(re.compile(r"/login/?\?next="))
    page.get_by_test_id("login-username").fill("admin")
    page.get_by_test_id("login-password").fill("admin2026")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("page-title")).to_have_text("操作日志")


# --- security headers and CSP (point 6) -----------------------------------------------------------

WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
    e => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || '')));
"""


def _violations(page, console: list[str]) -> list[str]:
    reported = page.evaluate("window.__csp")
    refused = [m for m in console if "Refused to" in m or "Content Security Policy" in m]
    return reported + refused


def test_pages_work_under_the_content_security_policy(page, app_server):
    """Sign in, open every section, and do things that make the server push events (toasts):
    no CSP violation is reported. A deliberate inline script at the end proves the watch works."""
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.add_init_script(WATCH_CSP)
    login(page, app_server, "admin", "admin2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    for s in sections_for("admin"):
        page.get_by_test_id(f"nav-{s.key}").click()
        expect(page.get_by_test_id("page-title")).to_have_text(s.label)
        expect(page.get_by_test_id("page-body")).to_be_visible()
        assert _violations(page, console) == [], s.key
    # a server-sent toast (Reflex runs it as an event from the server)
    page.get_by_test_id("nav-staff").click()
    page.get_by_test_id("staff-new").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_placeholder("用户名（小写字母开头，3–32 位）").fill("cspclerk")
    dialog.get_by_placeholder("姓名").fill("韩梅")
    dialog.get_by_test_id("staff-new-role").click()
    page.get_by_role("option", name="内勤").click()
    dialog.get_by_placeholder("初始密码（至少 8 位，含字母和数字）").fill("cspclerk2026")
    dialog.get_by_role("button", name="创建").click()
    expect(page.get_by_text("已创建员工 cspclerk")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("staff-table")).to_be_visible()
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login-username")).to_be_visible()
    assert _violations(page, console) == []
    # the control: markup that sneaks in a script is refused, and the watch sees it
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
                  " document.body.appendChild(s); }")
    assert page.evaluate("window.__ran") is None
    assert any("script-src" in v for v in _violations(page, console))


def test_headers_on_pages_assets_and_api(app_server):
    page = httpx.get(app_server.url("/login/"), timeout=30)
    api = httpx.get(app_server.url("/api/v1/health"), timeout=30)
    icon = httpx.get(app_server.url("/favicon.ico"), timeout=30)
    svg = httpx.get(app_server.url("/favicon.svg"), timeout=30)
    for resp in (page, api, icon, svg):
        assert resp.status_code == 200, resp.request.url
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["referrer-policy"] == "same-origin"
        assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
        assert "strict-transport-security" not in resp.headers  # the e2e app is served over http
    csp = page.headers["content-security-policy"]
    assert "'sha256-" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    # the favicon is served and every page's head links it
    assert icon.headers["content-type"] in ("image/vnd.microsoft.icon", "image/x-icon") and icon.content[:4] == b"\0\0\1\0"
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert re.search(r'<link[^>]*href="/favicon\.ico"[^>]*rel="icon"|<link[^>]*rel="icon"[^>]*href="/favicon\.ico"', page.text)
    assert 'href="/favicon.svg"' in page.text


# --- phone and tablet widths (point 10), toasts (point 12) -----------------------------------------

NARROW = [(390, 844), (768, 1024)]
LIST_PAGES = ["/", "/stock/", "/issuance/", "/orders/", "/ledger/", "/users/", "/staff/", "/partners/", "/audit/", "/sms/"]


@pytest.fixture
def sized(browser, app_server, request):
    width, height = request.param
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai", is_mobile=width < 500, has_touch=width < 500)
    context.set_default_timeout(30_000)
    yield context.new_page(), width, height
    context.close()


@pytest.mark.parametrize("sized", NARROW, indirect=True, ids=[f"{w}x{h}" for w, h in NARROW])
def test_narrow_screens_get_a_menu_drawer_and_no_sideways_page(sized, app_server):
    page, width, height = sized
    login(page, app_server, "admin", "admin2026")
    expect(page.get_by_test_id("page-title")).to_have_text("工作台")
    expect(page.get_by_test_id("sidebar")).to_be_hidden()
    expect(page.get_by_test_id("menu-button")).to_be_visible()
    save_artifact(page, f"narrow-{width}-home.png")
    # the menu opens the drawer with the role's sections; a tap navigates and closes it
    page.get_by_test_id("menu-button").click()
    drawer = page.get_by_test_id("nav-drawer")
    expect(drawer).to_be_visible()
    expect(drawer.locator("[data-testid^='drawer-nav-']")).to_have_count(len(sections_for("admin")))
    save_artifact(page, f"narrow-{width}-drawer.png")
    page.get_by_test_id("drawer-nav-audit").click()
    expect(page.get_by_test_id("page-title")).to_have_text("操作日志")
    expect(page.get_by_test_id("audit-table")).to_be_visible()
    expect(drawer).to_have_count(0)
    assert page.evaluate("getComputedStyle(document.body).pointerEvents") != "none"  # usable again
    # no page scrolls sideways: wide tables scroll inside their own box
    for path in LIST_PAGES:
        page.goto(app_server.url(path))
        expect(page.get_by_test_id("page-body")).to_be_visible()
        page.wait_for_load_state("networkidle")
        scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll_width <= inner_width, (path, scroll_width, inner_width)
        save_artifact(page, f"narrow-{width}{path.rstrip('/').replace('/', '-') or '-home'}.png")
    if width < 500:
        page.goto(app_server.url("/audit/"))
        expect(page.get_by_test_id("audit-row").first).to_be_visible()
        box = page.get_by_test_id("audit-table").evaluate(
            "t => { const s = t.querySelector('.rt-ScrollAreaViewport') || t;"
            " return [s.scrollWidth, s.clientWidth]; }")
        assert box[0] > box[1]  # the log's columns do not fit: its own box scrolls


def test_wide_screens_keep_the_sidebar(page, app_server):
    login(page, app_server, "clerk", "clerk2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    expect(page.get_by_test_id("menu-button")).to_be_hidden()


def _overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and \
        a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


@pytest.mark.parametrize("sized", [(1400, 900), (390, 844)], indirect=True, ids=["1400x900", "390x844"])
def test_toasts_stay_in_the_top_bar_band(sized, app_server):
    """A result toast appears in the band of the (sticky) top bar: it never covers the filters or
    the table headers below it."""
    page, width, _ = sized
    login(page, app_server, "admin", "admin2026")
    expect(page.get_by_test_id("page-title")).to_have_text("工作台")
    page.goto(app_server.url("/staff/"))
    expect(page.get_by_test_id("staff-table")).to_be_visible()
    page.get_by_test_id("staff-new").click()
    dialog = page.get_by_role("dialog")
    name = f"toast{width}"
    dialog.get_by_placeholder("用户名（小写字母开头，3–32 位）").fill(name)
    dialog.get_by_placeholder("姓名").fill("吕芳")
    dialog.get_by_test_id("staff-new-role").click()
    page.get_by_role("option", name="内勤").click()
    dialog.get_by_placeholder("初始密码（至少 8 位，含字母和数字）").fill("toastclerk2026")
    dialog.get_by_role("button", name="创建").click()
    toast = page.locator("[data-sonner-toast]").filter(has_text=f"已创建员工 {name}")
    expect(toast).to_be_visible()
    expect(dialog).to_have_count(0)
    page.wait_for_timeout(500)  # let the toast finish sliding in before measuring it
    save_artifact(page, f"toast-{width}.png")
    t, bar = toast.bounding_box(), page.get_by_test_id("topbar").bounding_box()
    assert t["y"] + t["height"] <= bar["y"] + bar["height"] + 1, (t, bar)
    for head in page.locator("thead").all():
        assert not _overlap(t, head.bounding_box())
