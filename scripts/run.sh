#!/usr/bin/env bash
# Set up, migrate, load demo data into an empty database, build and serve in production mode.
#   GC_PORT (default 8000), GC_DATABASE_URL (default SQLite under data/), GC_ENV (default dev),
#   GC_HOST (default 127.0.0.1 in dev: only this machine can reach the demo and its simulators;
#   rxconfig.py hands it to Reflex as backend_host), GC_REDIS_URL (Reflex's state manager; needed for
#   GC_WORKERS > 1), GC_WORKERS (backend worker processes; default Reflex's own: 1 without Redis,
#   cpu x 2 + 1 with it)
# With GC_DATABASE_URL=postgresql+psycopg://... one task worker (python -m gc_admin worker) runs beside the app;
# on SQLite the app runs its background tasks in its own process.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
bash scripts/setup.sh

PORT="${GC_PORT:-8000}"
export GC_PORT="$PORT"
if [ -n "${GC_WORKERS:-}" ]; then
  export GRANIAN_WORKERS="$GC_WORKERS"  # Reflex serves with Granian; this is its worker count
fi
python -m gc_admin check-config
# Several workers (Redis on, GC_WORKERS not 1): on Linux each Granian worker listens on a socket of its own
# (SO_REUSEPORT). When one dies, the connections the kernel had queued on its socket are reset, unless
# net.ipv4.tcp_migrate_req is 1 (Linux 5.14+): then the kernel hands them to a live worker. Switched on here when
# this user may (it is the network namespace's setting); otherwise say how.
MIGRATE=/proc/sys/net/ipv4/tcp_migrate_req
if [ -n "${GC_REDIS_URL:-}" ] && [ "${GC_WORKERS:-}" != 1 ] && [ -r "$MIGRATE" ] && [ "$(cat "$MIGRATE")" != 1 ]; then
  if (echo 1 > "$MIGRATE") 2>/dev/null; then
    echo "==> net.ipv4.tcp_migrate_req=1: requests queued at a worker that dies are served by the others"
  else
    echo "warning: net.ipv4.tcp_migrate_req is 0: requests queued at a worker that dies are reset;" \
         "run: sysctl -w net.ipv4.tcp_migrate_req=1 (and deploy/sysctl.d/60-gc-admin.conf)" >&2
  fi
fi
python -m gc_admin migrate
if [ "${GC_ENV:-dev}" != "prod" ]; then
  python -m gc_admin demo
fi
echo
python -m gc_admin logins
echo "(building the frontend on first start takes a minute or two)"
echo
RUN=(reflex run --env prod --frontend-port "$PORT" --backend-port "$PORT" --loglevel "${GC_LOGLEVEL:-warning}")
if [[ "${GC_DATABASE_URL:-}" == postgresql* ]]; then
  # PostgreSQL: background tasks (periodic jobs, imports, refund retries, notices) run in a worker process of
  # their own beside the app. One that dies (OOM-killed, kill -9) is started again after 2 s (its job is found
  # stalled and run again: nothing lost, nothing twice); stopping the app stops it gracefully (SIGTERM: the
  # running task finishes first).
  supervise_worker() {
    local pid="" stopping=0
    trap 'stopping=1; [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; exit 0' TERM INT
    while :; do
      python -m gc_admin worker &
      pid=$!
      rc=0
      wait "$pid" || rc=$?
      [ "$stopping" = 1 ] && exit 0
      echo "gc_admin worker exited (status $rc): starting another in 2 s" >&2
      sleep 2
    done
  }
  supervise_worker &
  WORKER=$!
  "${RUN[@]}" &
  APP=$!
  stop() { kill -TERM "$APP" "$WORKER" 2>/dev/null || true; wait "$APP" "$WORKER" 2>/dev/null || true; }
  trap 'stop; exit 143' TERM
  trap 'stop; exit 130' INT
  status=0
  wait "$APP" || status=$?
  kill -TERM "$WORKER" 2>/dev/null || true
  wait "$WORKER" || true
  exit "$status"
fi
exec "${RUN[@]}"
