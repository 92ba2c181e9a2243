"""The ``Store`` interface every content-addressed backend implements.

A store maps bytes to a CID (CIDv1, base32) and back. ``get`` always verifies the
returned bytes against the CID, whatever the backend: the network and the disk are
untrusted, so nothing unverified ever leaves a store.
"""

from abc import ABC, abstractmethod

# Largest blob a store returns unless the caller asks for more; checked before reading.
DEFAULT_MAX_SIZE = 256 * 1024 * 1024


class Store(ABC):
    """A content-addressed blob store (the embedded on-disk store or an IPFS node)."""

    @abstractmethod
    def put(self, data: bytes) -> str:
        """Store ``data`` and return its CID (as ``ipfs add --cid-version 1 --raw-leaves``)."""

    @abstractmethod
    def get(self, cid: str, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
        """Return the bytes of ``cid``, verified against it; refuse blobs over ``max_size``."""

    @abstractmethod
    def has(self, cid: str) -> bool:
        """Whether the store holds every block of ``cid`` locally."""

    @abstractmethod
    def pin(self, cid: str) -> None:
        """Keep ``cid`` from garbage collection."""
