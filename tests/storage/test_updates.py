import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save

from market.errors import ConfigError
from market.errors import UpdateFormatError as BaseUpdateFormatError
from market.storage.cid import cid_of, digest_of_cid
from market.storage.updates import (
    BLOCK_SIZE,
    ModelLayout,
    QuantizedUpdate,
    UpdateFormatError,
    bytes_digest,
    decode_model,
    decode_update,
    encode_model,
    encode_quantized,
    encode_update,
    quantize,
)

LAYOUT = ModelLayout((("fc1.weight", (40, 64)), ("fc1.bias", (40,)), ("fc2.weight", (3, 7))))


def delta(seed: int = 0, layout: ModelLayout = LAYOUT) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.normal(size=s).astype(np.float32) for n, s in layout.entries}


def update_bytes(seed: int = 0) -> bytes:
    return encode_update(delta(seed), LAYOUT, seed=seed)


def raw_file(tensors: dict, meta: dict | None = None) -> bytes:
    return save(tensors, metadata=meta)


def update_meta(layout: ModelLayout = LAYOUT) -> dict[str, str]:
    return {
        "format": "market-update/1",
        "block_size": "1024",
        "tensor_order": ",".join(layout.names),
    }


def valid_tensors(layout: ModelLayout = LAYOUT) -> dict[str, np.ndarray]:
    out = {n: np.ones(s, dtype=np.int8) for n, s in layout.entries}
    out["__scales__"] = np.full(layout.num_blocks, 0.5, dtype=np.float32)
    return out


def reason(data: bytes, layout: ModelLayout = LAYOUT, **kw) -> str:
    with pytest.raises(UpdateFormatError) as info:
        decode_update(data, layout, **kw)
    assert isinstance(info.value, BaseUpdateFormatError)
    return info.value.reason


# -- layout -------------------------------------------------------------------------------


def test_layout_basics_and_json():
    assert LAYOUT.size == 40 * 64 + 40 + 21
    assert LAYOUT.names == ("fc1.weight", "fc1.bias", "fc2.weight")
    assert LAYOUT.num_blocks == 3
    assert ModelLayout.from_json(LAYOUT.to_json()) == LAYOUT
    assert ModelLayout.from_tensors(delta()) == LAYOUT
    vec = LAYOUT.flatten(delta())
    assert vec.shape == (LAYOUT.size,) and vec.dtype == np.float64
    back = LAYOUT.unflatten(vec)
    assert list(back) == list(LAYOUT.names)
    for name, arr in delta().items():
        assert back[name].dtype == np.float32 and np.array_equal(back[name], arr)


def test_layout_rejects_bad_names():
    for entries in [(("a", (1,)), ("a", (2,))), (("a,b", (1,)),), (("__scales__", (1,)),)]:
        with pytest.raises(ConfigError):
            ModelLayout(entries)
    with pytest.raises(ConfigError):
        ModelLayout.from_json('{"format": "x"}')


# -- quantisation -------------------------------------------------------------------------


def test_round_trip_error_within_one_scale():
    d = delta(3)
    u = decode_update(encode_update(d, LAYOUT, seed=7), LAYOUT)
    assert u.q.dtype == np.int8 and u.q.shape == (LAYOUT.size,)
    assert u.scales.dtype == np.float32 and u.scales.shape == (3,)
    assert u.block_size == BLOCK_SIZE
    err = np.abs(u.dense() - LAYOUT.flatten(d))
    assert np.all(err <= np.repeat(u.scales.astype(np.float64), BLOCK_SIZE)[: LAYOUT.size])


def test_encoding_is_deterministic_per_seed():
    assert update_bytes(1) == update_bytes(1)
    assert encode_update(delta(1), LAYOUT, 1) != encode_update(delta(1), LAYOUT, 2)


def test_zero_block_has_zero_scale_and_max_maps_to_127():
    vec = np.zeros(2 * BLOCK_SIZE + 5)
    vec[BLOCK_SIZE + 3] = -2.5
    u = quantize(vec, 0)
    assert u.scales[0] == 0 and np.all(u.q[:BLOCK_SIZE] == 0)
    assert u.q[BLOCK_SIZE + 3] == -127
    assert np.float32(u.scales[1]) == np.float32(2.5 / 127)


def test_dense_is_exact_product():
    u = QuantizedUpdate(np.array([-127, 5, 0], np.int8), np.array([0.1], np.float32))
    assert u.dense().dtype == np.float64
    assert u.dense()[0] == -127 * float(np.float32(0.1))


