#!/usr/bin/env bash
# Install the real IPFS node used by the tests and `--store ipfs`: js-ipfs 0.66.1 from npm,
# in tools/ipfs/ (its own package.json + package-lock.json; see that package.json for why
# the overrides). Idempotent: a stamp keyed on the lock file's hash makes a second run a
# fast no-op. Kubo's npm packages download a binary at install time, which cannot work
# here, so js-ipfs (which speaks the same Kubo RPC API) is the node we can install.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/tools/ipfs"
stamp="$dir/node_modules/.install-stamp"
cli="$dir/node_modules/ipfs/src/cli.js"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-ipfs: node and npm are required (Node >= 20); install Node.js first." >&2
  exit 1
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "install-ipfs: Node $(node --version) is too old: js-ipfs needs Node >= 20." >&2
  exit 1
fi

want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ -f "$cli" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "install-ipfs: installing js-ipfs into tools/ipfs (npm ci; a minute or more cold)..." >&2
(cd "$dir" && npm ci --omit=optional --no-audit --no-fund --loglevel=error)
test -f "$cli" || { echo "install-ipfs: npm ci finished but $cli is missing." >&2; exit 1; }
echo "$want" > "$stamp"
echo "install-ipfs: done." >&2
