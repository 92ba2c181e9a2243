import pytest

from market.storage.dagpb import (
    PBLink,
    PBNode,
    UnixFSData,
    decode_pbnode,
    decode_unixfs,
    encode_pbnode,
    encode_unixfs,
)


def test_pb_codec_round_trip_and_strictness():
    node = PBNode((PBLink(b"\x01\x55\x12\x20" + bytes(32), "", 5),), b"\x08\x02")
    assert decode_pbnode(encode_pbnode(node)) == node
    enc = encode_pbnode(node)
    data_field = enc[-4:]
    with pytest.raises(ValueError):
        decode_pbnode(data_field + enc[:-4])  # Data before Links
    with pytest.raises(ValueError):
        decode_pbnode(enc + b"\x1a\x00")  # unknown field 3
    with pytest.raises(ValueError):
        decode_pbnode(enc[:-1])  # truncated
    fs = UnixFSData(2, b"abc", 3, ())
    assert decode_unixfs(encode_unixfs(fs)) == fs


def test_unixfs_skips_metadata_fields_and_refuses_repeats():
    fs = encode_unixfs(UnixFSData(2, None, 7, (3, 4)))
    assert decode_unixfs(fs + b"\x38\xa4\x03") == UnixFSData(2, None, 7, (3, 4))  # mode
    with pytest.raises(ValueError):
        decode_unixfs(fs + b"\x08\x02")  # Type twice
    with pytest.raises(ValueError):
        decode_unixfs(b"\x18\x07")  # no Type


def test_empty_name_is_written():
    link = PBLink(b"\x01\x55\x12\x20" + bytes(32), "", 9)
    assert encode_pbnode(PBNode((link,), None)).endswith(b"\x12\x00\x18\x09")
