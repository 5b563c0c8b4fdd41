"""The production shape on one machine, for the scale-out tests and the load bench: a PostgreSQL database of its
own, a Redis database number, app instances started as the README says (``scripts/run.sh`` with
``GC_DATABASE_URL``, ``GC_REDIS_URL``, ``GC_WORKERS``) or backend-only, and nginx in front with the repo's
``deploy/nginx.conf.template``. Everything is torn down (processes by their group, the database dropped, the
Redis database flushed) when the context ends."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import string
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PG_URL = os.environ.get("GC_TEST_PG_URL", "")
REDIS_URL = os.environ.get("GC_TEST_REDIS_URL", "")
#: The Redis database number these processes own (Reflex's sessions, the simulators), flushed at the end.
REDIS_DB = int(os.environ.get("GC_SCALE_REDIS_DB", "11"))
START_TIMEOUT = float(os.environ.get("GC_E2E_START_TIMEOUT", "900"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_url() -> str:
    base = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.count("/") > 2 else REDIS_URL.rstrip("/")
    return f"{base}/{REDIS_DB}"


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A new PostgreSQL database (migrated), dropped afterwards."""
    from tests.support import scratch_pg

    name = f"gc_scale_{uuid.uuid4().hex[:10]}"
    yield from scratch_pg(PG_URL, url=PG_URL.rsplit("/", 1)[0] + "/" + name, create=f'CREATE DATABASE "{name}"',
                          drop=f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(redis_url()).flushdb()


class App:
    """One running app instance (a process group) and its log."""

    def __init__(self, name: str, port: int, proc: subprocess.Popen, log: Path) -> None:
        self.name, self.port, self.proc, self.log = name, port, proc, log
        self.base_url = f"http://127.0.0.1:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def log_records(self) -> list[dict]:
        """The app's JSON log lines (other output skipped)."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def stop(self) -> int | None:
        """SIGTERM to the group (graceful), SIGKILL after 30 s; the exit status."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode


def app_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GC_", "REFLEX_", "GRANIAN_"))}
    env.update({"GC_ENV": "dev", "GC_PORT": str(port), "GC_DATABASE_URL": database_url, "GC_REDIS_URL": redis_url(),
                "GC_LOG_FORMAT": "json", "GC_LOGLEVEL": "info", "GC_SIM_REFUND_SECONDS": "0", "GC_UPLOAD_DIR": str(ARTIFACTS / f"uploads-{port}"),
                "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def start(name: str, database_url: str, *, workers: int, backend_only: bool = False, origins: list[str] = (),
          **extra: str) -> App:
    """Start an instance: ``scripts/run.sh`` (the README's command) or, ``backend_only``, ``reflex run
    --backend-only`` (API, websocket events, no pages: for API journeys behind a proxy)."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / f"scale-{name}.log"
    env = app_env(database_url, port, GC_WORKERS=str(workers), **extra)
    if origins:  # the dev defaults (this port on the loopback names) plus where a proxy serves the app
        env["GC_CORS_ORIGINS"] = ",".join([f"http://localhost:{port}", f"http://127.0.0.1:{port}", *origins])
    if backend_only:
        env["PATH"] = f"{ROOT / '.tools/node_modules/.bin'}:{ROOT / '.venv/bin'}:{env['PATH']}"
        env["GRANIAN_WORKERS"] = str(workers)
        cmd = [str(ROOT / ".venv/bin/reflex"), "run", "--env", "prod", "--backend-only", "--backend-port", str(port),
               "--loglevel", "info"]
    else:
        cmd = ["bash", str(ROOT / "scripts" / "run.sh")]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    app = App(name, port, proc, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(app.url("/api/v1/health"), timeout=5).status_code == 200:
                return app
        time.sleep(1)
    app.stop()
    raise RuntimeError(f"{name} did not start; log:\n{log.read_text(errors='replace')[-4000:]}")


class Nginx:
    def __init__(self, port: int, proc: subprocess.Popen, prefix: Path) -> None:
        self.port, self.proc, self.prefix = port, proc, prefix
        self.base_url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def render_nginx(listen: str, upstreams: list[str]) -> str:
    """deploy/nginx.conf.template with its two variables filled in (what ``envsubst`` does in a deployment)."""
    template = (ROOT / "deploy" / "nginx.conf.template").read_text()
    servers = " ".join(f"server {u} max_fails=1 fail_timeout=5s;" for u in upstreams)
    return string.Template(template).safe_substitute(GC_LISTEN=listen, GC_UPSTREAM_SERVERS=servers)


def start_nginx(upstreams: list[str], workdir: Path, *, port: int | None = None) -> Nginx:
    """Debian's nginx, unprivileged, with the repo's server block included from a minimal main config."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = port or free_port()
    prefix = workdir / "nginx"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    (prefix / "gc_admin.conf").write_text(render_nginx(f"127.0.0.1:{port}", upstreams))
    temp = prefix / "tmp"
    temp.mkdir(exist_ok=True)
    (prefix / "nginx.conf").write_text(f"""
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {prefix}/gc_admin.conf;
}}
""")
    proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf")], stdout=subprocess.DEVNULL,
                            stderr=open(prefix / "logs" / "stderr.log", "w"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((prefix / "logs" / "stderr.log").read_text() + (prefix / "logs/error.log").read_text())
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return Nginx(port, proc, prefix)
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("nginx did not start")
