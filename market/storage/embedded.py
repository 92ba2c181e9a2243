"""The embedded content-addressed store: IPFS-identical blocks in plain files.

One file per block under ``root/blocks/<shard>/<cid>`` (shard = the two characters
before the last one of the CID, as go-ds-flatfs ``next-to-last/2`` does), written
atomically (temporary file, fsync, rename), so a crash leaves either the whole block or
nothing. The disk is not trusted: ``get`` verifies every block against its CID.
Pins are empty files under ``root/pins/``; nothing is garbage-collected yet.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from market.errors import ConfigError, StorageError
from market.storage.base import DEFAULT_MAX_SIZE, Store
from market.storage.cid import normalize_cid, parse_cid
from market.storage.unixfs import (
    MAX_BLOCK_SIZE,
    MAX_DEPTH,
    MissingBlockError,
    TooLargeError,
    build_dag,
    decode_file_node,
    reassemble,
    verify_block,
)


def _fsync_dir(path: Path) -> None:
    """Make a rename durable; not every platform can open a directory, so best effort."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or all of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


class EmbeddedStore(Store):
    """Blocks on the local disk with the same CIDs an IPFS node would give them."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blocks_dir = self.root / "blocks"
        self.pins_dir = self.root / "pins"
        try:
            self.blocks_dir.mkdir(parents=True, exist_ok=True)
            self.pins_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the store at {self.root}: {exc}") from exc

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.root)!r})"

    # -- blocks -----------------------------------------------------------------------

    def block_path(self, cid: str) -> Path:
        """Where the block of ``cid`` lives (canonical base32 CIDv1 file name)."""
        key = normalize_cid(cid)
        return self.blocks_dir / key[-3:-1] / key

    def put_block(self, cid: str, block: bytes) -> None:
        """Store one block after checking it matches ``cid``.

        A no-op if the same bytes are already there; a damaged copy is replaced, so
        putting a blob again repairs it.
        """
        verify_block(cid, block)
        path = self.block_path(cid)
        if self._holds(path, block):
            return
        try:
            atomic_write(path, block)
        except OSError as exc:
            raise StorageError(f"could not write block {normalize_cid(cid)}: {exc}") from exc

    @staticmethod
    def _holds(path: Path, block: bytes) -> bool:
        try:
            if path.stat().st_size != len(block):
                return False
            return path.read_bytes() == block
        except OSError:
            return False

    def get_block(self, cid: str, limit: int = MAX_BLOCK_SIZE) -> bytes:
        """Raw bytes of one block, verified; refused unread if larger than ``limit``."""
        key = normalize_cid(cid)
        path = self.block_path(key)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > limit:
                    raise TooLargeError(
                        f"block {key} is {size} bytes on disk, over the {limit} expected; "
                        "it is corrupt or not what the DAG declares"
                    )
                block = f.read(limit + 1)
        except FileNotFoundError:
            raise MissingBlockError(key) from None
        except OSError as exc:
            raise StorageError(f"could not read block {key}: {exc}") from exc
        verify_block(key, block)
        return block

    def has_block(self, cid: str) -> bool:
        return self.block_path(cid).is_file()

    # -- Store interface ------------------------------------------------------------

    def put(self, data: bytes) -> str:
        root, blocks = build_dag(bytes(data))
        # Leaves first, root last: a root on disk means its children were written before.
        for cid, block in blocks.items():  # build order: leaves first, root last
            self.put_block(cid, block)
        return root

    def get(self, cid: str, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
        return reassemble(cid, self.get_block, max_size)

    def has(self, cid: str) -> bool:
        try:
            return self._has(normalize_cid(cid), 0)
        except StorageError:
            return False

    def _has(self, cid: str, depth: int) -> bool:
        if depth > MAX_DEPTH or not self.has_block(cid):
            return False
        if parse_cid(cid).codec == "raw":
            return True
        node = decode_file_node(cid, self.get_block(cid))
        return all(self._has(child, depth + 1) for child, _ in node.children)

    def pin(self, cid: str) -> None:
        key = normalize_cid(cid)
        if not self.has(key):
            raise StorageError(f"cannot pin {key}: not every block is in {self.root}; put it first")
        marker = self.pins_dir / key
        if not marker.exists():
            try:
                atomic_write(marker, b"")
            except OSError as exc:
                raise StorageError(f"could not record the pin of {key}: {exc}") from exc

    def unpin(self, cid: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.pins_dir / normalize_cid(cid)).unlink()

    def pins(self) -> set[str]:
        """Every pinned root CID."""
        return {p.name for p in self.pins_dir.iterdir() if not p.name.startswith(".")}

    def is_pinned(self, cid: str) -> bool:
        return (self.pins_dir / normalize_cid(cid)).exists()


def open_store(spec: str = "embedded", data_dir: Path | None = None) -> Store:
    """A store from a configuration string.

    ``"embedded"`` (default): :class:`EmbeddedStore` at ``data_dir/"store"``;
    ``"embedded:/some/path"``: an embedded store at that path;
    ``"ipfs"`` / ``"ipfs:http://127.0.0.1:5001"``: an IPFS node's RPC API
    (``market.storage.ipfs.IpfsNodeStore``); bare ``"ipfs"`` reads the URL from
    ``MARKET_IPFS_API`` (default ``http://127.0.0.1:5001``).
    """
    kind, _, arg = (spec or "embedded").partition(":")
    kind = kind.strip().lower()
    if kind == "embedded":
        if arg:
            return EmbeddedStore(Path(arg))
        if data_dir is None:
            raise ConfigError("the embedded store needs a data directory (or 'embedded:/path')")
        return EmbeddedStore(Path(data_dir) / "store")
    if kind == "ipfs":
        try:
            from market.storage.ipfs import IpfsNodeStore  # lazy: needs httpx, optional
        except ImportError as exc:
            raise ConfigError(f"the IPFS backend is not available: {exc}") from exc
        return IpfsNodeStore(arg or os.environ.get("MARKET_IPFS_API", "http://127.0.0.1:5001"))
    raise ConfigError(f"unknown store {spec!r}; use 'embedded' or 'ipfs:<RPC API URL>'")