def test_unbiased_statistically():
    x = np.random.default_rng(0).normal(size=BLOCK_SIZE)
    x[0] = 3.0  # fixes the scale so every coordinate sits between two grid points
    runs = np.stack([quantize(x, seed).dense() for seed in range(400)])
    s = float(quantize(x, 0).scales[0])
    # mean of 400 draws of a variable bounded by s: std ≤ s / (2 · 20)
    assert np.all(np.abs(runs.mean(axis=0) - x) < 6 * s / 40)
    assert abs((runs.mean(axis=0) - x).mean()) < 0.01 * s


finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=0, max_size=3000), st.integers(0, 2**32))
def test_property_error_bound(values, seed):
    x = np.array(values, dtype=np.float64)
    u = quantize(x, seed)
    assert u.q.shape == x.shape and np.all(u.q >= -127)
    s = np.repeat(u.scales.astype(np.float64), BLOCK_SIZE)[: x.size]
    assert np.all(np.abs(u.dense() - x) <= s * (1 + 1e-6))


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(1, 300)), min_size=1, max_size=4),
    st.integers(0, 1000),
)
def test_property_file_round_trip(shapes, seed):
    layout = ModelLayout(tuple((f"t{i}", s) for i, s in enumerate(shapes)))
    u = quantize(np.random.default_rng(seed).normal(size=layout.size), seed)
    back = decode_update(encode_quantized(u, layout), layout)
    assert np.array_equal(back.q, u.q) and np.array_equal(back.scales, u.scales)
    model = layout.unflatten(np.random.default_rng(seed).normal(size=layout.size))
    decoded = decode_model(encode_model(model), layout)
    assert all(np.array_equal(decoded[n], model[n]) for n in layout.names)


def test_non_finite_delta_refused():
    d = delta()
    d["fc1.bias"][3] = np.nan
    with pytest.raises(UpdateFormatError) as info:
        encode_update(d, LAYOUT, 0)
    assert info.value.reason == "non_finite"


# -- malformed files: one test per reason code -------------------------------------------


def test_too_large_is_checked_before_parsing():
    assert reason(b"\xff" * 1000, max_size=999) == "too_large"
    assert reason(update_bytes(), max_size=100) == "too_large"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01\x02",
        struct.pack("<Q", 10**12) + b"{}",  # header longer than the file
        struct.pack("<Q", 2**63) + b"{}",  # absurd
        struct.pack("<Q", 4) + b"nope",
        struct.pack("<Q", 2) + b"[]",
        struct.pack("<Q", 3) + b"\xff{}",
    ],
)
def test_bad_header_bytes(data):
    assert reason(data) == "bad_header"


def _with_header(header: dict, payload: bytes) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + payload


def _header_of(data: bytes) -> tuple[dict, bytes]:
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def test_bad_offsets_and_metadata():
    header, payload = _header_of(update_bytes())
    name = "fc2.weight"
    start, end = header[name]["data_offsets"]
    for offsets in ([start, end + 1], [start + 1, end], [end, start], [start, 10**9]):
        h = json.loads(json.dumps(header))
        h[name]["data_offsets"] = offsets
        assert reason(_with_header(h, payload)) == "bad_header", offsets
    assert reason(_with_header(header, payload + b"\0")) == "bad_header"  # trailing bytes
    for meta_change in (
        {"format": "market-model/1"},
        {"block_size": "512"},
        {"tensor_order": "fc1.bias,fc1.weight,fc2.weight"},
    ):
        h = json.loads(json.dumps(header))
        h["__metadata__"].update(meta_change)
        assert reason(_with_header(h, payload)) == "bad_header", meta_change
    text = json.dumps(header)[:-1] + ', "fc1.bias": ' + json.dumps(header["fc1.bias"]) + "}"
    dup = struct.pack("<Q", len(text)) + text.encode() + payload
    with pytest.raises(UpdateFormatError, match="duplicate key"):
        decode_update(dup, LAYOUT)


def test_missing_and_extra_tensors():
    t = valid_tensors()
    del t["fc1.bias"]
    assert reason(raw_file(t, update_meta())) == "missing_tensor"
    t = valid_tensors()
    del t["__scales__"]
    assert reason(raw_file(t, update_meta())) == "missing_tensor"
    t = valid_tensors()
    t["sneaky"] = np.zeros(3, np.int8)
    assert reason(raw_file(t, update_meta())) == "extra_tensor"


