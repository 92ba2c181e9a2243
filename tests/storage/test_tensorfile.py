import numpy as np
import pytest
from safetensors.numpy import load, save

from market.storage.tensorfile import UpdateFormatError, parse_header, serialize
from market.storage.tensorfile import load as checked_load


def test_serialize_is_read_by_the_reference_library_and_padded():
    a = np.arange(6, dtype=np.int8).reshape(2, 3)
    b = np.array([1.5, -2.0], np.float32)
    data = serialize([("a", "I8", a), ("b", "F32", b)], {"z": "1", "format": "x"})
    n = int.from_bytes(data[:8], "little")
    assert n % 8 == 0
    assert data[8:].startswith(b'{"__metadata__":{"format":"x","z":"1"},"a":')
    back = load(data)
    assert np.array_equal(back["a"], a) and np.array_equal(back["b"], b)
    assert checked_load(data).keys() == back.keys()


def test_reference_files_parse_and_byte_order_is_little_endian():
    big = np.array([1.0, 2.0], dtype=">f4")
    data = serialize([("x", "F32", big)], {})
    assert data.endswith(np.array([1.0, 2.0], "<f4").tobytes())
    header, meta = parse_header(save({"x": np.zeros(3, np.float32)}), 10**6)
    assert header["x"]["shape"] == [3] and meta == {}


def test_reason_is_attached():
    with pytest.raises(UpdateFormatError) as info:
        parse_header(b"\0" * 7, 100)
    assert info.value.reason == "bad_header" and "[bad_header]" in str(info.value)
