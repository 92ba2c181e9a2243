"""UnixFS files as ``ipfs add --cid-version 1 --raw-leaves`` builds them, and back.

Layout (go-unixfs / boxo ``importer/balanced``, js ``ipfs-unixfs-importer`` balanced):
fixed 256 KiB chunks; one chunk is the file itself (a raw block); more chunks become raw
leaves under dag-pb nodes of at most 174 links, filled left to right so that every
subtree except the rightmost is full (the bottom-up grouping below yields the same tree
as go's depth-first ``fillNodeRec``).

Nodes (codecs in :mod:`market.storage.dagpb`): each link has ``Name`` present and empty and
a Tsize equal to the cumulative size of the child DAG (block bytes of the child plus its
own links' Tsizes; a raw leaf's is its length); intermediate nodes' UnixFS Data carries
Type=File, no Data, the filesize and one blocksize per child.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from market.errors import IntegrityError, StorageError
from market.storage.base import DEFAULT_MAX_SIZE
from market.storage.cid import (
    CidInfo,
    InvalidCidError,
    cid_bytes_v1,
    multihash_sha256,
    parse_cid,
    parse_cid_bytes,
)
from market.storage.cid import b32encode as _b32
from market.storage.cid import b58encode as _b58
from market.storage.dagpb import (  # noqa: F401  (re-exported: the codec belongs to UnixFS)
    UNIXFS_FILE,
    UNIXFS_RAW,
    PBLink,
    PBNode,
    UnixFSData,
    decode_pbnode,
    decode_unixfs,
    encode_pbnode,
    encode_unixfs,
)

CHUNK_SIZE = 262144
MAX_LINKS = 174
# No block an IPFS node exchanges is larger (bitswap limit); nodes we build are ~8 KiB.
MAX_BLOCK_SIZE = 2 * 1024 * 1024
MAX_DEPTH = 16
# Reading a DAG fetches at most MIN_BLOCK_BUDGET + filesize / MIN_AVG_BLOCK blocks
# (ours: filesize / 256 KiB leaves), which bounds the work a hostile DAG can cause.
MIN_BLOCK_BUDGET = 1024
MIN_AVG_BLOCK = 256

Fetch = Callable[[str, int], bytes]


class TooLargeError(StorageError):
    """A blob is larger than the caller allows; refused before its data was read."""


class NotAFileNodeError(IntegrityError):
    """A block read as dag-pb is not a UnixFS file node (maybe a raw block, same digest)."""

    def __init__(self, cid: str, message: str) -> None:
        self.cid = cid
        super().__init__(message)


class MissingBlockError(StorageError):
    """A block of the requested DAG is not available."""

    def __init__(self, cid: str, message: str | None = None) -> None:
        self.cid = cid
        super().__init__(message or f"block {cid} is missing; fetch or re-add the content")


# -- building ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Child:
    cid_bin: bytes
    tsize: int  # cumulative DAG size, for the parent's link
    filesize: int  # file bytes under this child, for the parent's blocksizes


def _cid_str(cid_bin: bytes) -> str:
    if len(cid_bin) == 34 and cid_bin[0] == 0x12:
        return _b58(cid_bin)
    return "b" + _b32(cid_bin)


def _node_cid_bin(block: bytes, cid_version: int) -> bytes:
    digest = hashlib.sha256(block).digest()
    return multihash_sha256(digest) if cid_version == 0 else cid_bytes_v1(digest, "dag-pb")


def _build(
    data: bytes,
    emit: Callable[[str, bytes], None] | None,
    chunk_size: int,
    max_links: int,
    raw_leaves: bool,
    cid_version: int,
) -> str:
    view = memoryview(data)
    starts = range(0, max(len(data), 1), chunk_size)
    level: list[_Child] = []
    for start in starts:
        chunk = view[start : start + chunk_size]
        if raw_leaves:
            block = chunk
            cid_bin = cid_bytes_v1(hashlib.sha256(chunk).digest(), "raw")
        else:
            fs = UnixFSData(UNIXFS_FILE, bytes(chunk), len(chunk), ())
            block = memoryview(encode_pbnode(PBNode((), encode_unixfs(fs))))
            cid_bin = _node_cid_bin(block, cid_version)
        if emit is not None:
            emit(_cid_str(cid_bin), bytes(block))
        level.append(_Child(cid_bin, len(block), len(chunk)))
    while len(level) > 1:
        parents: list[_Child] = []
        for i in range(0, len(level), max_links):
            group = level[i : i + max_links]
            filesize = sum(c.filesize for c in group)
            fs = UnixFSData(UNIXFS_FILE, None, filesize, tuple(c.filesize for c in group))
            links = tuple(PBLink(c.cid_bin, "", c.tsize) for c in group)
            block = encode_pbnode(PBNode(links, encode_unixfs(fs)))
            cid_bin = _node_cid_bin(block, cid_version)
            if emit is not None:
                emit(_cid_str(cid_bin), block)
            parents.append(_Child(cid_bin, len(block) + sum(c.tsize for c in group), filesize))
        level = parents
    return _cid_str(level[0].cid_bin)


def build_dag(
    data: bytes,
    *,
    chunk_size: int = CHUNK_SIZE,
    max_links: int = MAX_LINKS,
    raw_leaves: bool = True,
    cid_version: int = 1,
) -> tuple[str, dict[str, bytes]]:
    """Root CID and every block (by CID) of ``data`` as a UnixFS file.

    The keyword arguments exist to check the builder against published vectors of other
    import profiles; the market always uses the defaults.
    """
    blocks: dict[str, bytes] = {}
    root = _build(data, blocks.__setitem__, chunk_size, max_links, raw_leaves, cid_version)
    return root, blocks


def root_cid(data: bytes, **params: int | bool) -> str:
    """Only the root CID (no blocks kept)."""
    return _build(
        data,
        None,
        int(params.get("chunk_size", CHUNK_SIZE)),
        int(params.get("max_links", MAX_LINKS)),
        bool(params.get("raw_leaves", True)),
        int(params.get("cid_version", 1)),
    )


# -- reading back ----------------------------------------------------------------------------


def verify_block(cid: str | CidInfo, block: bytes) -> None:
    """Raise ``IntegrityError`` naming the CID unless ``block`` hashes to it."""
    info = parse_cid(cid) if isinstance(cid, str) else cid
    if hashlib.sha256(block).digest() != info.digest:
        raise IntegrityError(
            f"block {info.to_v1()} does not match its CID (tampered or truncated); "
            "delete it and fetch the content again"
        )


@dataclass(frozen=True)
class FileNode:
    """A decoded dag-pb UnixFS file node: inline data plus (child CID, child file size)."""

    data: bytes
    children: tuple[tuple[str, int], ...]

    @property
    def filesize(self) -> int:
        return len(self.data) + sum(size for _, size in self.children)


def decode_file_node(cid: str, block: bytes) -> FileNode:
    """Decode a dag-pb UnixFS file node; ``IntegrityError`` if it is not a sound one."""
    try:
        node = decode_pbnode(block)
        if node.data is None:
            raise ValueError("dag-pb node without UnixFS Data")
        fs = decode_unixfs(node.data)
        if fs.type not in (UNIXFS_FILE, UNIXFS_RAW):
            raise ValueError(f"UnixFS type {fs.type} is not a file")
        if len(fs.blocksizes) != len(node.links):
            raise ValueError(f"{len(node.links)} links but {len(fs.blocksizes)} blocksizes")
        children = tuple(
            (parse_cid_bytes(link.hash).to_v1(), bs)
            for link, bs in zip(node.links, fs.blocksizes, strict=True)
        )
        result = FileNode(fs.data or b"", children)
        if fs.filesize is not None and fs.filesize != result.filesize:
            raise ValueError(f"filesize {fs.filesize} != data + blocksizes {result.filesize}")
    except (ValueError, InvalidCidError) as exc:
        raise NotAFileNodeError(cid, f"block {cid} is not a valid UnixFS file node: {exc}") from exc
    return result


def reassemble(root: str, fetch: Fetch, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """Rebuild a file from its blocks, verifying every block against its CID.

    ``fetch(cid, limit)`` returns a block's bytes (CIDs passed in canonical base32 form)
    and should refuse blocks longer than ``limit`` without reading them. The total size
    is checked against ``max_size`` from the root node before any leaf is fetched; a
    block that does not match its CID or its parent's declared size raises
    ``IntegrityError`` naming it, and nothing is returned.
    """
    info = parse_cid(root)
    out = bytearray()
    budget = [1]  # blocks left to fetch: the root, then as many as its size allows

    def fetch_checked(cid: str, cinfo: CidInfo, limit: int, depth: int) -> bytes:
        budget[0] -= 1
        if budget[0] < 0:
            raise IntegrityError(f"{root} has far more blocks than its size allows, at {cid}")
        try:
            block = fetch(cid, limit)
            if len(block) > limit:
                raise TooLargeError(f"block {cid} is {len(block)} bytes, over the limit {limit}")
        except TooLargeError as exc:
            if depth == 0:
                raise
            # Below the root the size is declared by the (verified) parent: more is tampering.
            raise IntegrityError(
                f"block {cid} is larger than its parent declares ({limit} bytes): {exc}"
            ) from exc
        verify_block(cinfo, block)
        return block

    def walk(cinfo: CidInfo, expected: int | None, depth: int) -> None:
        cid = cinfo.to_v1()
        if depth > MAX_DEPTH:
            raise IntegrityError(f"DAG under {root} is deeper than {MAX_DEPTH} at {cid}")
        if cinfo.codec == "raw":
            block = fetch_checked(cid, cinfo, max_size if expected is None else expected, depth)
            if expected is not None and len(block) != expected:
                raise IntegrityError(
                    f"block {cid} holds {len(block)} bytes but its parent declares {expected}"
                )
            if len(out) + len(block) > max_size:
                raise TooLargeError(f"{root} is larger than the limit of {max_size} bytes")
            out.extend(block)
            return
        block = fetch_checked(cid, cinfo, MAX_BLOCK_SIZE, depth)
        node = decode_file_node(cid, block)
        if depth == 0 and node.filesize > max_size:
            raise TooLargeError(
                f"{root} is {node.filesize} bytes, over the limit of {max_size}; "
                "raise max_size if this blob is expected"
            )
        if expected is not None and node.filesize != expected:
            raise IntegrityError(
                f"node {cid} covers {node.filesize} bytes but its parent declares {expected}"
            )
        if depth == 0:
            budget[0] = MIN_BLOCK_BUDGET + node.filesize // MIN_AVG_BLOCK
        out.extend(node.data)
        for child, size in node.children:
            if size == 0:  # importers never link empty children; a loop of them is a DoS
                raise IntegrityError(f"node {cid} links an empty child {child}")
            walk(parse_cid(child), size, depth + 1)

    walk(info, None, 0)
    return bytes(out)
