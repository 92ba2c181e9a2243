"""From an on-chain digest back to the bytes: the chain holds only the 32-byte sha2-256 digest
inside a CID, so the codec (a raw block, or a dag-pb root for chunked blobs) is tried in turn."""

from __future__ import annotations

from market.errors import StorageError
from market.storage.base import DEFAULT_MAX_SIZE, Store
from market.storage.cid import cid_from_digest


def cid_candidates(digest: bytes) -> list[str]:
    """The CIDs a 32-byte digest can stand for, the common (single-block) one first."""
    return [cid_from_digest(digest, "raw"), cid_from_digest(digest, "dag-pb")]


def get_by_digest(
    store: Store, digest: bytes, max_size: int = DEFAULT_MAX_SIZE
) -> tuple[str, bytes]:
    """The CID and verified bytes of the blob whose CID carries ``digest``."""
    for cid in cid_candidates(digest):
        if store.has(cid):
            return cid, store.get(cid, max_size=max_size)
    raise StorageError(
        f"no blob with digest 0x{digest.hex()} in the store; "
        "is the store the one the project uses (--store)?"
    )
