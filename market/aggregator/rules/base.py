"""The shapes every robust rule shares: the quantised batch, the result, the abstract rule.

Updates arrive as int8 values in blocks of ``block_size`` parameters with one float32 scale
per block (SPEC "Exact arithmetic"). A rule never needs the dense float matrix: it reads the
batch through :meth:`ChunkSource.chunks` (column ranges aligned to blocks), so the same code
serves a small in-memory batch and a d = 10⁷ round streamed from the store.

Determinism: the dequantised value ``float64(s) * float64(q)`` is exact (24-bit × 8-bit
mantissas), and :func:`weighted_sum` adds ``c_i · u_i`` over i in index order with separate
elementwise multiply and add, so the aggregate's bytes are identical on every machine.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from market.aggregator.rules.parallel import OrderedWork
from market.errors import AggregationError

BLOCK_SIZE = 1024
QMAX = 127
# Columns per streamed chunk: a multiple of the block size, kept near 2²² values per chunk.
DEFAULT_CHUNK_VALUES = 1 << 22
# Values per dequantised tile of a weighted sum (4 MB of float64: measured fastest; the
# whole 2²²-value chunk spills out of cache, smaller tiles pay per-call overhead).
SUM_VALUES = 1 << 19


class ChunkSource(ABC):
    """Anything that yields the n×d update matrix as column chunks aligned to blocks."""

    n: int
    d: int
    block_size: int

    @property
    def n_blocks(self) -> int:
        return math.ceil(self.d / self.block_size)

    @abstractmethod
    def read(self, start_block: int, stop_block: int) -> tuple[np.ndarray, np.ndarray]:
        """int8 values (n, cols) and float32 scales (n, stop-start) for blocks [start, stop)."""

    def chunk_blocks(self, chunk_values: int = DEFAULT_CHUNK_VALUES) -> int:
        """Blocks per chunk so that one chunk holds about ``chunk_values`` values."""
        return max(1, chunk_values // max(1, self.n * self.block_size))

    def chunks(
        self, chunk_values: int = DEFAULT_CHUNK_VALUES
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(first_column, q, scales)`` in column order, always in the same order."""
        step = self.chunk_blocks(chunk_values)
        for start in range(0, self.n_blocks, step):
            stop = min(self.n_blocks, start + step)
            q, s = self.read(start, stop)
            yield start * self.block_size, q, s


def _check_block(q: np.ndarray, s: np.ndarray, n: int, cols: int, blocks: int) -> None:
    if q.dtype != np.int8 or q.shape != (n, cols):
        raise AggregationError(
            f"chunk values must be int8 of shape {(n, cols)}, got {q.dtype} {q.shape}"
        )
    if s.dtype != np.float32 or s.shape != (n, blocks):
        raise AggregationError(
            f"chunk scales must be float32 of shape {(n, blocks)}, got {s.dtype} {s.shape}"
        )


@dataclass(frozen=True)
class QuantizedBatch(ChunkSource):
    """n updates held in memory: ``q`` int8 (n, d), ``scales`` float32 (n, ceil(d/B))."""

    q: np.ndarray
    scales: np.ndarray
    block_size: int = BLOCK_SIZE

    def __post_init__(self) -> None:
        if self.q.ndim != 2 or self.q.dtype != np.int8:
            raise AggregationError(f"q must be a 2-D int8 array, got {self.q.dtype} {self.q.shape}")
        if self.block_size <= 0:
            raise AggregationError(f"block_size must be positive, got {self.block_size}")
        n, d = self.q.shape
        blocks = math.ceil(d / self.block_size)
        if self.scales.dtype != np.float32 or self.scales.shape != (n, blocks):
            raise AggregationError(
                f"scales must be float32 of shape {(n, blocks)} for q {self.q.shape} and "
                f"block_size {self.block_size}, got {self.scales.dtype} {self.scales.shape}"
            )
        if n == 0:
            raise AggregationError("a batch needs at least one update")
        if np.any(self.q == -128):
            raise AggregationError("int8 values must lie in [-127, 127]; -128 is not allowed")

    @property
    def n(self) -> int:  # type: ignore[override]
        return int(self.q.shape[0])

    @property
    def d(self) -> int:  # type: ignore[override]
        return int(self.q.shape[1])

    def read(self, start_block: int, stop_block: int) -> tuple[np.ndarray, np.ndarray]:
        b = self.block_size
        return self.q[:, start_block * b : stop_block * b], self.scales[:, start_block:stop_block]

    @classmethod
    def from_dense(
        cls, u: np.ndarray, block_size: int = BLOCK_SIZE, rng: np.random.Generator | None = None
    ) -> QuantizedBatch:
        """Quantise float updates per block: s = max|u|/127, round to nearest (or
        stochastically when ``rng`` is given, as the trainer does)."""
        u = np.atleast_2d(np.asarray(u, dtype=np.float64))
        if not np.all(np.isfinite(u)):
            raise AggregationError("cannot quantise non-finite values; reject the update first")
        n, d = u.shape
        blocks = math.ceil(d / block_size)
        pad = blocks * block_size - d
        padded = np.pad(u, ((0, 0), (0, pad))).reshape(n, blocks, block_size)
        amax = np.abs(padded).max(axis=2)
        scales = (amax / QMAX).astype(np.float32)
        safe = np.where(scales > 0, scales, 1.0).astype(np.float64)[:, :, None]
        x = padded / safe
        x = np.rint(x) if rng is None else np.floor(x + rng.random(x.shape))
        q = np.clip(x, -QMAX, QMAX).astype(np.int8).reshape(n, blocks * block_size)[:, :d]
        return cls(np.ascontiguousarray(q), scales, block_size)

    def dense(self) -> np.ndarray:
        """The exact float64 values (n, d); for tests and small batches only."""
        return dequantize(self.q, self.scales, self.block_size)

    def select(self, rows: Sequence[int]) -> QuantizedBatch:
        idx = np.asarray(rows, dtype=np.int64)
        return QuantizedBatch(self.q[idx], self.scales[idx], self.block_size)


