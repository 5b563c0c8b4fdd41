"""Browser tests: the app is started exactly as the README starts it (scripts/run.sh), on a
free port with its own SQLite file, and driven with Playwright on Debian's /usr/bin/chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("GC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"]
START_TIMEOUT = float(os.environ.get("GC_E2E_START_TIMEOUT", "600"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningApp:
    def __init__(self, base_url: str, proc: subprocess.Popen, log: Path) -> None:
        self.base_url = base_url
        self.proc = proc
        self.log = log

    def url(self, path: str) -> str:
        return self.base_url + path

    def staff_token(self, username: str = "admin", password: str = "admin2026") -> str:
        r = httpx.post(self.url("/api/v1/admin/auth/login"), json={"username": username, "password": password}, timeout=30)
        r.raise_for_status()
        return r.json()["token"]


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (the CI script does)")
    port = _free_port()
    data = tmp_path_factory.mktemp("e2e")
    log = ARTIFACTS / "e2e-app.log"
    ARTIFACTS.mkdir(exist_ok=True)
    env = {**os.environ, "GC_PORT": str(port), "GC_DATABASE_URL": f"sqlite:///{data / 'e2e.db'}", "GC_ENV": "dev",
           "GC_UPLOAD_DIR": str(data / "uploads"), "GC_LOGLEVEL": "info",
           "GC_SIM_REFUND_SECONDS": "0"}  # the tests finish refunds when they choose (/sim/wechatpay/_refund)
    with open(log, "w") as fh:
        proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "run.sh")], cwd=ROOT, env=env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://localhost:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    ready = False
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(base + "/login/", timeout=5).status_code == 200:
                ready = True
                break
        except httpx.HTTPError:
            pass
        time.sleep(2)
    if not ready:
        _stop(proc)
        pytest.fail(f"app did not start within {START_TIMEOUT:.0f}s; log:\n{log.read_text()[-4000:]}")
    try:
        yield RunningApp(base, proc, log)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_server):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    context.set_default_timeout(30_000)
    pg = context.new_page()
    yield pg
    context.close()


def login(page, app_server: RunningApp, username: str, password: str) -> None:
    page.goto(app_server.url("/login/"))
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()


def save_artifact(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


