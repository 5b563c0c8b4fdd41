#!/usr/bin/env bash
# Set up, migrate, load demo data into an empty database, build and serve in production mode.
#   GC_PORT (default 8000), GC_DATABASE_URL (default SQLite under data/), GC_ENV (default dev),
#   GC_HOST (default 127.0.0.1 in dev: only this machine can reach the demo and its simulators;
#   rxconfig.py hands it to Reflex as backend_host), GC_REDIS_URL (Reflex's state manager; needed for
#   GC_WORKERS > 1), GC_WORKERS (backend worker processes; default Reflex's own: 1 without Redis,
#   cpu x 2 + 1 with it)
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
python -m gc_admin migrate
if [ "${GC_ENV:-dev}" != "prod" ]; then
  python -m gc_admin demo
fi
echo
python -m gc_admin logins
echo "(building the frontend on first start takes a minute or two)"
echo
exec reflex run --env prod --frontend-port "$PORT" --backend-port "$PORT" --loglevel "${GC_LOGLEVEL:-warning}"
