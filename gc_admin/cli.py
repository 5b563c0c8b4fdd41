"""Management commands: ``python -m gc_admin <command>``.

  migrate            alembic upgrade head on GC_DATABASE_URL
  demo [--force]     load demo data if the database has no staff yet (refused in prod)
  logins             print the demo sign-ins
  create-staff       create a staff account (asks for the password on stdin if not given;
                     --programme CODE for an insurer's account)
  jobs               run every periodic job once, here and now (a manual sweep; the task queue runs them)
  worker             run the task queue (PostgreSQL: periodic jobs, deferred tasks) until SIGTERM
  check-config       validate the environment (what prod refuses, GC_WORKERS > 1 without GC_REDIS_URL)
                     and print the settings
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from gc_admin.config import ConfigError, get_settings


def migrate(url: str | None = None) -> None:
    from alembic import command
    from alembic.config import Config

    from gc_admin.config import PROJECT_ROOT

    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    cfg.attributes["configure_logger"] = False
    if url:
        cfg.attributes["url"] = url
    command.upgrade(cfg, "head")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gc_admin")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("migrate")
    demo = sub.add_parser("demo")
    demo.add_argument("--force", action="store_true", help="load even if staff accounts exist")
    sub.add_parser("logins")
    cs = sub.add_parser("create-staff")
    cs.add_argument("username")
    cs.add_argument("--name", required=True)
    cs.add_argument("--role", required=True)
    cs.add_argument("--password")
    cs.add_argument("--programme", help="insurer accounts: the programme code they act for (e.g. picc_gx)")
    sub.add_parser("check-config")
    sub.add_parser("jobs", help="run every periodic job once (expiry, unpaid-order cancel, ...) here and now")
    wk = sub.add_parser("worker", help="run the background task queue (PostgreSQL); SIGTERM stops it gracefully")
    wk.add_argument("--concurrency", type=int, default=2, help="tasks run at once (default 2)")
    args = parser.parse_args(argv)

    try:
        settings = get_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2

    if args.cmd == "migrate":
        migrate()
        print("database is at the latest migration")
    elif args.cmd == "demo":
        from gc_admin import demo as demo_data

        if settings.env == "prod":
            print("refusing to load demo data with GC_ENV=prod", file=sys.stderr)
            return 2
        loaded = demo_data.load_if_empty(force=args.force)
        print("demo data loaded" if loaded else "database already has data; demo data not loaded")
    elif args.cmd == "logins":
        from gc_admin import demo as demo_data

        print(demo_data.logins_text(settings.public_url))
    elif args.cmd == "create-staff":
        from gc_admin.accounts.service import create_staff
        from gc_admin.audit.service import Actor
        from gc_admin.core.errors import DomainError
        from gc_admin.db import session_scope

        password = args.password or getpass.getpass("password: ")
        try:
            with session_scope() as s:
                create_staff(s, actor=Actor("system", None, "命令行"), username=args.username, display_name=args.name,
                             password=password, role=args.role, programme_code=args.programme)
        except DomainError as exc:
            print(exc.message, file=sys.stderr)
            return 2
        print(f"created {args.username}")
    elif args.cmd == "jobs":
        from gc_admin.jobs import JOBS, run_once

        for job in JOBS:
            print(f"{job.name}: {run_once(job)}")
    elif args.cmd == "worker":
        import asyncio

        import gc_admin.tasks  # noqa: F401  (registers every task)
        from gc_admin.core.tasks import in_process, run_worker

        if in_process():
            print("GC_DATABASE_URL is SQLite: the app runs its tasks in its own process; the worker needs PostgreSQL",
                  file=sys.stderr)
            return 2
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        asyncio.run(run_worker(concurrency=max(1, args.concurrency)))
    elif args.cmd == "check-config":
        print(f"env={settings.env} db={settings.database_url.split('@')[-1]} sms={settings.sms_provider} "
              f"wechat={settings.wechat_base_url} host={settings.host} "
              f"simulators={'on' if settings.simulators_enabled else 'off'} cors={','.join(settings.cors_origins)} "
              f"redis={settings.redis_url.split('@')[-1].split('//')[-1] or 'none'} "
              f"workers={settings.workers or 'reflex default'} logs={settings.log_format}")
    return 0