class CallableSource(ChunkSource):
    """A chunk source backed by ``fetch(start_block, stop_block) -> (q, scales)``,
    e.g. range reads from the store; the caller keeps only one chunk in memory."""

    def __init__(
        self,
        n: int,
        d: int,
        fetch: Callable[[int, int], tuple[np.ndarray, np.ndarray]],
        block_size: int = BLOCK_SIZE,
    ) -> None:
        self.n, self.d, self.block_size, self._fetch = n, d, block_size, fetch

    def read(self, start_block: int, stop_block: int) -> tuple[np.ndarray, np.ndarray]:
        q, s = self._fetch(start_block, stop_block)
        cols = min(self.d, stop_block * self.block_size) - start_block * self.block_size
        _check_block(q, s, self.n, cols, stop_block - start_block)
        return q, s


def dequantize(q: np.ndarray, scales: np.ndarray, block_size: int = BLOCK_SIZE) -> np.ndarray:
    """float64 values of a chunk: exact, since float64 holds every s·q product."""
    n, cols = q.shape
    blocks = scales.shape[1]
    full = min(blocks, cols // block_size)
    u = q.astype(np.float64)
    if full:
        head = u[:, : full * block_size].reshape(n, full, block_size)
        head *= scales[:, :full].astype(np.float64)[:, :, None]
    if full < blocks:
        u[:, full * block_size :] *= scales[:, full:].astype(np.float64)
    return u


def weighted_sum(source: ChunkSource, coefficients: np.ndarray) -> np.ndarray:
    """Σ c_i u_i as an explicit float64 loop over i in index order (bit-reproducible)."""
    return weighted_sums(source, np.asarray(coefficients, dtype=np.float64)[None, :])[0]


def sequential_sum(rows: np.ndarray) -> np.ndarray:
    """Σ of the rows of a C-contiguous float64 (m, w) array, added one after another in
    index order. ``np.add.reduce`` over the leading axis does exactly that when w ≥ 2
    (NumPy sums pairwise only along the contiguous axis, documented under ``np.sum``); with
    one column that axis is the contiguous one, so the rows are added in a loop."""
    if rows.shape[1] >= 2:
        return np.add.reduce(rows, axis=0)
    acc = rows[0].copy()
    for row in rows[1:]:
        acc += row
    return acc


def weighted_sums(source: ChunkSource, coefficients: np.ndarray) -> np.ndarray:
    """Several aggregates (r, d) from coefficient rows (r, n) in one pass over the source;
    each row is computed exactly as :func:`weighted_sum` computes it alone.

    Per column, ((0 + c_0·u_0) + c_1·u_1) + … in index order, each product and add rounded
    once (u = s·q is exact). Columns are taken in tiles of about ``SUM_VALUES`` values so
    the dequantised tile stays in cache, and :func:`sequential_sum` adds a tile's rows.
    Rows with a zero coefficient add ±0, which changes nothing: the running sum starts at
    +0 and never becomes −0 (a leading −0 is turned into +0 by the final ``+ 0.0``).
    """
    c = np.asarray(coefficients, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != source.n:
        raise AggregationError(f"need (r, {source.n}) coefficients, got shape {c.shape}")
    out = np.zeros((c.shape[0], source.d), dtype=np.float64)
    used = np.flatnonzero(np.any(c != 0.0, axis=0))  # Krum needs one row, not n
    if not len(used):
        return out
    cu = c[:, used, None]
    b = source.block_size
    step = max(1, SUM_VALUES // (len(used) * b))

    def tile(start: int, q: np.ndarray, s: np.ndarray) -> None:
        u = dequantize(q, s, b)
        terms = np.empty_like(u)
        cols = slice(start, start + u.shape[1])
        for r in range(c.shape[0]):
            np.multiply(u, cu[r], out=terms)
            np.add(sequential_sum(terms), 0.0, out=out[r, cols])

    # Tiles write disjoint columns, so worker threads cannot change a byte.
    work = OrderedWork(lambda _: None)
    for col, q, s in source.chunks():
        if len(used) < source.n:
            q, s = q[used], s[used]
        for k in range(0, s.shape[1], step):
            work.submit(tile, col + k * b, q[:, k * b : (k + step) * b], s[:, k : k + step])
    work.drain()
    return out


@dataclass
class AggregationResult:
    """What a rule returns; ``coefficients`` give aggregate = Σ c_i u_i when ``linear``,
    otherwise (coordinate-wise rules) each update's average per-coordinate weight."""

    aggregate: np.ndarray
    coefficients: np.ndarray
    flags: list[str | None]
    evidence: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] | None = None
    linear: bool = True
    # The exact Gram matrix when the rule computed it (saves the caller another pass).
    gram: np.ndarray | None = None


COMMON_HELP: dict[str, str] = {
    "f": "updates assumed Byzantine; null: ⌊byzantine_fraction·n⌋",
    "byzantine_fraction": "fraction of updates assumed Byzantine when f is null",
    "max_samples": "cap on each trainer's self-reported sample count",
    "history": "compare each trainer's accumulated updates across rounds (needs ids), "
    "not this round's alone",
    "sketch_dim": "size of the per-trainer history sketch (a power of two; exact when the "
    "model has no more parameters)",
    "flag_below": "flag updates kept on less than this multiple of the average share of "
    "coordinates (0: off)",
    "kappa": "confidence κ of the logit squash",
}


class Rule(ABC):
    """A robust aggregation rule: a name, JSON-serialisable params, one method."""

    name: str = ""
    stateful: bool = False
    # Every accepted parameter with its default; anything else is refused by name.
    defaults: dict[str, Any] = {}
    # One line per parameter for users (`market aggregator rules`); COMMON_HELP covers the
    # parameters several rules share.
    parameter_help: dict[str, str] = {}

    @classmethod
    def parameter_docs(cls) -> dict[str, str]:
        """What each parameter does, in ``defaults`` order."""
        known = {**COMMON_HELP, **cls.parameter_help}
        return {k: known.get(k, "") for k in cls.defaults}

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise AggregationError(
                f"rule {self.name!r} has no parameter(s) {', '.join(unknown)}; "
                f"accepted: {', '.join(sorted(self.defaults)) or 'none'}"
            )
        self.params: dict[str, Any] = {**self.defaults, **params}
        self._validate()

    def _validate(self) -> None:
        """Check ``self.params``; raise :class:`AggregationError` naming the bad one."""
        return None

    @classmethod
    def bind_layout(
        cls, params: dict[str, Any], layout: list[tuple[str, tuple[int, ...]]]
    ) -> dict[str, Any]:
        """``params`` with any that name model tensors resolved against the model's layout
        [(tensor name, shape), …] in flat order (what a spec holds). Most rules name none."""
        return params

    def _param_error(self, key: str, why: str) -> AggregationError:
        return AggregationError(
            f"rule {self.name!r}: parameter {key}={self.params.get(key)!r} {why}"
        )

    @abstractmethod
    def aggregate(
        self,
        batch: ChunkSource,
        sample_counts: np.ndarray | None = None,
        state: dict[str, Any] | None = None,
        ids: list[str] | None = None,
    ) -> AggregationResult:
        """Combine the updates in ``batch``; never modifies ``state`` in place."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"


def check_inputs(
    batch: ChunkSource, sample_counts: np.ndarray | None, ids: list[str] | None
) -> np.ndarray:
    """Validate per-update side inputs; return sample counts (ones when not given)."""
    if ids is not None and len(ids) != batch.n:
        raise AggregationError(f"got {len(ids)} ids for {batch.n} updates")
    if ids is not None and len(set(ids)) != len(ids):
        raise AggregationError("trainer ids must be unique within a round")
    if sample_counts is None:
        return np.ones(batch.n, dtype=np.int64)
    counts = np.asarray(sample_counts)
    if counts.shape != (batch.n,) or not np.issubdtype(counts.dtype, np.integer):
        raise AggregationError(
            f"sample_counts must be integers of shape ({batch.n},), got {counts.dtype} "
            f"{counts.shape}"
        )
    if np.any(counts < 0):
        raise AggregationError("sample_counts must be non-negative")
    return counts.astype(np.int64)