def test_wrong_shape():
    t = valid_tensors()
    t["fc1.weight"] = np.ones((64, 40), np.int8)
    assert reason(raw_file(t, update_meta())) == "wrong_shape"
    t = valid_tensors()
    t["__scales__"] = np.ones(4, np.float32)
    assert reason(raw_file(t, update_meta())) == "wrong_shape"


def test_wrong_dtype():
    t = valid_tensors()
    t["fc1.bias"] = np.ones(40, np.float32)
    assert reason(raw_file(t, update_meta())) == "wrong_dtype"
    t = valid_tensors()
    t["__scales__"] = t["__scales__"].astype(np.float64)
    assert reason(raw_file(t, update_meta())) == "wrong_dtype"


def test_out_of_range():
    t = valid_tensors()
    t["fc2.weight"][1, 2] = -128
    assert reason(raw_file(t, update_meta())) == "out_of_range"
    t = valid_tensors()
    t["__scales__"][1] = -0.5
    assert reason(raw_file(t, update_meta())) == "out_of_range"


def test_non_finite_scales():
    for bad in (np.nan, np.inf):
        t = valid_tensors()
        t["__scales__"][2] = bad
        assert reason(raw_file(t, update_meta())) == "non_finite"


def test_valid_hand_made_file_decodes():
    u = decode_update(raw_file(valid_tensors(), update_meta()), LAYOUT)
    assert np.all(u.q == 1) and np.all(u.dense() == 0.5)


# -- model files ----------------------------------------------------------------------------


def test_model_round_trip_and_errors():
    model = delta(5)
    data = encode_model(model)
    back = decode_model(data, LAYOUT)
    assert list(back) == list(LAYOUT.names)
    assert all(np.array_equal(back[n], model[n]) for n in LAYOUT.names)
    bad = dict(model)
    bad["fc1.bias"] = model["fc1.bias"].copy()
    bad["fc1.bias"][0] = np.inf
    with pytest.raises(UpdateFormatError) as info:
        encode_model(bad)
    assert info.value.reason == "non_finite"
    meta = {"format": "market-model/1", "tensor_order": ",".join(LAYOUT.names)}
    with pytest.raises(UpdateFormatError) as info:
        decode_model(raw_file(bad, meta), LAYOUT)
    assert info.value.reason == "non_finite"
    with pytest.raises(UpdateFormatError) as info:
        decode_model(update_bytes(), LAYOUT)  # an update is not a model
    assert info.value.reason == "bad_header"
    with pytest.raises(UpdateFormatError) as info:
        decode_model(data, LAYOUT, max_size=10)
    assert info.value.reason == "too_large"


def test_bytes_digest():
    data = update_bytes()
    assert bytes_digest(data) == digest_of_cid(cid_of(data))
    assert len(bytes_digest(data)) == 32


def test_golden_bytes_are_stable():
    """Same inputs, same bytes, same CID: on every machine and every run (SPEC determinism)."""
    layout = ModelLayout((("w", (2, 3)), ("b", (2,))))
    d = {
        "w": np.arange(6, dtype=np.float32).reshape(2, 3) / 10,
        "b": np.array([-1.0, 0.25], np.float32),
    }
    data = encode_update(d, layout, seed=42)
    assert data[8:].startswith(b'{"__metadata__":{"block_size":"1024","format":"market-update/1"')
    assert cid_of(data) == "bafkreibc3qdf3i3jcu7i3pmlr3halytdmmo6xonk56667uo7yz77rmeo5i"
    assert cid_of(encode_model(d)) == "bafkreiadavbunvkvd4ro6xdmrm73vhfti45b4wborzu4onafbvxrh3ucay"
    assert decode_update(data, layout).q.tolist() == [0, 13, 25, 38, 51, 63, -127, 31]


def test_subnormal_block_keeps_error_bound():
    x = np.zeros(BLOCK_SIZE + 3)
    x[:3] = [1e-45, -3e-44, 2e-40]
    x[BLOCK_SIZE] = 5e-46
    u = quantize(x, 0)
    assert np.all(u.scales > 0)
    s = np.repeat(u.scales.astype(np.float64), BLOCK_SIZE)[: x.size]
    assert np.all(np.abs(u.dense() - x) <= s)


def test_quantize_does_not_depend_on_internal_chunking(monkeypatch):
    import market.storage.updates as updates

    x = np.random.default_rng(5).normal(size=20 * BLOCK_SIZE + 77)
    whole = quantize(x, 9)
    monkeypatch.setattr(updates, "_QUANTIZE_CHUNK", 3)
    chunked = quantize(x, 9)
    assert np.array_equal(whole.q, chunked.q) and np.array_equal(whole.scales, chunked.scales)
