#!/usr/bin/env bash
# Idempotent set-up: virtualenv + pinned Python deps, Node 22 + Bun 1.4.4 from the npm registry
# into .tools/ (git-ignored). Re-running is fast: each step is skipped when already satisfied.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

NODE_VERSION=22.23.3
BUN_VERSION=1.4.4

pick_python() {
  for py in "${PYTHON:-}" python3.12 python3.11 python3; do
    [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then echo "$py"; return; fi
  done
  echo "Python >= 3.11 is required" >&2; exit 1
}

if [ ! -x .venv/bin/python ]; then
  echo "==> creating virtualenv"
  "$(pick_python)" -m venv .venv
fi

want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat .venv/.requirements.sha256 2>/dev/null || true)" != "$want" ]; then
  echo "==> installing Python dependencies"
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install --quiet -r requirements.txt
  echo "$want" > .venv/.requirements.sha256
fi

have_node=$(.tools/node_modules/.bin/node --version 2>/dev/null || true)
have_bun=$(.tools/node_modules/.bin/bun --version 2>/dev/null || true)
if [ "$have_node" != "v$NODE_VERSION" ] || [ "$have_bun" != "$BUN_VERSION" ]; then
  echo "==> installing node@$NODE_VERSION and bun@$BUN_VERSION from the npm registry into .tools/"
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --loglevel=error "node@$NODE_VERSION" "bun@$BUN_VERSION" >/dev/null
fi
