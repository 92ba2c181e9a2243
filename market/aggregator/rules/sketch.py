"""A deterministic CountSketch of each update, computed in the Gram pass.

SybilWall and FoolsGold compare each trainer's *accumulated history* of updates across
rounds. Keeping d floats per trainer between rounds is too much for a JSON state, so the
state keeps a k-dimensional CountSketch of the history instead: coordinate j goes to
bucket h(j) = j mod k with sign σ(j) from a fixed multiply-shift hash of j (identical on
every machine), and sketches add up like the vectors they sketch. Inner products are
preserved in expectation (error ≈ ‖a‖‖b‖/√k). When d ≤ k no two coordinates collide and
the sketch is a signed copy, so small models get exact history similarities.
"""

from __future__ import annotations

import numpy as np

from market.aggregator.rules.base import dequantize

_MUL_SIGN = np.uint64(0xC2B2AE3D27D4EB4F)
_ADD = np.uint64(0x165667B19E3779F9)


def column_signs(start: int, stop: int) -> np.ndarray:
    """σ(j) = ±1 for columns [start, stop), from a fixed multiply-shift hash of j."""
    j = np.arange(start, stop, dtype=np.uint64)
    with np.errstate(over="ignore"):
        bit = ((j * _MUL_SIGN + _ADD) >> np.uint64(63)).astype(np.float64)
    return 1.0 - 2.0 * bit


class Sketcher:
    """Accumulates the (n, k) sketches of a batch, chunk by chunk in column order.

    Bucket h(j) = j mod k (so d ≤ k gives the identity up to signs, an exact sketch), sign
    σ(j) hashed: the random signs make colliding coordinates cancel in expectation.
    """

    def __init__(self, n: int, k: int, d: int, block_size: int = 1024) -> None:
        if k < 1 or k & (k - 1):
            raise ValueError(f"sketch dimension must be a power of two, got {k}")
        self.n, self.k, self.d, self.block_size = n, k, d, block_size
        self.out = np.zeros((n, k))

    def visit(self, col: int, q: np.ndarray, s: np.ndarray) -> None:
        self.add_dense(col, dequantize(q, s, self.block_size))

    def add_dense(self, col: int, u: np.ndarray) -> None:
        c = u.shape[1]
        signed = u * column_signs(col, col + c)
        offset = col % self.k
        pad_right = (-(offset + c)) % self.k
        if offset or pad_right:
            signed = np.pad(signed, ((0, 0), (offset, pad_right)))
        self.out += signed.reshape(self.n, -1, self.k).sum(axis=1)

    def result(self) -> np.ndarray:
        return self.out
