#!/usr/bin/env bash
# Install what the browser tests need, idempotently, without downloading a browser build:
# Debian's Chromium (apt) and the Python `playwright` package (its driver only; the tests
# point it at /usr/bin/chromium). Safe to run again: each step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  if ! $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; then
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null
  fi
fi
/usr/bin/chromium --version 2>/dev/null

if ! "$PY" -c "import playwright" >/dev/null 2>&1; then
  # Never `playwright install`: the tests launch /usr/bin/chromium.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$PY" -m pip install -q --disable-pip-version-check \
    "playwright>=1.40"
fi
"$PY" -c "from importlib.metadata import version; print('playwright', version('playwright'))"
