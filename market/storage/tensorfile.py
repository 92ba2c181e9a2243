"""Reading and writing safetensors files ourselves, for untrusted input and stable bytes.

The header (8-byte little-endian length, JSON) is parsed and checked here before any
bytes reach the safetensors library: size, dtypes, shapes, contiguous in-bounds offsets.
Writing is done here too, because ``safetensors.numpy.save`` orders ``__metadata__`` keys
from a hash map, so one update could get several CIDs.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from safetensors.numpy import load as _st_load

from market.errors import UpdateFormatError as _BaseUpdateFormatError

MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit
# A safetensors header nests 3 deep ({name: {shape: [...]}}). Deeper input is refused before
# json.loads: its C scanner recurses once per level up to sys.getrecursionlimit(), which
# py_ecc raises to 100000 on import — enough to overflow the C stack (SIGSEGV) on ~200 KB
# of brackets, killing the aggregator on a hostile update.
MAX_NESTING = 8

REASONS = (
    "too_large",
    "bad_header",
    "missing_tensor",
    "extra_tensor",
    "wrong_shape",
    "wrong_dtype",
    "out_of_range",
    "non_finite",
)

DTYPES = {"I8": (np.int8, 1), "F32": (np.float32, 4)}


class UpdateFormatError(_BaseUpdateFormatError):
    """A malformed update or model file; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        assert reason in REASONS, reason
        self.reason = reason
        super().__init__(f"[{reason}] {message}")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _nesting(raw: bytes, chunk: int = 1 << 16) -> int:
    """An upper bound on the bracket nesting of JSON text: the largest rise of the running
    count of opening minus closing brackets (brackets inside strings counted too, so no
    string can hide a deep nest). Linear, in chunks: headers may be 100 MiB."""
    level, lowest, deepest = 0, 0, 0
    for start in range(0, len(raw), chunk):
        chars = np.frombuffer(raw, dtype=np.uint8, count=min(chunk, len(raw) - start), offset=start)
        steps = np.zeros(chars.size, dtype=np.int32)
        steps[(chars == ord("[")) | (chars == ord("{"))] = 1
        steps[(chars == ord("]")) | (chars == ord("}"))] = -1
        levels = np.cumsum(steps, dtype=np.int32) + level
        lows = np.minimum(np.minimum.accumulate(levels), lowest)
        deepest = max(deepest, int((levels - lows).max()), level - lowest)
        level, lowest = int(levels[-1]), int(lows[-1])
    return deepest


def parse_header(data: bytes, max_size: int) -> tuple[dict[str, dict], dict[str, str]]:
    """Check everything about a safetensors file except the tensor values."""
    if len(data) > max_size:
        raise UpdateFormatError("too_large", f"file is {len(data)} bytes, limit {max_size}")
    if len(data) < 8:
        raise UpdateFormatError("bad_header", "file shorter than the 8-byte header length")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8 or n > MAX_HEADER or n < 2:
        raise UpdateFormatError("bad_header", f"header length {n} for a {len(data)}-byte file")
    raw = bytes(data[8 : 8 + n])
    if _nesting(raw) > MAX_NESTING:
        raise UpdateFormatError("bad_header", f"header nests deeper than {MAX_NESTING} levels")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UpdateFormatError("bad_header", f"header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise UpdateFormatError("bad_header", "header is not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in meta.items()
    ):
        raise UpdateFormatError("bad_header", "__metadata__ must map strings to strings")
    buffer_len = len(data) - 8 - n
    spans = []
    for name, info in header.items():
        if (
            not isinstance(info, dict)
            or set(info) != {"dtype", "shape", "data_offsets"}
            or not isinstance(info["dtype"], str)
            or not isinstance(info["shape"], list)
            or not all(type(x) is int and x >= 0 for x in info["shape"])
            or not isinstance(info["data_offsets"], list)
            or len(info["data_offsets"]) != 2
            or not all(type(x) is int and x >= 0 for x in info["data_offsets"])
        ):
            raise UpdateFormatError("bad_header", f"malformed entry for tensor {name!r}")
        start, end = info["data_offsets"]
        spans.append((start, end, name))
    spans.sort()
    pos = 0
    for start, end, name in spans:
        if start != pos or end < start:
            raise UpdateFormatError("bad_header", f"tensor {name!r} data is not contiguous")
        pos = end
    if pos != buffer_len:
        raise UpdateFormatError("bad_header", f"tensors cover {pos} of {buffer_len} data bytes")
    return header, meta


def check_entries(
    header: dict[str, dict], meta: dict[str, str], fmt: str, expected: dict[str, tuple]
) -> None:
    """Names, dtypes, shapes and sizes against the expected ``{name: (dtype, shape)}``."""
    if meta.get("format") != fmt:
        raise UpdateFormatError("bad_header", f"format is {meta.get('format')!r}, expected {fmt!r}")
    missing = [n for n in expected if n not in header]
    if missing:
        raise UpdateFormatError("missing_tensor", f"tensors missing: {missing}")
    extra = [n for n in header if n not in expected]
    if extra:
        raise UpdateFormatError("extra_tensor", f"tensors not in the model: {extra}")
    for name, (dtype, shape) in expected.items():
        info = header[name]
        if info["dtype"] != dtype:
            raise UpdateFormatError(
                "wrong_dtype", f"tensor {name!r} is {info['dtype']}, expected {dtype}"
            )
        if tuple(info["shape"]) != shape:
            raise UpdateFormatError(
                "wrong_shape", f"tensor {name!r} has shape {info['shape']}, expected {shape}"
            )
        start, end = info["data_offsets"]
        if end - start != math.prod(shape) * DTYPES[dtype][1]:
            raise UpdateFormatError("bad_header", f"tensor {name!r} byte length mismatch")


def serialize(tensors: list[tuple[str, str, np.ndarray]], meta: dict[str, str]) -> bytes:
    """A safetensors file with a byte-stable layout.

    ``safetensors.numpy.save`` orders ``__metadata__`` keys from a hash map, so one update
    could get several CIDs; here the header lists the metadata sorted, then the tensors
    in the given order with their data laid out in that order, compact JSON padded with
    spaces to a multiple of 8 bytes (as the reference writer pads).
    """
    header: dict[str, Any] = {"__metadata__": dict(sorted(meta.items()))}
    chunks: list[bytes] = []
    pos = 0
    for name, dtype, arr in tensors:
        np_dtype = np.dtype(DTYPES[dtype][0]).newbyteorder("<")
        raw = np.ascontiguousarray(arr, dtype=np_dtype).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(arr.shape),
            "data_offsets": [pos, pos + len(raw)],
        }
        chunks.append(raw)
        pos += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def load(data: bytes) -> dict[str, np.ndarray]:
    try:
        return _st_load(bytes(data))
    except Exception as exc:  # the library's own checks, after ours
        raise UpdateFormatError("bad_header", f"safetensors refused the file: {exc}") from exc
