"""One real IPFS node (js-ipfs, Kubo RPC API) per test session, started only if a test asks.

``scripts/install-ipfs.sh`` installs it (a fast no-op once installed). If the install is
impossible (no Node, no registry) the IPFS tests are skipped with the reason printed —
except under CI (``CI`` set) or ``MARKET_REQUIRE_IPFS=1``, where that is a failure.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from market.storage.ipfs import IpfsNodeStore
from market.storage.ipfs_daemon import REPO_ROOT, IpfsDaemon

INSTALL = REPO_ROOT / "scripts" / "install-ipfs.sh"


def _install_or_skip() -> None:
    try:
        done = subprocess.run(
            ["bash", str(INSTALL)], capture_output=True, text=True, timeout=900, check=False
        )
        problem = None if done.returncode == 0 else (done.stderr or done.stdout)[-2000:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = str(exc)
    if problem is None:
        return
    message = f"REAL IPFS NODE UNAVAILABLE: {INSTALL.name} failed:\n{problem}"
    if os.environ.get("CI") or os.environ.get("MARKET_REQUIRE_IPFS") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def ipfs_installed() -> None:
    """js-ipfs is installed in tools/ipfs (or the session skips/fails loudly)."""
    _install_or_skip()


def start_daemon(repo: Path) -> IpfsDaemon:
    """A started daemon on ``repo``; the caller stops it."""
    daemon = IpfsDaemon(repo)
    daemon.start()
    return daemon


@pytest.fixture(scope="session")
def ipfs_node(
    ipfs_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IpfsDaemon]:
    """The session's IPFS daemon: ``ipfs_node.api_url`` is its RPC API URL."""
    daemon = start_daemon(tmp_path_factory.mktemp("ipfs") / "repo")
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def ipfs_store(ipfs_node: IpfsDaemon) -> Iterator[IpfsNodeStore]:
    """An :class:`IpfsNodeStore` on the session's node."""
    store = IpfsNodeStore(ipfs_node.api_url)
    try:
        yield store
    finally:
        store.close()
