import os
from pathlib import Path

import numpy as np
import pytest

from market.errors import ConfigError, IntegrityError, StorageError
from market.storage import EmbeddedStore, Store, cid_of, open_store
from market.storage.embedded import atomic_write
from market.storage.unixfs import CHUNK_SIZE, MissingBlockError, TooLargeError, build_dag


def blob(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).bytes(n)


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "store")


def leaf_files(store: EmbeddedStore, root: str) -> list[Path]:
    return [p for p in store.blocks_dir.rglob("*") if p.is_file() and p.name != root]


@pytest.mark.parametrize("n", [0, 10, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 5])
def test_put_get_round_trip_with_ipfs_cids(store, n):
    data = blob(n, n)
    cid = store.put(data)
    assert cid == cid_of(data)
    assert store.has(cid)
    assert store.get(cid) == data


def test_put_is_idempotent_and_blocks_are_sharded(store):
    data = blob(2 * CHUNK_SIZE + 1)
    root, blocks = build_dag(data)
    assert store.put(data) == store.put(data) == root
    files = sorted(p for p in store.blocks_dir.rglob("*") if p.is_file())
    assert sorted(p.name for p in files) == sorted(blocks)
    for p in files:
        assert p.parent.name == p.name[-3:-1]
        assert p.read_bytes() == blocks[p.name]


def test_base58_and_v0_lookups_resolve(store):
    data = b"hello world"
    store.put(data)
    assert store.get("zb2rhj7crUKTQYRGCRATFaQ6YFLTde2YzdqbbhAASkL9uRDXn") == data


def test_flipped_byte_in_leaf_raises_integrity_error_naming_it(store):
    data = blob(CHUNK_SIZE + 100)
    root = store.put(data)
    victim = leaf_files(store, root)[0]
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match=victim.name):
        store.get(root)


def test_flipped_byte_in_root_raises(store):
    root = store.put(blob(CHUNK_SIZE + 100))
    path = store.block_path(root)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match=root):
        store.get(root)


def test_truncated_or_grown_block_raises_integrity_error(store):
    data = blob(CHUNK_SIZE + 100)
    root = store.put(data)
    victim = max(leaf_files(store, root), key=lambda p: p.stat().st_size)
    good = victim.read_bytes()
    victim.write_bytes(good[:-1])
    with pytest.raises(IntegrityError, match=victim.name):
        store.get(root)
    victim.write_bytes(good + b"\0")
    with pytest.raises(IntegrityError, match=victim.name):
        store.get(root)
    victim.write_bytes(good)
    assert store.get(root) == data


def test_single_block_tamper(store):
    cid = store.put(b"small")
    store.block_path(cid).write_bytes(b"smalL")
    with pytest.raises(IntegrityError, match=cid):
        store.get(cid)


def test_missing_block_is_named(store):
    data = blob(2 * CHUNK_SIZE + 1)
    root = store.put(data)
    victim = leaf_files(store, root)[0]
    victim.unlink()
    assert not store.has(root)
    with pytest.raises(MissingBlockError, match=victim.name) as info:
        store.get(root)
    assert info.value.cid == victim.name
    with pytest.raises(StorageError, match="missing"):
        store.get(cid_of(b"never stored"))


def test_size_limit_is_checked_before_leaves_are_read(store):
    data = blob(2 * CHUNK_SIZE + 1)
    root = store.put(data)
    for leaf in leaf_files(store, root):
        leaf.unlink()  # a read of any leaf would now fail with MissingBlockError
    with pytest.raises(TooLargeError):
        store.get(root, max_size=len(data) - 1)


def test_raw_blob_over_limit_is_refused_unread(store):
    cid = store.put(blob(1000))
    with pytest.raises(TooLargeError):
        store.get(cid, max_size=999)


def test_pin(store):
    cid = store.put(b"pinned")
    assert not store.is_pinned(cid)
    store.pin(cid)
    store.pin(cid)
    assert store.is_pinned(cid) and store.pins() == {cid}
    store.unpin(cid)
    assert store.pins() == set()
    with pytest.raises(StorageError, match="put it first"):
        store.pin(cid_of(b"absent"))


def test_failed_write_leaves_no_partial_file(store, monkeypatch):
    data = blob(CHUNK_SIZE + 1)

    def crash(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError, match="disk gone"):
        store.put(data)
    monkeypatch.undo()
    assert [p for p in store.root.rglob("*") if p.is_file()] == []
    assert store.get(store.put(data)) == data


def test_atomic_write_cleans_up_on_fsync_failure(tmp_path, monkeypatch):
    target = tmp_path / "d" / "f"

    def crash(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError):
        atomic_write(target, b"x" * 100)
    assert list((tmp_path / "d").iterdir()) == []


def test_put_block_refuses_wrong_bytes(store):
    with pytest.raises(IntegrityError):
        store.put_block(cid_of(b"a"), b"b")


def test_open_store(tmp_path):
    s = open_store("embedded", tmp_path)
    assert isinstance(s, EmbeddedStore) and isinstance(s, Store)
    assert s.root == tmp_path / "store"
    assert open_store("embedded:" + str(tmp_path / "x"), tmp_path).root == tmp_path / "x"
    with pytest.raises(ConfigError):
        open_store("s3://bucket", tmp_path)


def test_put_again_repairs_a_damaged_block(store):
    data = blob(CHUNK_SIZE + 9)
    root = store.put(data)
    victim = leaf_files(store, root)[0]
    victim.write_bytes(b"garbage")
    with pytest.raises(IntegrityError):
        store.get(root)
    assert store.put(data) == root
    assert store.get(root) == data


def test_open_store_ipfs_hook(tmp_path):
    ipfs = pytest.importorskip("market.storage.ipfs")
    s = open_store("ipfs:http://127.0.0.1:5999", tmp_path)  # no request is made here
    try:
        assert isinstance(s, ipfs.IpfsNodeStore)
        assert s.api_url == "http://127.0.0.1:5999"
    finally:
        s.close()
