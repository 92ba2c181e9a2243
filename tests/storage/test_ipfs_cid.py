"""The embedded store and a real IPFS node give the same CID for the same bytes, at any size.

The node is asked directly over its RPC API (not through ``IpfsNodeStore``, which itself
checks this), with the add flags the issue names: ``--cid-version 1 --raw-leaves``.
"""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.storage import EmbeddedStore, cid_of
from market.storage.ipfs_daemon import IpfsDaemon

KIB = 1024
MIB = 1024 * KIB
CHUNK = 256 * KIB

# Computed by the js-ipfs node (ipfs add --cid-version 1 --raw-leaves) and pinned here.
NODE_VECTORS = [
    (b"learning-market\n", "bafkreifk5m7tjedrjwi2j7fsfbwsptmkuwq2jjhvcadlifdl6dvz24ctbe"),
    (bytes(CHUNK + 1), "bafybeigllfqgfpqydppr6cmv56g7ax4wyhruzswvcefv6j5kj77nzttfki"),
    (
        bytes(i % 251 for i in range(MIB + 7)),
        "bafybeifofps7oqlveyur54t4opj4y6jhjlyc5du6zqjlf6lhakt2w2c25u",
    ),
]


def node_add(api_url: str, data: bytes, **flags: str) -> str:
    """``ipfs add --cid-version 1 --raw-leaves`` (only-hash unless asked) on the real node."""
    params = {"cid-version": "1", "raw-leaves": "true", "cid-base": "base32", **flags}
    r = httpx.post(
        f"{api_url}/api/v0/add", params=params, files={"file": ("blob", data)}, timeout=300
    )
    r.raise_for_status()
    return r.text.strip().splitlines()[-1].split('"Hash":"')[1].split('"')[0]


def blob(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def assert_same_cid(api_url: str, data: bytes, store: EmbeddedStore) -> None:
    node = node_add(api_url, data)
    assert cid_of(data) == node
    assert store.put(data) == node


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, MIB],
    ids=["0", "1", "256KiB-1", "256KiB", "256KiB+1", "1MiB"],
)
def test_embedded_cid_equals_node_cid(ipfs_node: IpfsDaemon, tmp_path: Path, size: int) -> None:
    assert_same_cid(ipfs_node.api_url, blob(size), EmbeddedStore(tmp_path / "store"))


@pytest.mark.slow
@pytest.mark.parametrize("size", [10 * MIB, 50 * MIB], ids=["10MiB", "50MiB"])
def test_embedded_cid_equals_node_cid_large(
    ipfs_node: IpfsDaemon, tmp_path: Path, size: int
) -> None:
    # 50 MiB = 200 chunks: past 174 links, so the node builds a two-level balanced tree.
    assert_same_cid(ipfs_node.api_url, blob(size), EmbeddedStore(tmp_path / "store"))


@pytest.mark.parametrize("data,cid", NODE_VECTORS, ids=["text", "zeros-256KiB+1", "1MiB+7"])
def test_known_vectors_computed_by_the_node(ipfs_node: IpfsDaemon, data: bytes, cid: str) -> None:
    assert node_add(ipfs_node.api_url, data, **{"only-hash": "true"}) == cid
    assert cid_of(data) == cid


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    size=st.one_of(
        st.integers(0, 3 * CHUNK),  # around the one-block / two-block boundary
        st.integers(0, 4 * MIB),
        st.sampled_from([CHUNK * k + d for k in (1, 2, 3, 4) for d in (-1, 0, 1)]),
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_sizes_match_the_node(ipfs_node: IpfsDaemon, size: int, seed: int) -> None:
    data = random.Random(seed).randbytes(size)
    assert cid_of(data) == node_add(ipfs_node.api_url, data, **{"only-hash": "true"})
