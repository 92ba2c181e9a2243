"""A corpus of hostile update files for one model layout, each with the reason code the
aggregator must reject it with (market.storage.tensorfile.REASONS, plus the store's
``too_large``).

Built from a valid update by editing its header or bytes, plus foreign payloads renamed
to look like an update (a zip archive as torch.save writes, pickle streams — written as
literal bytes; nothing here or in the code under test ever unpickles).
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np

from market.storage import ModelLayout, encode_update
from market.storage.tensorfile import serialize
from market.storage.updates import BLOCK_SIZE, SCALES, UPDATE_FORMAT

# pickle protocol 4 of {"a": 1}, and a protocol-0 pickle that would run os.system if loaded
PICKLE_DICT = b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s."
PICKLE_RCE = b"cos\nsystem\n(S'touch /tmp/market-pwned'\ntR."
HUGE = 2**62


def valid_update(layout: ModelLayout, seed: int = 0) -> bytes:
    """A well-formed update: one shared direction plus a little per-seed noise, so that
    honest updates agree with each other (and each earns a positive score)."""
    base, noise = np.random.default_rng(12345), np.random.default_rng(seed)
    delta = {
        n: (base.normal(size=s) + 0.1 * noise.normal(size=s)).astype(np.float32)
        for n, s in layout.entries
    }
    return encode_update(delta, layout, seed=seed)


def split(blob: bytes) -> tuple[dict, bytes]:
    """(header dict, data bytes) of a safetensors file we wrote."""
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def join(header: dict, body: bytes) -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + body


def _edit(blob: bytes, fn) -> bytes:
    header, body = split(blob)
    out = fn(header, body)
    return join(*(out if isinstance(out, tuple) else (header, body)))


def _tensors(layout: ModelLayout, scales: np.ndarray, q: np.ndarray | None = None):
    q = np.ones(layout.size, np.int8) if q is None else q
    out, pos = [], 0
    for name, shape in layout.entries:
        n = int(np.prod(shape))
        out.append((name, "I8", q[pos : pos + n].reshape(shape)))
        pos += n
    out.append((SCALES, "F32", scales.astype(np.float32)))
    return out


def _meta(layout: ModelLayout) -> dict[str, str]:
    return {
        "format": UPDATE_FORMAT,
        "block_size": str(BLOCK_SIZE),
        "tensor_order": ",".join(layout.names),
    }


def hostile_corpus(layout: ModelLayout, max_bytes: int) -> dict[str, tuple[bytes, str]]:
    """{case name: (file bytes, expected reason code)}."""
    good = valid_update(layout)
    first = layout.names[0]
    blocks = layout.num_blocks

    def lie_offsets(header, body):
        header[first]["data_offsets"][1] += 1_000_000  # claims bytes the file does not have

    def overlap(header, body):
        second = layout.names[1]
        header[second]["data_offsets"] = list(header[first]["data_offsets"])

    def huge_shape(header, body):
        header[first]["shape"] = [HUGE, HUGE]  # declared 2**124 elements

    def huge_offsets(header, body):
        header[first]["data_offsets"] = [0, HUGE]

    def wrong_dtype(header, body):
        header[SCALES]["dtype"] = "F64"

    def extra(header, body):
        end = len(body)
        header["backdoor"] = {"dtype": "I8", "shape": [4], "data_offsets": [end, end + 4]}
        return header, body + b"\1\2\3\4"

    def missing(header, body):
        info = header.pop(SCALES)
        start, end = info["data_offsets"]
        assert end == len(body)
        return header, body[:start]

    def wrong_format(header, body):
        header["__metadata__"]["format"] = "market-model/1"

    def duplicate_key(_header, _body):
        return None

    zip_buf = io.BytesIO()
    with zipfile.ZipFile(zip_buf, "w") as zf:  # what torch.save writes: a zip with a pickle
        zf.writestr("archive/data.pkl", PICKLE_DICT)
        zf.writestr("archive/version", "3\n")
    n = int.from_bytes(good[:8], "little")
    dup_header = good[8 : 8 + n].rstrip().rstrip(b"}") + b',"__metadata__":{}}'
    dup = len(dup_header).to_bytes(8, "little") + dup_header + good[8 + n :]
    nested = b"[" * 99_000 + b"]" * 99_000  # 198 KB: under the size limit
    neg_q = np.ones(layout.size, np.int8)
    neg_q[7] = -128

    return {
        "empty": (b"", "bad_header"),
        "truncated_length": (good[:5], "bad_header"),
        "truncated_header": (good[: 8 + n // 2], "bad_header"),
        "truncated_data": (good[: len(good) - 100], "bad_header"),
        "header_length_huge": (HUGE.to_bytes(8, "little") + good[8:], "bad_header"),
        "header_length_lies": ((n + 64).to_bytes(8, "little") + good[8:], "bad_header"),
        "offsets_lie_about_size": (_edit(good, lie_offsets), "bad_header"),
        "offsets_huge": (_edit(good, huge_offsets), "bad_header"),
        "overlapping_offsets": (_edit(good, overlap), "bad_header"),
        "shape_huge": (_edit(good, huge_shape), "wrong_shape"),
        "wrong_dtype": (_edit(good, wrong_dtype), "wrong_dtype"),
        "extra_tensor": (_edit(good, extra), "extra_tensor"),
        "missing_tensor": (_edit(good, missing), "missing_tensor"),
        "wrong_format": (_edit(good, wrong_format), "bad_header"),
        "duplicate_key": (dup, "bad_header"),
        "nested_json": (len(nested).to_bytes(8, "little") + nested, "bad_header"),
        "nan_scales": (
            serialize(_tensors(layout, np.full(blocks, np.nan)), _meta(layout)),
            "non_finite",
        ),
        "inf_scales": (
            serialize(_tensors(layout, np.full(blocks, np.inf)), _meta(layout)),
            "non_finite",
        ),
        "negative_scale": (
            serialize(_tensors(layout, -np.ones(blocks)), _meta(layout)),
            "out_of_range",
        ),
        "int8_minus_128": (
            serialize(_tensors(layout, np.ones(blocks), neg_q), _meta(layout)),
            "out_of_range",
        ),
        "zip_renamed": (zip_buf.getvalue(), "bad_header"),
        "pickle_renamed": (PICKLE_DICT, "bad_header"),
        "pickle_rce_renamed": (PICKLE_RCE, "bad_header"),
        "oversized": (good + b" " * (max_bytes + 1), "too_large"),
    }
