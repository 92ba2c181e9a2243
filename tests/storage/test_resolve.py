import numpy as np
import pytest

from market.errors import StorageError
from market.storage import EmbeddedStore, digest_of_cid
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
