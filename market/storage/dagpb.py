"""dag-pb and UnixFS ``Data`` protobuf codecs, written by hand (two small messages).

dag-pb canonical encoding: ``PBNode { repeated PBLink Links = 2; optional bytes Data = 1 }``
with Links written before Data, each ``PBLink { Hash = 1; Name = 2; Tsize = 3 }``.
UnixFS ``Data { Type = 1; Data = 2; filesize = 3; repeated blocksizes = 4 (unpacked) }``.
Decoding is strict (the rules of go-codec-dagpb / js dag-pb): a second spelling of the
same node would be a second CID for the same content.
"""

from __future__ import annotations

from dataclasses import dataclass

from market.storage.cid import decode_varint, encode_varint

UNIXFS_RAW = 0
UNIXFS_FILE = 2


# -- protobuf wire format (only what dag-pb and UnixFS use) --------------------------------


def _key(field: int, wire: int) -> bytes:
    return encode_varint(field << 3 | wire)


def _bytes_field(field: int, value: bytes) -> bytes:
    return _key(field, 2) + encode_varint(len(value)) + value


def _uint_field(field: int, value: int) -> bytes:
    return _key(field, 0) + encode_varint(value)


def _fields(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """Split a protobuf message into (field, wire type, value); varint and bytes only."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = decode_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = decode_varint(buf, pos)
            out.append((field, wire, value))
        elif wire == 2:
            n, pos = decode_varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("length-delimited field runs past the end")
            out.append((field, wire, bytes(buf[pos : pos + n])))
            pos += n
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


# -- dag-pb ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PBLink:
    hash: bytes  # binary CID
    name: str | None
    tsize: int | None


@dataclass(frozen=True)
class PBNode:
    links: tuple[PBLink, ...]
    data: bytes | None


def encode_pblink(link: PBLink) -> bytes:
    out = _bytes_field(1, link.hash)
    if link.name is not None:
        out += _bytes_field(2, link.name.encode("utf-8"))
    if link.tsize is not None:
        out += _uint_field(3, link.tsize)
    return out


def encode_pbnode(node: PBNode) -> bytes:
    """Canonical dag-pb bytes: every link first, then Data if present."""
    out = b"".join(_bytes_field(2, encode_pblink(link)) for link in node.links)
    if node.data is not None:
        out += _bytes_field(1, node.data)
    return out


def decode_pbnode(block: bytes) -> PBNode:
    """Strict dag-pb decoding (the rules of go-codec-dagpb / js dag-pb); ValueError if not."""
    links: list[PBLink] = []
    data: bytes | None = None
    for field, wire, value in _fields(block):
        if field == 2 and wire == 2:
            if data is not None:
                raise ValueError("Links after Data")
            assert isinstance(value, bytes)
            links.append(_decode_pblink(value))
        elif field == 1 and wire == 2:
            if data is not None:
                raise ValueError("duplicate Data")
            assert isinstance(value, bytes)
            data = value
        else:
            raise ValueError(f"unexpected field {field} in PBNode")
    return PBNode(tuple(links), data)


def _decode_pblink(buf: bytes) -> PBLink:
    seen: dict[int, int | bytes] = {}
    for field, wire, value in _fields(buf):
        expected_wire = {1: 2, 2: 2, 3: 0}.get(field)
        if expected_wire is None or wire != expected_wire:
            raise ValueError(f"unexpected field {field} in PBLink")
        if field in seen or any(f > field for f in seen):
            raise ValueError("PBLink fields duplicated or out of order")
        seen[field] = value
    if 1 not in seen:
        raise ValueError("PBLink without Hash")
    name = seen.get(2)
    tsize = seen.get(3)
    assert isinstance(seen[1], bytes)
    return PBLink(
        seen[1],
        name.decode("utf-8") if isinstance(name, bytes) else None,
        tsize if isinstance(tsize, int) else None,
    )


# -- UnixFS Data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnixFSData:
    type: int
    data: bytes | None
    filesize: int | None
    blocksizes: tuple[int, ...]


def encode_unixfs(fs: UnixFSData) -> bytes:
    out = _uint_field(1, fs.type)
    if fs.data:  # empty data is left out, as both go and js importers do
        out += _bytes_field(2, fs.data)
    if fs.filesize is not None:
        out += _uint_field(3, fs.filesize)
    out += b"".join(_uint_field(4, bs) for bs in fs.blocksizes)
    return out


def decode_unixfs(buf: bytes) -> UnixFSData:
    ftype: int | None = None
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    for field, wire, value in _fields(buf):
        if field == 1 and wire == 0 and ftype is None:
            ftype = int(value)  # type: ignore[arg-type]
        elif field == 2 and wire == 2 and data is None:
            data = value  # type: ignore[assignment]
        elif field == 3 and wire == 0 and filesize is None:
            filesize = int(value)  # type: ignore[arg-type]
        elif field == 4 and wire == 0:
            blocksizes.append(int(value))  # type: ignore[arg-type]
        elif field in (5, 6, 7, 8):
            continue  # hashType, fanout, mode, mtime: irrelevant to file bytes
        else:
            raise ValueError(f"unexpected or repeated field {field} in UnixFS Data")
    if ftype is None:
        raise ValueError("UnixFS Data without Type")
    return UnixFSData(ftype, data, filesize, tuple(blocksizes))
