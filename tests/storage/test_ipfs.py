"""``IpfsNodeStore`` against a real IPFS node: round trips, verification, limits, errors."""

from __future__ import annotations

import os
import socket
import time
import tracemalloc
from pathlib import Path

import httpx
import pytest

from market.errors import ConfigError, IntegrityError, StorageError
from market.storage import (
    Store,
    TooLargeError,
    cid_from_digest,
    cid_of,
    normalize_cid,
    open_store,
)
from market.storage.cid import b58encode, parse_cid
from market.storage.ipfs import IpfsNodeStore, NodeUnavailableError
from market.storage.ipfs_daemon import IpfsDaemon
from market.storage.resolve import get_by_digest

CHUNK = 256 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def block_file(repo: Path, content: bytes) -> Path:
    """The node's on-disk file holding exactly ``content`` (one block)."""
    for path in (repo / "blocks").rglob("*.data"):
        if path.stat().st_size == len(content) and path.read_bytes() == content:
            return path
    raise AssertionError("block not found in the node's repo")


def flip_byte(path: Path, offset: int = 0) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_is_a_store(ipfs_store: IpfsNodeStore) -> None:
    assert isinstance(ipfs_store, Store)
    assert ipfs_store.version()


@pytest.mark.parametrize("size", [0, 1, CHUNK + 1, 3 * 1024 * 1024 + 5])
def test_put_get_round_trip(ipfs_store: IpfsNodeStore, size: int) -> None:
    data = os.urandom(size)
    cid = ipfs_store.put(data)
    assert cid == cid_of(data)
    assert cid.startswith("bafkrei" if size <= CHUNK else "bafybei")
    assert ipfs_store.has(cid)
    assert ipfs_store.get(cid) == data


def test_put_pins(ipfs_store: IpfsNodeStore) -> None:
    cid = ipfs_store.put(os.urandom(1000))
    r = httpx.post(f"{ipfs_store.api_url}/api/v0/pin/ls", params={"arg": cid})
    assert r.status_code == 200
    assert [normalize_cid(k) for k in r.json()["Keys"]] == [cid]
    ipfs_store.pin(cid)  # idempotent


def test_get_accepts_base58_spellings(ipfs_store: IpfsNodeStore) -> None:
    data = os.urandom(CHUNK + 10)
    cid = ipfs_store.put(data)
    info = parse_cid(cid)
    base58 = "z" + b58encode(bytes([1, 0x70, 0x12, 0x20]) + info.digest)
    assert ipfs_store.get(base58) == data
    assert ipfs_store.has(base58)


def test_cidv0_content_is_verified_block_by_block(ipfs_node: IpfsDaemon) -> None:
    """A blob the node added with its old defaults (CIDv0, dag-pb leaves) still reads."""
    data = os.urandom(CHUNK * 2 + 3)
    r = httpx.post(
        f"{ipfs_node.api_url}/api/v0/add", files={"file": ("f", data)}, timeout=60
    ).json()
    assert r["Hash"].startswith("Qm")
    with IpfsNodeStore(ipfs_node.api_url) as store:
        assert store.get(r["Hash"]) == data


def test_has_is_false_and_quick_for_missing(ipfs_store: IpfsNodeStore) -> None:
    start = time.monotonic()
    assert not ipfs_store.has(cid_of(b"never added " + os.urandom(8)))
    assert not ipfs_store.has(cid_of(os.urandom(CHUNK + 1)))
    assert time.monotonic() - start < 5


def test_get_missing_is_a_clear_error(ipfs_node: IpfsDaemon) -> None:
    with IpfsNodeStore(ipfs_node.api_url, timeout=1.5) as store:
        missing = cid_of(b"not on the node " + os.urandom(8))
        with pytest.raises(StorageError, match="not available on the node"):
            store.get(missing)
        with pytest.raises(StorageError, match="not available on the node"):
            store.pin(missing)


def test_size_limit_refuses_before_reading(ipfs_store: IpfsNodeStore) -> None:
    small = ipfs_store.put(os.urandom(5000))
    big = ipfs_store.put(os.urandom(CHUNK * 3))
    with pytest.raises(TooLargeError, match="over the limit"):
        ipfs_store.get(small, max_size=4999)
    with pytest.raises(TooLargeError, match="over the limit"):
        ipfs_store.get(big, max_size=CHUNK * 3 - 1)
    assert len(ipfs_store.get(big, max_size=CHUNK * 3)) == CHUNK * 3


