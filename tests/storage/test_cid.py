import hashlib

import pytest

from market.errors import StorageError
from market.storage.cid import (
    CidInfo,
    InvalidCidError,
    b32decode,
    b32encode,
    b58decode,
    b58encode,
    cid_from_digest,
    cid_of,
    decode_varint,
    digest_of_cid,
    encode_varint,
    normalize_cid,
    parse_cid,
)
from tests.storage.vectors import OURS_SMALL

EMPTY = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


@pytest.mark.parametrize(("data", "cid"), OURS_SMALL.items())
def test_small_blobs_match_published_cids(data, cid):
    assert cid_of(data) == cid


def test_digest_is_sha256_of_a_raw_block_and_round_trips():
    data = b"hello world"
    digest = digest_of_cid(cid_of(data))
    assert digest == hashlib.sha256(data).digest()
    assert cid_from_digest(digest, "raw") == cid_of(data)
    assert parse_cid(cid_of(data)) == CidInfo(1, "raw", digest)


def test_dag_pb_digest_round_trip():
    digest = bytes(range(32))
    cid = cid_from_digest(digest, "dag-pb")
    assert cid.startswith("bafybei")
    assert parse_cid(cid) == CidInfo(1, "dag-pb", digest)


def test_base58_forms_are_accepted():
    # CIDv0 of "hello\n" (dag-pb leaf), from kubo's gateway fixtures.
    v0 = parse_cid("QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN")
    assert (v0.version, v0.codec) == (0, "dag-pb")
    assert normalize_cid("QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN") == (
        "bafybeiffndsajwhk3lwjewwdxqntmjm4b5wxaaanokonsggenkbw6slwk4"
    )
    # base58btc CIDv1 raw of "hello world" (a published example).
    assert normalize_cid("zb2rhj7crUKTQYRGCRATFaQ6YFLTde2YzdqbbhAASkL9uRDXn") == cid_of(
        b"hello world"
    )
    assert normalize_cid(EMPTY.upper()) == EMPTY


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "hello",
        "b",
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk",  # truncated
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvykuaa",  # too long
        "bAFKREIHDWDCEFGH4DQKJV67UZCMW7OJEE6XEDZDETOJUZJEVTENXQUVYKU",  # mixed case
        "mAVUSIOOwxEKY/BwUmvv0yJlvuSQnrkHkZJuTTKSVmRt4UrhUA",  # base64: unsupported
        "Qm" + "1" * 44,
        # sha2-512 multihash
        "bafkrgqhhyivzstcz3hhswshfjgy6ertgmnqeleynhwt4dlfsthi4hn7zgh4uvlsb5xncykzapi3ocd4lz"
        "ogukir6ksdy6wzrnz6ohnv4aglcs",
        "bafyreib4pff766vhpbxbhjbqqnsh5emeznvujayjj4z2iu533cprgbz23m",  # dag-cbor
    ],
)
def test_invalid_cids_are_refused(bad):
    with pytest.raises(InvalidCidError):
        parse_cid(bad)
    assert issubclass(InvalidCidError, StorageError)


def test_digest_and_codec_are_validated():
    with pytest.raises(InvalidCidError):
        cid_from_digest(b"\0" * 31, "raw")
    with pytest.raises(InvalidCidError):
        cid_from_digest(b"\0" * 32, "dag-cbor")


def test_varint_round_trip_and_strictness():
    for n in [0, 1, 127, 128, 300, 2**32, 2**63 - 1]:
        enc = encode_varint(n)
        assert decode_varint(enc) == (n, len(enc))
    assert encode_varint(300) == b"\xac\x02"
    with pytest.raises(ValueError):
        decode_varint(b"\x80")  # truncated
    with pytest.raises(ValueError):
        decode_varint(b"\x80\x00")  # non-minimal
    with pytest.raises(ValueError):
        encode_varint(-1)


def test_multibase_codecs_round_trip():
    for data in [b"", b"\0", b"\0\0abc", bytes(range(256))]:
        assert b58decode(b58encode(data)) == data
        assert b32decode(b32encode(data)) == data
    assert b32encode(b"f") == "my"


def test_non_canonical_base32_is_refused():
    # Same bytes, different trailing bits in the last character.
    assert EMPTY.endswith("u")
    with pytest.raises(InvalidCidError):
        parse_cid(EMPTY[:-1] + "v")
