"""A deterministic CountSketch of each update, computed in the Gram pass.

SybilWall and FoolsGold compare each trainer's *accumulated history* of updates across
rounds. Keeping d floats per trainer between rounds is too much for a JSON state, so the
state keeps a k-dimensional CountSketch of the history instead: coordinate j goes to
bucket h(j) = j mod k with sign σ(j) from a fixed multiply-shift hash of j (identical on
every machine), and sketches add up like the vectors they sketch. Inner products are
preserved in expectation (error ≈ ‖a‖‖b‖/√k). When d ≤ k no two coordinates collide and
the sketch is a signed copy, so small models get exact history similarities.

Exactness (as in the Gram engine): within one block of B ≤ 1024 int8 values a bucket's
Σ σ(j)·q_j is an integer below 2²⁴, exact in float32 whatever order numpy sums in; it is
scaled by the block's float32 scale in float64 (exact: 24 × 17 bits) and the blocks are
added in column order, one rounding per add, so the bytes are identical on every machine
and do not depend on how the columns were chunked.
"""

from __future__ import annotations

import numba
import numpy as np

from market.errors import AggregationError

_MUL_SIGN = np.uint64(0xC2B2AE3D27D4EB4F)
_ADD = np.uint64(0x165667B19E3779F9)


def column_signs(start: int, stop: int) -> np.ndarray:
    """σ(j) = ±1 (int8) for columns [start, stop), from a fixed multiply-shift hash of j."""
    j = np.arange(start, stop, dtype=np.uint64)
    with np.errstate(over="ignore"):
        bit = ((j * _MUL_SIGN + _ADD) >> np.uint64(63)).astype(np.int8)
    return 1 - 2 * bit


class Sketcher:
    """Accumulates the (n, k) sketches of a batch, block by block in column order.

    Bucket h(j) = j mod k (so d ≤ k gives the identity up to signs, an exact sketch), sign
    σ(j) hashed: the random signs make colliding coordinates cancel in expectation. The
    Gram pass (:func:`market.aggregator.rules.gram.gram`) feeds it the signed float32
    blocks it multiplies anyway: σ² = 1 leaves the Gram matrix unchanged.
    """

    def __init__(self, n: int, k: int, block_size: int = 1024) -> None:
        if k < 1 or k & (k - 1):
            raise AggregationError(f"sketch dimension must be a power of two, got {k}")
        # A block then covers whole buckets (k ≤ B) or one run of B buckets (k ≥ B).
        self.width = min(k, block_size)
        if max(k, block_size) % self.width:
            raise AggregationError(
                f"sketch dimension {k} and block size {block_size} must divide one another"
            )
        self.n, self.k, self.block_size = n, k, block_size
        # Bucket runs as (k / width, n, width): each block adds into one contiguous slab
        # (row slices of an (n, k) array, 2^m apart, were measured 2× slower).
        self._acc = np.zeros((k // self.width, n, self.width))

    def block_terms(self, x: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each block's integer bucket sums (blocks, n, width) in float32, from blocks given
        as σ(j)·q in float32 (blocks, n, B), zero-padded, with their float64 scales
        (n, blocks). Touches no state, so worker threads compute them; :meth:`add_terms`
        scales and adds them in order."""
        m, n, b = x.shape
        w = self.width
        # Integer bucket sums per block: exact in float32 whatever the summation order.
        z = x.reshape(m, n, b // w, w).sum(axis=2) if w < b else x
        return z, scales

    def add_terms(self, first_block: int, terms: tuple[np.ndarray, np.ndarray]) -> None:
        """Add :meth:`block_terms` of blocks ``first_block``… (call in column order): each
        block's sums times its scales (an exact product), one rounding per add."""
        z, scales = terms
        b, w = self.block_size, self.width
        runs = self._acc.shape[0]
        for i in range(z.shape[0]):
            _add_scaled(self._acc[(first_block + i) * b // w % runs], z[i], scales[:, i])

    def result(self) -> np.ndarray:
        """The (n, k) sketches."""
        return self._acc.transpose(1, 0, 2).reshape(self.n, self.k)


@numba.njit(nogil=True, cache=True)
def _add_scaled(acc: np.ndarray, z: np.ndarray, scales: np.ndarray) -> None:
    """``acc[r] += z[r] · scales[r]`` for each row: one fused pass instead of a float64
    temporary of the whole block (the product is exact, so the bytes are the same)."""
    for r in range(acc.shape[0]):
        _add_row(acc[r], z[r], scales[r])


@numba.njit(nogil=True, cache=True)
def _add_row(acc: np.ndarray, z: np.ndarray, scale: float) -> None:
    # A separate function over 1-D slices: LLVM vectorises it (not under 2-D indexing).
    for t in range(acc.shape[0]):
        acc[t] += np.float64(z[t]) * scale
