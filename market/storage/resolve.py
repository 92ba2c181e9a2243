"""From an on-chain digest back to the bytes.

The chain holds only the 32-byte sha2-256 digest inside a CID, not its codec: a blob of
one chunk is a raw block, a larger one a dag-pb root. An IPFS node keys blocks by
multihash, so the raw CID of a dag-pb root's digest *also* names a block there (the root
node's own bytes, which hash correctly): trying raw first would return those. So dag-pb
is tried first, and raw only if that block is not a UnixFS file node. (No artefact of
ours parses as one: safetensors starts with a u64 length, JSON with ``{``, neither a
valid dag-pb field.)
"""

from __future__ import annotations

from market.errors import StorageError
from market.storage.base import DEFAULT_MAX_SIZE, Store
from market.storage.cid import cid_from_digest
from market.storage.unixfs import NotAFileNodeError


def cid_candidates(digest: bytes) -> list[str]:
    """The CIDs a 32-byte digest can stand for, in the order they must be tried."""
    return [cid_from_digest(digest, "dag-pb"), cid_from_digest(digest, "raw")]


def get_by_digest(
    store: Store, digest: bytes, max_size: int = DEFAULT_MAX_SIZE
) -> tuple[str, bytes]:
    """The CID and verified bytes of the blob whose CID carries ``digest``."""
    dag_pb, raw = cid_candidates(digest)
    if store.has(dag_pb):
        try:
            return dag_pb, store.get(dag_pb, max_size=max_size)
        except NotAFileNodeError as exc:
            if exc.cid != dag_pb:
                raise  # a broken node deeper in a real DAG: report it, don't guess
    if store.has(raw):
        return raw, store.get(raw, max_size=max_size)
    raise StorageError(
        f"no blob with digest 0x{digest.hex()} in the store; "
        "is the store the one the project uses (--store)?"
    )
