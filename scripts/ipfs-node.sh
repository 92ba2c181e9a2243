#!/usr/bin/env bash
# A local IPFS node (js-ipfs, Kubo RPC API) for `--store ipfs`, left running in the background.
#   scripts/ipfs-node.sh start    install if needed, start on 127.0.0.1:${IPFS_API_PORT:-5001}
#   scripts/ipfs-node.sh status   exit 0 if running, 3 if not
#   scripts/ipfs-node.sh stop
# The repo (pins survive restarts) is ${IPFS_NODE_REPO:-.market/ipfs}; its log is daemon.log.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  start) "$root/scripts/install-ipfs.sh" ;;
  stop|status) ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
py="$root/.venv/bin/python"
[ -x "$py" ] || py="$(command -v python3)"
cd "$root"
exec "$py" -m market.storage.ipfs_daemon "$@"