def test_tampered_raw_block_on_the_node_is_detected(
    ipfs_node: IpfsDaemon, ipfs_store: IpfsNodeStore
) -> None:
    data = os.urandom(4096)
    cid = ipfs_store.put(data)
    flip_byte(block_file(ipfs_node.repo, data), 100)
    with pytest.raises(IntegrityError, match=cid):
        ipfs_store.get(cid)


def test_tampered_leaf_of_a_chunked_blob_is_detected(
    ipfs_node: IpfsDaemon, ipfs_store: IpfsNodeStore
) -> None:
    data = os.urandom(CHUNK * 2 + 777)
    cid = ipfs_store.put(data)
    flip_byte(block_file(ipfs_node.repo, data[CHUNK * 2 :]), 5)
    with pytest.raises(IntegrityError, match="does not match its CID"):
        ipfs_store.get(cid)


def test_node_down_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with IpfsNodeStore(url, timeout=2, retries=2, backoff=0.01) as store:
        for call in (
            lambda: store.put(b"x"),
            lambda: store.get(cid_of(b"x")),
            lambda: store.has(cid_of(b"x")),
        ):
            with pytest.raises(NodeUnavailableError) as err:
                call()
            assert url in str(err.value)
            assert "unreachable" in str(err.value)
            assert "scripts/ipfs-node.sh start" in str(err.value)
            assert "3 tries" in str(err.value)


def test_open_store_gives_the_node_backend(ipfs_node: IpfsDaemon, tmp_path: Path) -> None:
    store = open_store(f"ipfs:{ipfs_node.api_url}", tmp_path)
    assert isinstance(store, IpfsNodeStore)
    data = os.urandom(CHUNK + 5)
    assert store.get(store.put(data)) == data


def test_get_by_digest_single_block_through_the_node(ipfs_store: IpfsNodeStore) -> None:
    data = os.urandom(1000)
    cid = ipfs_store.put(data)
    assert get_by_digest(ipfs_store, parse_cid(cid).digest) == (cid, data)


def test_node_keys_blocks_by_multihash(ipfs_store: IpfsNodeStore) -> None:
    """On a node, the raw CID carrying a dag-pb root's digest names that same root block."""
    cid = ipfs_store.put(os.urandom(CHUNK + 9))
    raw_twin = cid_from_digest(parse_cid(cid).digest, "raw")
    assert ipfs_store.has(raw_twin)
    assert len(ipfs_store.get(raw_twin)) < 200  # the root node's bytes, not the file


def test_get_by_digest_chunked_through_the_node(ipfs_store: IpfsNodeStore) -> None:
    data = os.urandom(CHUNK + 9)
    cid = ipfs_store.put(data)
    assert get_by_digest(ipfs_store, parse_cid(cid).digest) == (cid, data)


def test_has_checks_every_block_of_an_unpinned_blob(ipfs_store: IpfsNodeStore) -> None:
    data = os.urandom(CHUNK * 2 + 11)
    api = f"{ipfs_store.api_url}/api/v0"
    params = {"cid-version": "1", "raw-leaves": "true", "cid-base": "base32", "pin": "false"}
    r = httpx.post(f"{api}/add", params=params, files={"file": ("f", data)}, timeout=60)
    cid = normalize_cid(r.json()["Hash"])
    assert cid == cid_of(data)
    assert ipfs_store.has(cid)
    leaf = cid_of(data[CHUNK : 2 * CHUNK])
    assert httpx.post(f"{api}/block/rm", params={"arg": leaf}).status_code == 200
    assert not ipfs_store.has(cid)


def test_put_streams_without_copying_and_get_holds_at_most_two_copies(
    ipfs_store: IpfsNodeStore,
) -> None:
    size = 20 * 1024 * 1024
    data = os.urandom(size)
    tracemalloc.start()
    try:
        cid = ipfs_store.put(data)
        put_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        back = ipfs_store.get(cid)
        get_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert back == data
    assert put_peak < size // 4  # the upload is streamed from the caller's buffer
    assert get_peak < 2.2 * size  # chunks + the joined result, briefly


def test_api_url_forms() -> None:
    assert IpfsNodeStore("127.0.0.1:5001").api_url == "http://127.0.0.1:5001"
    assert IpfsNodeStore("http://127.0.0.1:5001/api/v0/").api_url == "http://127.0.0.1:5001"
    with pytest.raises(ConfigError, match="invalid IPFS API URL"):
        IpfsNodeStore("http://")
