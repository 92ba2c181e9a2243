"""One real IPFS node (js-ipfs, Kubo RPC API) per test session, started only if a test asks.

``scripts/install-ipfs.sh`` installs it (a fast no-op once installed). If the install is
impossible (no Node, no registry) the IPFS tests are skipped with the reason printed —
except under CI (``CI`` set) or ``MARKET_REQUIRE_IPFS=1``, where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from market.errors import ConfigError
from market.storage.ipfs import IpfsNodeStore
from market.storage.ipfs_daemon import IpfsDaemon, install_node


def _install_or_skip() -> None:
    try:
        install_node()
    except ConfigError as exc:
        message = f"REAL IPFS NODE UNAVAILABLE: {exc}"
        if os.environ.get("CI") or os.environ.get("MARKET_REQUIRE_IPFS") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def ipfs_installed() -> None:
    """js-ipfs is installed in tools/ipfs (or the session skips/fails loudly)."""
    _install_or_skip()


@pytest.fixture(scope="session")
def ipfs_node(
    ipfs_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IpfsDaemon]:
    """The session's IPFS daemon: ``ipfs_node.api_url`` is its RPC API URL."""
    with IpfsDaemon(tmp_path_factory.mktemp("ipfs") / "repo") as daemon:
        yield daemon


@pytest.fixture
def ipfs_store(ipfs_node: IpfsDaemon) -> Iterator[IpfsNodeStore]:
    """An :class:`IpfsNodeStore` on the session's node."""
    store = IpfsNodeStore(ipfs_node.api_url)
    try:
        yield store
    finally:
        store.close()
