#!/usr/bin/env bash
# Set up exactly as the run command does, then run the whole test suite:
#   1. unit + API + PostgreSQL tests (PostgreSQL ones run when GC_TEST_PG_URL is set)
#   2. browser tests in their own pytest run, against the app started by scripts/run.sh
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
bash scripts/setup.sh || exit 1
export GC_ENV=test

status=0
echo "==> unit, API and database tests"
python -m pytest tests/unit -q "$@" || status=$?
echo "==> browser tests (Playwright + /usr/bin/chromium)"
python -m pytest tests/e2e -q -p no:randomly --ignore=tests/e2e/test_scaleout.py "$@" || { rc=$?; [ $status -eq 0 ] && status=$rc; }
echo "==> multi-process tests (PostgreSQL + Redis + several workers, nginx; they start and stop whole clusters)"
python -m pytest tests/e2e/test_scaleout.py -q -p no:randomly "$@" || { rc=$?; [ $status -eq 0 ] && status=$rc; }
exit $status
