"""A deterministic CountSketch of each update, computed in the Gram pass.

SybilWall and FoolsGold compare each trainer's *accumulated history* of updates across
rounds. Keeping d floats per trainer between rounds is too much for a JSON state, so the
state keeps a k-dimensional CountSketch of the history instead: coordinate j goes to
bucket h(j) with sign σ(j), both from a fixed multiply-shift hash of j (identical on every
machine), and sketches add up exactly like the vectors they sketch. Inner products are
preserved in expectation (error ≈ ‖a‖‖b‖/√k). When d ≤ k the sketch is the identity map,
so small models get exact history similarities.
"""

from __future__ import annotations

import numpy as np

_MUL_BUCKET = np.uint64(0x9E3779B97F4A7C15)
_MUL_SIGN = np.uint64(0xC2B2AE3D27D4EB4F)
_ADD = np.uint64(0x165667B19E3779F9)


def hash_columns(start: int, stop: int, k: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Bucket (int64) and sign (float64 ±1) of columns [start, stop)."""
    j = np.arange(start, stop, dtype=np.uint64)
    if d <= k:
        return j.astype(np.int64), np.ones(stop - start)
    shift = np.uint64(64 - int(np.log2(k)))
    with np.errstate(over="ignore"):
        bucket = ((j * _MUL_BUCKET + _ADD) >> shift).astype(np.int64)
        sign_bit = ((j * _MUL_SIGN + _ADD) >> np.uint64(63)).astype(np.int64)
    return bucket, 1.0 - 2.0 * sign_bit


class Sketcher:
    """Accumulates the (n, k) sketches of a batch, chunk by chunk in column order."""

    def __init__(self, n: int, k: int, d: int | None = None) -> None:
        if k < 1 or k & (k - 1):
            raise ValueError(f"sketch dimension must be a power of two, got {k}")
        self.n, self.k, self.d = n, k, d
        self.out = np.zeros((n, k))

    def visit(self, col: int, u: np.ndarray) -> None:
        d = self.d if self.d is not None else 1 << 62
        bucket, sign = hash_columns(col, col + u.shape[1], self.k, d)
        signed = u * sign
        for i in range(self.n):
            self.out[i] += np.bincount(bucket, weights=signed[i], minlength=self.k)

    def result(self) -> np.ndarray:
        return self.out
