"""Content identifiers exactly as an IPFS node writes them.

Only what the market needs: CIDv1 (and CIDv0 on input) with a sha2-256 multihash and
the codecs ``raw`` (0x55) and ``dag-pb`` (0x70). Multibase base32 lower-case (``b``)
is what we print; base58btc (``z`` / bare ``Qm`` for CIDv0) is accepted on input
because some node APIs answer in it. The 32-byte sha2-256 digest is what goes on chain.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from market.errors import StorageError

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
DIGEST_LEN = 32

CODEC_NAMES: dict[int, str] = {RAW: "raw", DAG_PB: "dag-pb"}
CODEC_CODES: dict[str, int] = {name: code for code, name in CODEC_NAMES.items()}

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}


class InvalidCidError(StorageError):
    """A string is not a CID this market understands (sha2-256, raw or dag-pb)."""


@dataclass(frozen=True)
class CidInfo:
    """The parts of a parsed CID."""

    version: int
    codec: str
    digest: bytes

    def to_v1(self) -> str:
        """Canonical base32 CIDv1 string for the same content."""
        return cid_from_digest(self.digest, self.codec)


# -- varint (unsigned LEB128, as multiformats and protobuf use) -------------------------


def encode_varint(n: int) -> bytes:
    """Unsigned LEB128."""
    if n < 0:
        raise ValueError("varint must be non-negative")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def decode_varint(buf: bytes, pos: int = 0) -> tuple[int, int]:
    """Decode a minimal unsigned varint at ``pos``; return (value, new position).

    Raises ``ValueError`` on truncation, over-long (> 9 bytes) or non-minimal encodings,
    since a second spelling of the same number would give a second CID for one block.
    """
    value = 0
    shift = 0
    start = pos
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            if b == 0 and pos - start > 1:
                raise ValueError("non-minimal varint")
            return value, pos
        shift += 7
        if pos - start >= 9:
            raise ValueError("varint too long")


# -- multibase ----------------------------------------------------------------------------


def b32encode(data: bytes) -> str:
    """RFC 4648 base32, lower case, no padding (multibase ``b`` without the prefix)."""
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def b32decode(text: str) -> bytes:
    """Inverse of :func:`b32encode`; accepts either case, rejects padding and junk."""
    if "=" in text:
        raise ValueError("base32 must be unpadded")
    t = text.upper()
    t += "=" * (-len(t) % 8)
    try:
        return base64.b32decode(t.encode("ascii"), casefold=False)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"invalid base32: {exc}") from exc


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58 (multibase ``z`` without the prefix)."""
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58_ALPHABET[r])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`."""
    n = 0
    for c in text:
        if c not in _B58_INDEX:
            raise ValueError(f"invalid base58 character {c!r}")
        n = n * 58 + _B58_INDEX[c]
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


# -- CIDs ---------------------------------------------------------------------------------


def multihash_sha256(digest: bytes) -> bytes:
    """The multihash bytes (0x12 0x20 || digest)."""
    if len(digest) != DIGEST_LEN:
        raise InvalidCidError(f"sha2-256 digest must be 32 bytes, got {len(digest)}")
    return bytes([SHA2_256, DIGEST_LEN]) + digest


def cid_bytes_v1(digest: bytes, codec: str) -> bytes:
    """Binary CIDv1 (version, codec, multihash), as it appears inside dag-pb links."""
    if codec not in CODEC_CODES:
        raise InvalidCidError(f"unsupported codec {codec!r}; use 'raw' or 'dag-pb'")
    return encode_varint(1) + encode_varint(CODEC_CODES[codec]) + multihash_sha256(digest)


def cid_from_digest(digest: bytes, codec: str) -> str:
    """Base32 CIDv1 string for a sha2-256 digest and a codec name ("raw" or "dag-pb")."""
    return "b" + b32encode(cid_bytes_v1(bytes(digest), codec))


def cid_v0_from_digest(digest: bytes) -> str:
    """Base58 CIDv0 (``Qm...``) string; CIDv0 is always dag-pb."""
    return b58encode(multihash_sha256(bytes(digest)))


def cid_for_block(block: bytes, codec: str, version: int = 1) -> str:
    """The CID of one block's bytes."""
    digest = hashlib.sha256(block).digest()
    if version == 0:
        if codec != "dag-pb":
            raise InvalidCidError("CIDv0 can only name dag-pb blocks")
        return cid_v0_from_digest(digest)
    return cid_from_digest(digest, codec)


def _parse_binary(raw: bytes, v0_allowed: bool) -> CidInfo:
    if v0_allowed and len(raw) == 34 and raw[0] == SHA2_256 and raw[1] == DIGEST_LEN:
        return CidInfo(0, "dag-pb", bytes(raw[2:]))
    try:
        version, pos = decode_varint(raw, 0)
        if version != 1:
            raise InvalidCidError(f"unsupported CID version {version}")
        code, pos = decode_varint(raw, pos)
        mh_code, pos = decode_varint(raw, pos)
        mh_len, pos = decode_varint(raw, pos)
    except ValueError as exc:
        raise InvalidCidError(f"malformed CID bytes: {exc}") from exc
    if code not in CODEC_NAMES:
        raise InvalidCidError(f"unsupported codec 0x{code:x}; only raw and dag-pb are stored")
    if mh_code != SHA2_256 or mh_len != DIGEST_LEN:
        raise InvalidCidError(f"unsupported multihash 0x{mh_code:x}/{mh_len}; need sha2-256")
    digest = raw[pos:]
    if len(digest) != DIGEST_LEN:
        raise InvalidCidError(f"digest is {len(digest)} bytes, expected 32")
    return CidInfo(1, CODEC_NAMES[code], bytes(digest))


def parse_cid_bytes(raw: bytes) -> CidInfo:
    """Parse a binary CID (as found in dag-pb link hashes): CIDv1 or a bare v0 multihash."""
    return _parse_binary(bytes(raw), v0_allowed=True)


def parse_cid(cid: str) -> CidInfo:
    """Parse a CID string: base32 CIDv1 (``b``/``B``), base58btc CIDv1 (``z``) or CIDv0 (``Qm``)."""
    if not isinstance(cid, str) or not cid:
        raise InvalidCidError(f"not a CID: {cid!r}")
    text = cid.strip()
    try:
        if len(text) == 46 and text.startswith("Qm"):
            return _parse_binary(b58decode(text), v0_allowed=True)
        prefix, body = text[0], text[1:]
        if prefix in "bB":
            raw = b32decode(body)
            expected = b32encode(raw)
            if body != (expected if prefix == "b" else expected.upper()):
                raise InvalidCidError(f"non-canonical or mixed-case base32 CID: {cid!r}")
            info = _parse_binary(raw, v0_allowed=False)
        elif prefix == "z":
            info = _parse_binary(b58decode(body), v0_allowed=False)
        else:
            raise InvalidCidError(f"unsupported multibase prefix {prefix!r} in {cid!r}")
    except ValueError as exc:
        raise InvalidCidError(f"not a valid CID {cid!r}: {exc}") from exc
    return info


def normalize_cid(cid: str) -> str:
    """Canonical form used as a key everywhere: base32 CIDv1 (a v0 becomes dag-pb v1)."""
    return parse_cid(cid).to_v1()


def digest_of_cid(cid: str) -> bytes:
    """The 32-byte sha2-256 digest inside the CID's multihash (what goes on chain)."""
    return parse_cid(cid).digest


def cid_of(data: bytes) -> str:
    """The CID ``ipfs add --cid-version 1 --raw-leaves`` gives ``data`` (default chunker)."""
    from market.storage.unixfs import root_cid

    return root_cid(data)
