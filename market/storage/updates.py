"""The model-update wire format: int8 blocks with float32 scales, in safetensors.

An update is the flattened concatenation of the model's tensors (in the model's order)
quantised in blocks of ``BLOCK_SIZE`` = 1024 parameters: value = s_b · q with q an int8
in [−127, 127] and s_b = max|x| / 127 a float32 per block (0 for a zero block), rounded
stochastically and without bias from a seeded generator. Integers keep the aggregator's
Gram matrix exact (SPEC "Exact arithmetic").

Files come from the network: the safetensors header is parsed and checked (size,
dtypes, shapes, contiguous in-bounds offsets, in :mod:`market.storage.tensorfile`) before
any bytes reach the safetensors library; every failure is an :class:`UpdateFormatError`
with a stable ``reason``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from market.errors import ConfigError
from market.storage.base import DEFAULT_MAX_SIZE
from market.storage.cid import cid_of, digest_of_cid
from market.storage.tensorfile import (  # noqa: F401  (re-exported)
    REASONS,
    UpdateFormatError,
    check_entries,
    load,
    parse_header,
    serialize,
)

BLOCK_SIZE = 1024
QMAX = 127
_QUANTIZE_CHUNK = 1024  # blocks per step of quantize (1M parameters)
UPDATE_FORMAT = "market-update/1"
MODEL_FORMAT = "market-model/1"
LAYOUT_FORMAT = "market-layout/1"
SCALES = "__scales__"


def bytes_digest(data: bytes) -> bytes:
    """The on-chain digest of a blob: the sha2-256 inside its IPFS CID."""
    return digest_of_cid(cid_of(data))


# -- layout -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelLayout:
    """Tensor names and shapes in the model's order: the coordinate system of updates."""

    entries: tuple[tuple[str, tuple[int, ...]], ...]

    def __post_init__(self) -> None:
        entries = tuple((str(n), tuple(int(x) for x in s)) for n, s in self.entries)
        object.__setattr__(self, "entries", entries)
        names = [n for n, _ in entries]
        if len(set(names)) != len(names):
            raise ConfigError(f"duplicate tensor names in layout: {names}")
        for name, shape in entries:
            if not name or "," in name or name in (SCALES, "__metadata__"):
                raise ConfigError(f"tensor name {name!r} is empty, reserved or has a comma")
            if any(x < 0 for x in shape):
                raise ConfigError(f"tensor {name!r} has a negative dimension {shape}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.entries)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self.entries)

    @property
    def size(self) -> int:
        """d, the number of parameters."""
        return sum(math.prod(s) for _, s in self.entries)

    @property
    def num_blocks(self) -> int:
        return -(-self.size // BLOCK_SIZE)

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Any]) -> ModelLayout:
        """Layout of a state dict (numpy arrays or anything with ``.shape``), in its order."""
        return cls(tuple((name, tuple(np.shape(t))) for name, t in tensors.items()))

    def to_json(self) -> str:
        return json.dumps(
            {"format": LAYOUT_FORMAT, "tensors": [[n, list(s)] for n, s in self.entries]},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelLayout:
        try:
            obj = json.loads(text)
            if obj.get("format") != LAYOUT_FORMAT:
                raise ValueError(f"format is {obj.get('format')!r}, not {LAYOUT_FORMAT!r}")
            entries = tuple((str(n), tuple(int(x) for x in s)) for n, s in obj["tensors"])
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ConfigError(f"not a model layout: {exc}") from exc
        return cls(entries)

    def _check(self, tensors: Mapping[str, Any]) -> None:
        missing = [n for n in self.names if n not in tensors]
        if missing:
            raise UpdateFormatError("missing_tensor", f"tensors missing: {missing}")
        extra = [n for n in tensors if n not in self.shapes]
        if extra:
            raise UpdateFormatError("extra_tensor", f"tensors not in the model: {extra}")
        for name, shape in self.entries:
            if tuple(np.shape(tensors[name])) != shape:
                raise UpdateFormatError(
                    "wrong_shape",
                    f"tensor {name!r} has shape {tuple(np.shape(tensors[name]))}, "
                    f"the model has {shape}",
                )

    def flatten(self, tensors: Mapping[str, Any], dtype: Any = np.float64) -> np.ndarray:
        """Concatenate ``tensors`` in layout order into one vector of length d."""
        self._check(tensors)
        parts = [np.asarray(tensors[n], dtype=dtype).reshape(-1) for n in self.names]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    def unflatten(self, vec: np.ndarray) -> dict[str, np.ndarray]:
        """Split a length-d vector back into float32 tensors, in layout order."""
        vec = np.asarray(vec)
        if vec.shape != (self.size,):
            raise UpdateFormatError("wrong_shape", f"vector shape {vec.shape} != ({self.size},)")
        out: dict[str, np.ndarray] = {}
        pos = 0
        for name, shape in self.entries:
            n = math.prod(shape)
            out[name] = vec[pos : pos + n].astype(np.float32).reshape(shape)
            pos += n
        return out


# -- quantisation -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class QuantizedUpdate:
    """An update as the aggregator sees it: int8 ``q`` (d,), float32 ``scales`` (blocks,)."""

    q: np.ndarray
    scales: np.ndarray
    block_size: int = BLOCK_SIZE

    @property
    def size(self) -> int:
        return int(self.q.shape[0])

    def dense(self) -> np.ndarray:
        """float64 values q · s_b (exact: an int8 times a float32 fits in a float64)."""
        s = np.repeat(self.scales.astype(np.float64), self.block_size)[: self.size]
        return self.q.astype(np.float64) * s


def quantize(vec: np.ndarray, seed: int | np.random.Generator) -> QuantizedUpdate:
    """Blockwise int8 quantisation with unbiased stochastic rounding.

    E[q · s] = x exactly for every coordinate, and |q · s − x| < s.
    """
    x = np.asarray(vec, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(x)):
        raise UpdateFormatError("non_finite", "the update has NaN or infinite values")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    d = x.shape[0]
    nb = -(-d // BLOCK_SIZE)
    q = np.empty(nb * BLOCK_SIZE, dtype=np.int8)
    scales = np.empty(nb, dtype=np.float32)
    tiny = np.float32(np.finfo(np.float32).smallest_subnormal)
    # Chunks of blocks bound the float64 temporaries; the generator's stream is consumed
    # in the same order as one big draw, so the result does not depend on the chunking.
    for b0 in range(0, nb, _QUANTIZE_CHUNK):
        b1 = min(nb, b0 + _QUANTIZE_CHUNK)
        part = np.zeros((b1 - b0) * BLOCK_SIZE)
        src = x[b0 * BLOCK_SIZE : b1 * BLOCK_SIZE]
        part[: src.size] = src
        blocks = part.reshape(b1 - b0, BLOCK_SIZE)
        maxabs = np.abs(blocks).max(axis=1)
        sc = (maxabs / QMAX).astype(np.float32)
        if not np.all(np.isfinite(sc)):
            raise UpdateFormatError("non_finite", "a block's scale overflows float32")
        # A tiny non-zero block whose scale underflows float32 gets the smallest scale
        # instead (then max|x| / s < 127 still), so |q · s − x| ≤ s holds for every block.
        sc = np.where((sc == 0) & (maxabs > 0), tiny, sc).astype(np.float32)
        s64 = sc.astype(np.float64)
        safe = np.where(s64 > 0, s64, 1.0)
        # The scale is rounded to float32, so |x / s| may exceed 127 by an ulp: clip.
        v = np.clip(blocks / safe[:, None], -QMAX, QMAX)
        low = np.floor(v)
        u = rng.random(v.shape)
        q[b0 * BLOCK_SIZE : b1 * BLOCK_SIZE] = (low + (u < (v - low))).reshape(-1)
        scales[b0:b1] = sc
    q = q[:d]
    return QuantizedUpdate(q, scales)


# -- updates ------------------------------------------------------------------------------


def encode_quantized(update: QuantizedUpdate, layout: ModelLayout) -> bytes:
    """Serialise an already quantised update (validated as a decoder would)."""
    q = np.asarray(update.q)
    scales = np.asarray(update.scales)
    if update.block_size != BLOCK_SIZE:
        raise UpdateFormatError("bad_header", f"block size {update.block_size} != {BLOCK_SIZE}")
    if q.dtype != np.int8 or scales.dtype != np.float32:
        raise UpdateFormatError("wrong_dtype", "q must be int8 and scales float32")
    if q.shape != (layout.size,) or scales.shape != (layout.num_blocks,):
        raise UpdateFormatError("wrong_shape", f"q {q.shape} / scales {scales.shape} vs layout")
    _check_values(q, scales)
    tensors = [(n, "I8", t) for n, t in _split_int8(q, layout).items()]
    tensors.append((SCALES, "F32", scales))
    meta = {
        "format": UPDATE_FORMAT,
        "block_size": str(BLOCK_SIZE),
        "tensor_order": ",".join(layout.names),
    }
    return serialize(tensors, meta)


def _split_int8(q: np.ndarray, layout: ModelLayout) -> dict[str, np.ndarray]:
    out, pos = {}, 0
    for name, shape in layout.entries:
        n = math.prod(shape)
        out[name] = q[pos : pos + n].reshape(shape)
        pos += n
    return out


def _check_values(q: np.ndarray, scales: np.ndarray) -> None:
    if q.size and int(q.min()) < -QMAX:
        raise UpdateFormatError("out_of_range", "an int8 value is -128; the range is [-127, 127]")
    if not np.all(np.isfinite(scales)):
        raise UpdateFormatError("non_finite", "a block scale is NaN or infinite")
    if scales.size and float(scales.min()) < 0:
        raise UpdateFormatError("out_of_range", "a block scale is negative")


def encode_update(delta: Mapping[str, np.ndarray], layout: ModelLayout, seed: int) -> bytes:
    """Quantise ``delta`` (same names and shapes as ``layout``) and serialise it."""
    return encode_quantized(quantize(layout.flatten(delta), seed), layout)


def decode_update(
    data: bytes, layout: ModelLayout, max_size: int = DEFAULT_MAX_SIZE
) -> QuantizedUpdate:
    """Validate and decode an untrusted update file for ``layout``."""
    header, meta = parse_header(data, max_size)
    expected: dict[str, tuple] = {n: ("I8", s) for n, s in layout.entries}
    expected[SCALES] = ("F32", (layout.num_blocks,))
    check_entries(header, meta, UPDATE_FORMAT, expected)
    if meta.get("block_size") != str(BLOCK_SIZE):
        raise UpdateFormatError("bad_header", f"block_size {meta.get('block_size')!r}")
    if meta.get("tensor_order") != ",".join(layout.names):
        raise UpdateFormatError("bad_header", "tensor_order does not match the model's order")
    tensors = load(data)
    parts = [tensors[n].reshape(-1) for n in layout.names]
    q = np.concatenate(parts).astype(np.int8) if parts else np.zeros(0, np.int8)
    scales = tensors[SCALES].astype(np.float32)
    _check_values(q, scales)
    return QuantizedUpdate(q, scales, BLOCK_SIZE)


# -- global model ---------------------------------------------------------------------------


def encode_model(tensors: Mapping[str, Any]) -> bytes:
    """The global model as float32 safetensors, tensor order recorded in the metadata."""
    layout = ModelLayout.from_tensors(tensors)
    arrays = [(n, "F32", np.asarray(t, dtype=np.float32)) for n, t in tensors.items()]
    for name, _, arr in arrays:
        if not np.all(np.isfinite(arr)):
            raise UpdateFormatError("non_finite", f"tensor {name!r} has NaN or infinite values")
    meta = {"format": MODEL_FORMAT, "tensor_order": ",".join(layout.names)}
    return serialize(arrays, meta)


def decode_model(
    data: bytes, layout: ModelLayout, max_size: int = DEFAULT_MAX_SIZE
) -> dict[str, np.ndarray]:
    """Validate and decode an untrusted model file; float32 tensors in layout order."""
    header, meta = parse_header(data, max_size)
    check_entries(header, meta, MODEL_FORMAT, {n: ("F32", s) for n, s in layout.entries})
    if meta.get("tensor_order") != ",".join(layout.names):
        raise UpdateFormatError("bad_header", "tensor_order does not match the model's order")
    tensors = load(data)
    out = {}
    for name in layout.names:
        arr = np.array(tensors[name], dtype=np.float32)
        if not np.all(np.isfinite(arr)):
            raise UpdateFormatError("non_finite", f"tensor {name!r} has NaN or infinite values")
        out[name] = arr
    return out
