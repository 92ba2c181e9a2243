import numpy as np
import pytest

from market.errors import IntegrityError, StorageError
from market.storage import EmbeddedStore, cid_from_digest, cid_of, digest_of_cid
from market.storage.resolve import cid_candidates, get_by_digest
from market.storage.unixfs import CHUNK_SIZE, TooLargeError


@pytest.mark.parametrize("n", [5, CHUNK_SIZE + 5])
def test_get_by_digest_finds_raw_and_dag_pb_roots(tmp_path, n):
    store = EmbeddedStore(tmp_path)
    data = np.random.default_rng(n).bytes(n)
    cid = store.put(data)
    assert cid in cid_candidates(digest_of_cid(cid))
    assert get_by_digest(store, digest_of_cid(cid)) == (cid, data)
    with pytest.raises(TooLargeError):
        get_by_digest(store, digest_of_cid(cid), max_size=n - 1)


def test_unknown_digest(tmp_path):
    with pytest.raises(StorageError, match="no blob with digest"):
        get_by_digest(EmbeddedStore(tmp_path), b"\x01" * 32)


class MultihashKeyedStore(EmbeddedStore):
    """Keys blocks by digest only, as an IPFS node does: raw and dag-pb CIDs alias."""

    def block_path(self, cid: str):  # noqa: ANN201
        return super().block_path(cid_from_digest(digest_of_cid(cid), "raw"))


@pytest.mark.parametrize("n", [5, CHUNK_SIZE + 5])
def test_digest_lookup_when_blocks_are_keyed_by_multihash(tmp_path, n):
    store = MultihashKeyedStore(tmp_path)
    data = np.random.default_rng(n).bytes(n)
    cid = store.put(data)
    assert store.has(cid_from_digest(digest_of_cid(cid), "raw"))  # the alias exists
    assert get_by_digest(store, digest_of_cid(cid)) == (cid, data)


def test_broken_leaf_is_reported_not_guessed_around(tmp_path):
    store = MultihashKeyedStore(tmp_path)
    data = np.random.default_rng(1).bytes(CHUNK_SIZE + 5)
    cid = store.put(data)
    leaf = cid_of(data[:CHUNK_SIZE])
    store.block_path(leaf).write_bytes(b"\x0a\x00")  # hashes wrong, parses as dag-pb
    with pytest.raises(IntegrityError, match=leaf):
        get_by_digest(store, digest_of_cid(cid))
